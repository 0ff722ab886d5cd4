//! The test harness itself: a process a test starts dies with the test process, even when
//! that is killed with SIGKILL and gets no chance to clean up; and the shared helpers of
//! tests/support, one module each.

#[path = "../support/mod.rs"]
mod support;

mod prometheus;
mod sim_admin;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{TiedCommand, assert_eventually};

/// Set in the re-executed test binary: it plays the test process that gets killed.
const ROLE: &str = "SSW_TEST_HARNESS_ROLE";
const THIS_TEST: &str = "a_child_dies_with_the_test_process_even_after_sigkill";

/// Whether `pid` is a live `sleep` (not gone, not a zombie, not another program).
fn sleeping(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state ...`: comm may hold anything, so look after the last ')'.
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    !matches!(state, None | Some("Z" | "X" | "x")) && cmdline.starts_with(b"sleep\0")
}

#[test]
fn a_child_dies_with_the_test_process_even_after_sigkill() {
    if std::env::var_os(ROLE).is_some() {
        // The doomed test process: start a child the way every test does, say which it is,
        // and wait to be killed.
        let mut child = Command::new("sleep")
            .arg("600")
            .spawn_tied()
            .expect("sleep starts");
        println!("child pid {}", child.id());
        std::thread::sleep(Duration::from_secs(600));
        let _ = child.kill();
        let _ = child.wait();
        return;
    }

    let mut doomed = Command::new(std::env::current_exe().expect("own path"))
        .args(["--exact", THIS_TEST, "--nocapture", "--test-threads=1"])
        .env(ROLE, "doomed")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn_tied()
        .expect("the test binary runs again");
    let stdout = doomed.stdout.take().expect("stdout");
    let grandchild: u32 = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        // libtest may have written "test NAME ... " on the same line first.
        .find_map(|l| l.split("child pid ").nth(1)?.trim().parse().ok())
        .expect("the doomed test process names its child");
    assert_eventually(Duration::from_secs(5), "the child runs", || {
        sleeping(grandchild)
    });

    // SIGKILL: no destructor, no panic handler, no atexit runs in the test process.
    doomed.kill().expect("SIGKILL");
    doomed.wait().expect("reaped");
    assert_eventually(
        Duration::from_secs(5),
        "the child of a SIGKILLed test process is killed too",
        || !sleeping(grandchild),
    );
}
