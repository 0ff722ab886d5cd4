//! The `ssw-simulator` binary as the README and hack/demo.sh run it: it writes its CA and
//! URL for scripts to wait on, serves the admin API, and exits cleanly on SIGTERM.

use crate::common::*;
use crate::reaper::TiedCommand;
use crate::sim_admin::SimAdmin;
use std::process::{Command, Stdio};

#[tokio::test]
async fn the_binary_serves_a_scenario_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, url) = (dir.path().join("ca.pem"), dir.path().join("url"));
    let scenario =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/simulator/fleet.yaml");
    let child = Command::new(env!("CARGO_BIN_EXE_ssw-simulator"))
        .arg("--scenario")
        .arg(&scenario)
        .args(["--listen", "127.0.0.1:0", "--ca-out"])
        .arg(&ca)
        .arg("--url-out")
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn_tied()
        .expect("ssw-simulator starts");

    let mut base = String::new();
    for _ in 0..300 {
        if let Ok(text) = std::fs::read_to_string(&url) {
            base = text;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(base.starts_with("https://127.0.0.1:"), "url file: {base:?}");
    let admin = SimAdmin::new(&base, &std::fs::read_to_string(&ca).expect("CA file"));
    assert!(admin.healthy().await);
    let web = ScaleSetRef::new("00000000-0000-0000-0000-0000000000aa", "rg-demo", "web");
    let state = admin.scale_set(&web).await.ok().json();
    assert_eq!(
        state["instances"].as_array().map(Vec::len),
        Some(5),
        "{state}"
    );

    // SAFETY: kill(2) on the pid of a child this test owns and has not reaped.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    // It printed its URL on stdout too, for scripts that read it there.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), base);
}
