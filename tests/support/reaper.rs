// Each includer uses only some of it.
#![allow(dead_code)]
//! The process reaper: every process a test starts dies with the test process, however that
//! ends (see the docs of tests/support/mod.rs). Self-contained, so that the simulator crate's
//! tests can use it too; tests/harness/main.rs checks it with a SIGKILLed test process.

use std::process::{Child, Command, Output, Stdio};
use std::sync::{OnceLock, mpsc};

type SpawnJob = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Starts `cmd` (taking it; `cmd` is left empty) so that the child is killed when this test
/// process ends, in any way (see the module docs). Returns what `Command::spawn` would.
pub fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnJob>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        // The sender lives in a static, so this loop, and the thread, end only with the process.
        std::thread::Builder::new()
            .name("test-child-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(spawn_tied(&mut cmd));
                }
            })
            .expect("start the child-spawner thread");
        tx
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    let cmd = std::mem::replace(cmd, Command::new(""));
    spawner
        .send((cmd, reply_tx))
        .expect("the child-spawner thread runs");
    reply_rx.recv().expect("the child-spawner thread answers")
}

/// Runs on the spawner thread: the child gets SIGKILL when this thread ends.
fn spawn_tied(cmd: &mut Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: runs in the child between fork and exec; it makes two async-signal-safe
    // system calls and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // A parent that died before the prctl will never send the signal.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// `Command::output` through [`spawn`]: stdin is /dev/null, stdout and stderr are captured.
pub fn output(cmd: &mut Command) -> std::io::Result<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    spawn(cmd)?.wait_with_output()
}

/// [`spawn`] and [`output`] as methods, to swap in for `Command::spawn` and `Command::output`.
pub trait TiedCommand {
    fn spawn_tied(&mut self) -> std::io::Result<Child>;
    fn output_tied(&mut self) -> std::io::Result<Output>;
}

impl TiedCommand for Command {
    fn spawn_tied(&mut self) -> std::io::Result<Child> {
        spawn(self)
    }
    fn output_tied(&mut self) -> std::io::Result<Output> {
        output(self)
    }
}
