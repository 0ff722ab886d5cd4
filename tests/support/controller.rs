//! The pieces of an end-to-end run around the cluster: the ARM simulator (in-process, on its
//! own runtime), the chart installed for its ServiceAccount and RBAC, and the controller binary
//! run as a local process with a TokenRequest token of that ServiceAccount.

use super::{Cluster, run_command, unique_name, wait_for_value};
use ssw_simulator::{
    Fault, InstanceSpec, RequestStats, ScaleSetRef, Scenario, Simulator, SimulatorHandle,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub const SUB: &str = "00000000-0000-0000-0000-0000000000aa";
pub const TENANT: &str = "0d3f2a1b-5c6e-4f70-8a9b-1c2d3e4f5a6b";
pub const CLIENT: &str = "8e1b2c3d-4a5f-4b6c-9d7e-0f1a2b3c4d5e";
pub const SECRET: &str = "demo-secret";

/// The simulator on a runtime of its own, so that synchronous tests can drive it.
pub struct SimEnv {
    rt: tokio::runtime::Runtime,
    handle: Option<SimulatorHandle>,
    _dir: tempfile::TempDir,
    ca_file: PathBuf,
}

#[allow(dead_code)]
impl SimEnv {
    pub fn start(scenario_yaml: &str) -> SimEnv {
        SimEnv::start_at(scenario_yaml, "127.0.0.1:0")
    }

    /// Listens on `bind`, e.g. a test bed node's address so that pods can reach it; the
    /// certificate then names that address too.
    pub fn start_at(scenario_yaml: &str, bind: &str) -> SimEnv {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let scenario = Scenario::from_yaml(scenario_yaml).expect("scenario parses");
        let handle = rt
            .block_on(Simulator::start(scenario, bind.parse().expect("addr")))
            .expect("simulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_file = dir.path().join("sim-ca.pem");
        std::fs::File::create(&ca_file)
            .and_then(|mut f| f.write_all(handle.ca_pem().as_bytes()))
            .expect("write CA");
        SimEnv {
            rt,
            handle: Some(handle),
            _dir: dir,
            ca_file,
        }
    }

    fn h(&self) -> &SimulatorHandle {
        self.handle.as_ref().expect("running")
    }

    pub fn url(&self) -> String {
        self.h().base_url().to_owned()
    }

    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    pub fn scale_set(&self, rg: &str, name: &str) -> ScaleSetRef {
        ScaleSetRef::new(SUB, rg, name)
    }

    pub fn put_instance(&self, r: &ScaleSetRef, yaml: &str) {
        let spec: InstanceSpec = yaml_serde::from_str(yaml).expect("instance spec parses");
        self.h().put_instance(r, spec).expect("instance replaced");
    }

    pub fn set_faults(&self, r: &ScaleSetRef, yaml: &str) {
        let faults: Vec<Fault> = yaml_serde::from_str(yaml).expect("faults parse");
        self.h().set_faults(r, faults).expect("faults set");
    }

    pub fn clear_faults(&self, r: &ScaleSetRef) {
        self.h().clear_faults(r).expect("faults cleared");
    }

    pub fn stats(&self) -> RequestStats {
        self.h().request_stats()
    }

    /// List pages served for the scale set so far.
    pub fn list_pages(&self, r: &ScaleSetRef) -> u64 {
        self.stats().scale_set(r).list_pages.count
    }

    /// First pages served: one per fetch of the whole list.
    pub fn fetches(&self, r: &ScaleSetRef) -> u64 {
        self.stats().scale_set(r).first_pages
    }
}

impl Drop for SimEnv {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.rt.block_on(h.shutdown());
        }
    }
}

/// The chart installed once per test binary in namespace `scaleset-watch`: its ServiceAccount
/// and RBAC are what the controller runs with. Returns the ServiceAccount's namespace and name.
pub fn install_chart(cluster: &Cluster) -> (&'static str, &'static str) {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let chart = super::repo_root().join("charts/scaleset-watch");
        cluster.helm_ok(&[
            "upgrade",
            "--install",
            "scaleset-watch",
            chart.to_str().expect("utf-8 path"),
            "-n",
            "scaleset-watch",
            "--create-namespace",
            "--set",
            "azure.identity.mode=managed",
        ]);
    });
    ("scaleset-watch", "scaleset-watch")
}

/// A controller process; killed on drop.
pub struct Controller {
    child: Option<Child>,
    log: PathBuf,
    pub http_addr: String,
}

#[allow(dead_code)]
impl Controller {
    /// Starts `scaleset-watch run` against `sim`, authenticated to Kubernetes with `kubeconfig`,
    /// to Azure with the scenario's service principal, plus `env` and `args`.
    pub fn start(
        cluster: &Cluster,
        kubeconfig: &Path,
        sim: &SimEnv,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Controller {
        let port = free_port();
        let http_addr = format!("127.0.0.1:{port}");
        let log = cluster
            .dir()
            .join(format!("{}.log", unique_name("controller")));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_scaleset-watch"));
        cmd.arg("run")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", kubeconfig)
            .env("SSW_HTTP_ADDR", &http_addr)
            .env("SSW_ARM_ENDPOINT", sim.url())
            .env("AZURE_AUTHORITY_HOST", sim.url())
            .env("SSW_CA_FILE", sim.ca_file())
            .env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_ID", CLIENT)
            .env("AZURE_CLIENT_SECRET", SECRET)
            .env("SSW_LOG_LEVEL", "info,scaleset_watch=debug")
            // Tests put their watches in namespaces of their own; a test of the ambient
            // identity policy overrides this.
            .env("SSW_AMBIENT_NAMESPACES", "*")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log"))
            .stderr(log_file);
        let child = super::spawn(&mut cmd).expect("controller starts");
        let c = Controller {
            child: Some(child),
            log,
            http_addr,
        };
        let up = wait_for_value(Duration::from_secs(30), || {
            c.get("/healthz").filter(|b| b == "ok")
        });
        assert!(
            up.is_some(),
            "controller did not serve /healthz:\n{}",
            c.logs()
        );
        c
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET on the controller's HTTP endpoint; None when it does not answer 2xx.
    pub fn get(&self, path: &str) -> Option<String> {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sf",
            "--max-time",
            "5",
            &format!("http://{}{path}", self.http_addr),
        ]);
        let out = run_command(cmd, None, Duration::from_secs(10));
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM and waits for the exit status (None when it had to be killed).
    pub fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let status = wait_for_value(timeout, || child.try_wait().ok().flatten())?;
        self.child = None;
        Some(status)
    }

    /// SIGKILL: the process gets no chance to release anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A scenario with the demo service principal, which may read subscription [`SUB`], and one
/// resource group holding `scale_sets` (YAML list items, indented for `scaleSets:`).
pub fn scenario(resource_group: &str, scale_sets: &str) -> String {
    format!(
        r#"
servicePrincipals:
  - tenantId: {TENANT}
    clientId: {CLIENT}
    clientSecret: {SECRET}
    subscriptions: [{SUB}]
subscriptions:
  - id: {SUB}
    tenantId: {TENANT}
    resourceGroups:
      - name: {resource_group}
        scaleSets:
{scale_sets}"#
    )
}

/// A ScaleSetWatch polling every 10 s (the minimum). `extra_spec` lines are indented for `spec:`.
pub fn watch_yaml(
    ns: &str,
    name: &str,
    labels: &[(&str, &str)],
    resource_group: &str,
    scale_set: &str,
    extra_spec: &str,
) -> String {
    // Quoted: YAML reads a bare `y` as a boolean.
    let labels: String = labels
        .iter()
        .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
        .collect();
    let labels = if labels.is_empty() {
        labels
    } else {
        format!("  labels:\n{labels}")
    };
    format!(
        r#"apiVersion: scalesetwatch.io/v1alpha1
kind: ScaleSetWatch
metadata:
  name: {name}
  namespace: {ns}
{labels}spec:
  subscriptionId: {SUB}
  resourceGroup: {resource_group}
  scaleSetName: {scale_set}
  interval: 10s
{extra_spec}
"#
    )
}

pub fn get_watch(cluster: &Cluster, ns: &str, name: &str) -> serde_json::Value {
    cluster.kubectl_json(&["get", "ssw", name, "-n", ns, "-o", "json"])
}

/// The events.k8s.io Events about object `name` in `ns`.
pub fn events_about(cluster: &Cluster, ns: &str, name: &str) -> Vec<serde_json::Value> {
    let list = cluster.kubectl_json(&[
        "get",
        "events.events.k8s.io",
        "-n",
        ns,
        "--field-selector",
        &format!("regarding.name={name}"),
    ]);
    list["items"].as_array().cloned().unwrap_or_default()
}

pub fn condition(obj: &serde_json::Value, type_: &str) -> Option<serde_json::Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

/// Waits until the condition has the status (and reason, when given); returns the object.
#[track_caller]
pub fn wait_condition(
    cluster: &Cluster,
    ns: &str,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
    timeout: Duration,
) -> serde_json::Value {
    let found = wait_for_value(timeout, || {
        let obj = get_watch(cluster, ns, name);
        let c = condition(&obj, type_)?;
        (c["status"] == status && reason.is_none_or(|r| c["reason"] == r)).then_some(obj)
    });
    found.unwrap_or_else(|| {
        panic!(
            "{ns}/{name}: {type_} never became {status}/{reason:?}; object:\n{:#}",
            get_watch(cluster, ns, name)
        )
    })
}
