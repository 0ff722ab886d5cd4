//! Shared integration-test harness: a real local Kubernetes control plane (etcd +
//! kube-apiserver from `hack/control-plane.sh`), the real `kubectl` and the `helm` that the
//! script builds.
//!
//! Use it from a test file with `mod support;`. Not every test file uses every item, hence
//! the `dead_code` allowance below.
//!
//! ```ignore
//! mod support;
//! use support::Cluster;
//!
//! #[test]
//! fn something() {
//!     let cluster = Cluster::shared(); // one control plane per test binary
//!     let ns = cluster.create_namespace("something");
//!     cluster.kubectl_ok(&["get", "ns", &ns]);
//! }
//! ```
//!
//! Lifetime of the control plane: `hack/control-plane.sh up` starts etcd and kube-apiserver
//! detached (`setsid`), so nothing kills them when the test process ends. Every `Cluster`
//! therefore has a *watchdog*: a small `sh` process (in its own process group, so a Ctrl-C
//! aimed at `cargo test` does not kill it first) that runs `up`, reports readiness on its
//! stdout, and then blocks reading its stdin, a pipe whose only write end is held by the test
//! process. When the test process ends in any way (normal exit, panic, `SIGKILL`), the kernel
//! closes that write end, the watchdog's read returns EOF, and it runs `down` and deletes the
//! state directory. This works for the `static` shared cluster, whose `Drop` never runs, and
//! needs no pid polling (no pid-reuse races) and no `prctl`. Because the watchdog itself runs
//! `up`, a test process killed while `up` is still starting the processes cannot leak them
//! either: `down` runs right after `up` finishes. An owned `Cluster` (`Cluster::start()`) also
//! runs `down` synchronously in `Drop`, which runs on panics too.
//!
//! Every other process a test starts (the controller, kubectl, helm, curl, `check`, ...) is
//! started through [`spawn`] (or [`run_command`] and [`output`], which use it), so that it
//! dies with the test process too, however that ends. [`spawn`] starts children from one
//! thread that lives as long as the process, and has the kernel send them SIGKILL when that
//! thread ends (`PR_SET_PDEATHSIG`): that happens only when the whole test process ends,
//! SIGKILL included. (The signal follows the spawning *thread*, not the process: children
//! started straight from a test's own thread would be killed when that test's thread ends,
//! which is wrong for a controller shared by a whole test binary through a `static`.) The
//! control plane's watchdog is the one exception: it must outlive the test process to run
//! `down`. `tests/harness/main.rs` checks all this with a SIGKILLed test process.
//!
//! Environment knobs: `SSW_TEST_KEEP_CP=1` keeps the state directory (logs, kubeconfig) after
//! the run; `KUBECTL` overrides the kubectl binary; `SSW_CACHE_DIR` is honoured by the script.
#![allow(dead_code)]

pub mod controller;
pub mod prometheus;
pub mod reaper;
pub mod sim_admin;

// Not every test binary uses each of these (as with `dead_code` above).
#[allow(unused_imports)]
pub use reaper::{TiedCommand, output, spawn};

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Default timeout of one kubectl/helm invocation.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `hack/control-plane.sh`.
pub fn control_plane_script() -> PathBuf {
    repo_root().join("hack/control-plane.sh")
}

/// A name that is unique within this machine for the life of the test run: `prefix-xxxxxxxx`,
/// lowercase, DNS-1123 label compatible (the prefix is truncated so the result fits in 63).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    let suffix = format!("{:08x}", h.finish() as u32);
    let prefix: String = prefix
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63 - 9)
        .collect();
    let prefix = prefix.trim_matches('-');
    if prefix.is_empty() {
        format!("t-{suffix}")
    } else {
        format!("{prefix}-{suffix}")
    }
}

/// Polls `f` until it returns true or `timeout` passes; returns whether it succeeded.
/// Backs off from 20ms to 500ms between polls; `f` always runs at least once, and once more
/// at the deadline.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    wait_for_value(timeout, || f().then_some(())).is_some()
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn wait_for_value<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(20);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(delay.min(deadline - now));
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// Like [`wait_for`], but panics with `what` on timeout.
#[track_caller]
pub fn assert_eventually(timeout: Duration, what: &str, f: impl FnMut() -> bool) {
    assert!(
        wait_for(timeout, f),
        "timed out after {timeout:?} waiting for: {what}"
    );
}

/// Human-readable summary of a finished command, for assertion messages.
pub fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` to completion with an optional stdin and a timeout (the process is killed when
/// it expires; the returned status then reports the signal). stdout/stderr are captured.
pub fn run_command(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let what = format!("{cmd:?}");
    let mut child = spawn(&mut cmd).unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let writer = stdin.map(|input| {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let input = input.to_vec();
        // A child that exits without reading everything gives EPIPE; that's its business.
        std::thread::spawn(move || drop(pipe.write_all(&input)))
    });
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_t = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err_t = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status: ExitStatus = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                break child.wait().expect("wait after kill");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out_t.join().unwrap_or_default();
    let mut stderr = err_t.join().unwrap_or_default();
    if Instant::now() >= deadline && !status.success() {
        stderr.extend_from_slice(format!("\n[harness] killed after {timeout:?}").as_bytes());
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Parses the `export NAME='value'` lines that `hack/control-plane.sh env` prints and that
/// `DIR/env` holds. Values are shell words made of single-quoted parts, double-quoted parts
/// (with `$VAR` / `${VAR}` expanded from this process's environment) and bare parts.
pub fn parse_exports(text: &str) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("export ") else {
            continue;
        };
        // One line may hold several assignments: `export A='x' B='y'`.
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
            if name.is_empty() || chars.next() != Some('=') {
                break;
            }
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\'' => value.extend(std::iter::from_fn(|| chars.next_if(|c| *c != '\''))),
                    '"' => {
                        let mut inner = String::new();
                        while let Some(c) = chars.next_if(|c| *c != '"') {
                            inner.push(c);
                        }
                        value.push_str(&expand_vars(&inner));
                    }
                    c if c.is_whitespace() => break,
                    c => value.push(c),
                }
                // Closing quote of a quoted part.
                if matches!(c, '\'' | '"') {
                    chars.next();
                }
            }
            vars.push((name.trim().to_owned(), value));
        }
    }
    vars
}

fn expand_vars(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let braced = chars.next_if_eq(&'{').is_some();
        let name: String =
            std::iter::from_fn(|| chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_'))
                .collect();
        if braced {
            chars.next_if_eq(&'}');
        }
        out.push_str(&std::env::var(&name).unwrap_or_default());
    }
    out
}

/// The binaries `hack/control-plane.sh build` caches, built once per test process.
pub struct Tools {
    /// `export` lines of `hack/control-plane.sh env`, parsed (PATH already includes the addition).
    pub env: Vec<(String, String)>,
    pub helm: PathBuf,
    pub kubectl: PathBuf,
}

/// Builds (cached after the first time; the first kube-apiserver build takes 10-25 minutes)
/// and locates the control-plane binaries and helm.
pub fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let script = control_plane_script();
        // No timeout: the first build is long, and the script has its own lock.
        let status = Command::new(&script)
            .arg("build")
            .stdin(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            status.success(),
            "{} build failed: {status}",
            script.display()
        );
        let mut cmd = Command::new(&script);
        cmd.arg("env");
        let out = run_command(cmd, None, COMMAND_TIMEOUT);
        assert!(
            out.status.success(),
            "{}",
            describe("control-plane.sh env", &out)
        );
        let env = parse_exports(&String::from_utf8_lossy(&out.stdout));
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let helm = PathBuf::from(get("HELM_BIN").expect("control-plane.sh env prints HELM_BIN"));
        assert!(helm.is_file(), "HELM_BIN {} does not exist", helm.display());
        let kubectl = PathBuf::from(std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into()));
        Tools { env, helm, kubectl }
    })
}

/// A running etcd + kube-apiserver on loopback.
pub struct Cluster {
    dir: PathBuf,
    kubeconfig: PathBuf,
    api_url: String,
    admin_token: String,
    ca_file: PathBuf,
    /// All variables of DIR/env (KUBECONFIG, SSW_APISERVER_URL, SSW_ADMIN_TOKEN, SSW_CP_DIR,
    /// the binaries' paths and PATH).
    env: Vec<(String, String)>,
    /// The watchdog and the write end of its stdin (see the module docs).
    watchdog: Mutex<Option<(Child, ChildStdin)>>,
}

impl Cluster {
    /// The control plane shared by all tests of this test binary, started on first use and
    /// stopped by the watchdog when the process exits.
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(Cluster::start)
    }

    /// Starts a new, private control plane (about 5-10 s). Stopped on `Drop`.
    pub fn start() -> Cluster {
        Cluster::start_with("up")
    }

    /// A control plane with a node that runs pods (`hack/control-plane.sh up-node`: kubelet,
    /// containerd, kube-controller-manager, kube-scheduler), shared by all tests of this test
    /// binary and torn down by the watchdog when the process exits.
    pub fn shared_node() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(|| Cluster::start_with("up-node"))
    }

    /// `subcommand` is `up` or `up-node`.
    fn start_with(subcommand: &str) -> Cluster {
        tools();
        let base = std::env::temp_dir();
        let dir = tempfile::Builder::new()
            .prefix("ssw-cp-")
            .tempdir_in(&base)
            .expect("create control-plane dir")
            .keep();
        let keep = if std::env::var_os("SSW_TEST_KEEP_CP").is_some() {
            "1"
        } else {
            "0"
        };
        // $0 = script, $1 = dir, $2 = keep, $3 = up or up-node. Its output goes to DIR/up.log.
        // SIGPIPE is ignored: if the test process died during `up`, `echo ready` must not
        // kill the watchdog before it runs `down`.
        const WATCHDOG: &str = r#"
            trap '' PIPE
            if "$0" "$3" "$1" </dev/null >"$1/up.log" 2>&1; then echo ready; else echo failed; fi
            cat >/dev/null
            "$0" down "$1" </dev/null >/dev/null 2>&1
            [ "$2" = 1 ] || rm -rf "$1"
        "#;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg(control_plane_script())
            .arg(&dir)
            .arg(keep)
            .arg(subcommand)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().expect("spawn control-plane watchdog");
        let stdin = child.stdin.take().expect("watchdog stdin");
        let stdout = child.stdout.take().expect("watchdog stdout");
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "ready" {
            let log = std::fs::read_to_string(dir.join("up.log")).unwrap_or_default();
            drop(stdin);
            let _ = child.wait();
            panic!("hack/control-plane.sh up {} failed:\n{log}", dir.display());
        }
        let env_text = std::fs::read_to_string(dir.join("env")).expect("read DIR/env");
        let env = parse_exports(&env_text);
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{k} missing from {}/env", dir.display()))
        };
        let kubeconfig = PathBuf::from(get("KUBECONFIG"));
        let api_url = get("SSW_APISERVER_URL");
        let admin_token = get("SSW_ADMIN_TOKEN");
        let ca_file = std::fs::read_to_string(&kubeconfig)
            .ok()
            .and_then(|k| {
                k.lines().find_map(|l| {
                    l.trim()
                        .strip_prefix("certificate-authority:")
                        .map(|p| PathBuf::from(p.trim()))
                })
            })
            .unwrap_or_else(|| dir.join("certs/apiserver.crt"));
        Cluster {
            dir,
            kubeconfig,
            api_url,
            admin_token,
            ca_file,
            env,
            watchdog: Mutex::new(Some((child, stdin))),
        }
    }

    /// Stops the control plane now (idempotent). Also done by `Drop` and by the watchdog.
    pub fn stop(&self) {
        let Some((mut child, stdin)) = self
            .watchdog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        let mut cmd = Command::new(control_plane_script());
        cmd.arg("down").arg(&self.dir);
        let _ = run_command(cmd, None, COMMAND_TIMEOUT);
        drop(stdin); // the watchdog runs `down` again (a no-op) and removes the directory
        let _ = child.wait();
    }

    /// The control plane's state directory (logs: etcd.log, kube-apiserver.log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Admin kubeconfig (static token in system:masters).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }
    /// `https://127.0.0.1:<port>`.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }
    /// The API server's (self-signed) serving certificate, to trust as a CA.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }
    /// Every variable of `DIR/env` (for processes under test, e.g. the controller).
    pub fn env_vars(&self) -> &[(String, String)] {
        &self.env
    }
    /// The node's address (only for [`Cluster::shared_node`]): on a bridge of the test bed's
    /// own; pods reach the host there, e.g. the API server at the same port as on loopback.
    pub fn node_ip(&self) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == "SSW_NODE_IP")
            .map(|(_, v)| v.as_str())
    }

    /// The helm binary built by `hack/control-plane.sh build`.
    pub fn helm_bin(&self) -> &Path {
        &tools().helm
    }

    /// A `Command` for `program` with the cluster's environment: KUBECONFIG and friends,
    /// PATH with the control-plane binaries, and private kubectl/helm cache directories.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let cache = self.dir.join("cache");
        cmd.env("KUBECACHEDIR", cache.join("kube"))
            .env("HELM_CACHE_HOME", cache.join("helm/cache"))
            .env("HELM_CONFIG_HOME", cache.join("helm/config"))
            .env("HELM_DATA_HOME", cache.join("helm/data"));
        cmd
    }

    /// Runs kubectl as admin (`--kubeconfig <admin>`).
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_as(&self.kubeconfig, args)
    }

    /// Runs kubectl with another kubeconfig (e.g. from [`Cluster::service_account_kubeconfig`]).
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        let mut cmd = self.command(&tools().kubectl);
        cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
        run_command(cmd, None, COMMAND_TIMEOUT)
    }

    /// Runs kubectl as admin, feeding `input` on stdin.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut cmd = self.command(&tools().kubectl);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        run_command(cmd, Some(input.as_bytes()), COMMAND_TIMEOUT)
    }

    /// Runs kubectl as admin, panics (with stdout and stderr) unless it succeeds; returns stdout.
    #[track_caller]
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "{}",
            describe(&format!("kubectl {}", args.join(" ")), &out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl get ... -o json` as admin, parsed.
    #[track_caller]
    pub fn kubectl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let text = self.kubectl_ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("kubectl {args:?}: bad JSON: {e}"))
    }

    /// `kubectl apply -f -` as admin; panics unless it succeeds; returns stdout.
    #[track_caller]
    pub fn kubectl_apply_stdin(&self, yaml: &str) -> String {
        let out = self.kubectl_stdin(&["apply", "-f", "-"], yaml);
        assert!(
            out.status.success(),
            "{}\n--- input ---\n{yaml}",
            describe("kubectl apply -f -", &out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs helm (HELM_BIN) against this cluster.
    pub fn helm(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(&tools().helm);
        cmd.args(args);
        run_command(cmd, None, COMMAND_TIMEOUT)
    }

    /// Runs helm, panics (with stdout and stderr) unless it succeeds; returns stdout.
    #[track_caller]
    pub fn helm_ok(&self, args: &[&str]) -> String {
        let out = self.helm(args);
        assert!(
            out.status.success(),
            "{}",
            describe(&format!("helm {}", args.join(" ")), &out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates a namespace named `<prefix>-<random>` and returns its name. (Namespaces never
    /// finish deleting here: there is no kube-controller-manager, so don't bother.)
    #[track_caller]
    pub fn create_namespace(&self, prefix: &str) -> String {
        let name = unique_name(prefix);
        self.kubectl_ok(&["create", "namespace", &name]);
        name
    }

    /// Applies the repository's ScaleSetWatch CRD (server-side, so again is harmless) and
    /// waits until it is served.
    pub fn apply_crd(&self) {
        let crd = repo_root().join("crds/scalesetwatches.yaml");
        self.kubectl_ok(&["apply", "--server-side", "-f", &crd.display().to_string()]);
        self.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "crd/scalesetwatches.scalesetwatch.io",
            "--timeout=60s",
        ]);
    }

    /// Creates `name` unless it exists.
    #[track_caller]
    pub fn ensure_namespace(&self, name: &str) {
        self.kubectl_apply_stdin(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"
        ));
    }

    /// Creates a ServiceAccount (no namespace `default` SA is ever auto-created here).
    #[track_caller]
    pub fn create_service_account(&self, ns: &str, name: &str) {
        self.kubectl_ok(&["create", "serviceaccount", name, "-n", ns]);
    }

    /// A token for ServiceAccount `ns/sa` from the TokenRequest API (`kubectl create token`).
    /// `audience` None means the API server's own audience; `expiry` is at least 10 minutes
    /// (the API server's minimum).
    #[track_caller]
    pub fn service_account_token(
        &self,
        ns: &str,
        sa: &str,
        audience: Option<&str>,
        expiry: Duration,
    ) -> String {
        let duration = format!("{}s", expiry.as_secs().max(600));
        let mut args = vec!["create", "token", sa, "-n", ns, "--duration", &duration];
        if let Some(aud) = audience {
            args.extend(["--audience", aud]);
        }
        let token = self.kubectl_ok(&args).trim().to_owned();
        assert!(
            !token.is_empty(),
            "kubectl create token {sa} -n {ns} printed nothing"
        );
        token
    }

    /// Writes a kubeconfig that authenticates as ServiceAccount `ns/sa` with a one-hour
    /// TokenRequest token (same server and CA as the admin kubeconfig; default namespace `ns`)
    /// and returns its path. Only tokens for the API server's audience (`audience` None)
    /// authenticate against the API server.
    #[track_caller]
    pub fn service_account_kubeconfig(
        &self,
        ns: &str,
        sa: &str,
        audience: Option<&str>,
    ) -> PathBuf {
        let token = self.service_account_token(ns, sa, audience, Duration::from_secs(3600));
        let dir = self.dir.join("sa-kubeconfigs");
        std::fs::create_dir_all(&dir).expect("create sa-kubeconfigs dir");
        let path = dir.join(format!("{}.kubeconfig", unique_name(&format!("{ns}-{sa}"))));
        let user = format!("system:serviceaccount:{ns}:{sa}");
        let config = format!(
            r#"apiVersion: v1
kind: Config
clusters:
- name: ssw
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: "{user}"
  user:
    token: {token}
contexts:
- name: "{user}"
  context:
    cluster: ssw
    user: "{user}"
    namespace: {ns}
current-context: "{user}"
"#,
            server = self.api_url,
            ca = self.ca_file.display(),
        );
        write_private(&path, config.as_bytes());
        path
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes `data` to `path` with mode 0600.
pub fn write_private(path: &Path, data: &[u8]) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.write_all(data)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
