//! End to end: a real kube-apiserver, real kubectl and helm, the controller binary as a local
//! process authenticated with a TokenRequest token of the chart's ServiceAccount, and the ARM
//! simulator standing in for Azure.
//!
//! One test binary, so one control plane, simulator and controller for every test (`env()`);
//! one module per topic: what the status says (`status`), credentials (`credentials`), when
//! polls happen (`polling`), what the API server accepts and gets written (`api_server`), and
//! verdicts that must not outlive their data (`gates`).

#[path = "../support/mod.rs"]
mod support;

mod api_server;
mod credentials;
mod gates;
mod polling;
mod status;

use serde_json::Value;
use std::sync::OnceLock;
use std::time::Duration;
use support::Cluster;
use support::controller::{Controller, SimEnv, install_chart, scenario, watch_yaml};

/// Watches with this label are left to the controllers a test starts itself (the shared one
/// ignores them).
const OWN_CONTROLLER_LABEL: &str = "scalesetwatch.io/e2e-own-controller";

/// The message of each of the 3 failed extensions of each of the 60 instances of scale set
/// `huge`: 20 KB.
fn huge_message() -> String {
    "Enable failed: ".to_owned() + &"x".repeat(20 * 1024)
}

fn e2e_scenario() -> String {
    let huge = huge_message();
    let huge_scale_set = format!(
        r#"          - name: huge
            pageSize: 20
            defaults:
              extensions:
                - {{name: one, type: Microsoft.Azure.Extensions.CustomScript, state: failed, message: "{huge}"}}
                - {{name: two, type: Microsoft.Azure.Extensions.CustomScript, state: failed, message: "{huge}"}}
                - {{name: three, type: Microsoft.Azure.Extensions.CustomScript, state: failed, message: "{huge}"}}
            generate: {{count: 60}}
"#
    );
    scenario(
        "rg-e2e",
        &(huge_scale_set
            + r#"          - name: worker
            pageSize: 5
            defaults:
              appHealth: healthy
              extensions: [{name: bootstrap, type: Microsoft.Azure.Extensions.CustomScript}]
            generate: {count: 12, faultDomains: 3, updateDomains: 4}
            instances:
              - id: 3
                extensions: [{name: bootstrap, type: Microsoft.Azure.Extensions.CustomScript, state: failed, message: "Enable failed: exit status=1"}]
              - {id: 7, powerState: deallocated}
              - {id: 9, appHealth: unhealthy}
          - {name: flip, pageSize: 2, generate: {count: 3}}
          - {name: shared, pageSize: 2, generate: {count: 4}}
          - {name: deleted, generate: {count: 2}}
          - {name: suspended, generate: {count: 2}}
          - {name: throttled, generate: {count: 2}}
          - {name: steady, generate: {count: 2}}
          - {name: secret, generate: {count: 2}}
          - {name: retarget, generate: {count: 2}}
          - {name: ambient-allowed, generate: {count: 2}}
          - {name: ambient-denied, generate: {count: 2}}
          - {name: ambient-secret, generate: {count: 2}}
          - {name: stale, generate: {count: 2}}
          - {name: stale-throttled, generate: {count: 2}}
          - name: rollout
            defaults: {latestModelApplied: false}
            generate: {count: 3}
          - name: twin-uniform
            generate: {count: 6, zones: ["1", "2", "3"]}
            instances: &twins
              - {id: 0, appHealth: healthy}
              - {id: 1, appHealth: unhealthy}
              - {id: 2, appHealth: unknown, timeCreated: "2020-01-01T00:00:00Z"}
              # Created "in the future" (clock skew reads as young): within its grace period
              # however long the suite runs.
              - {id: 3, appHealth: initializing, timeCreated: "2999-01-01T00:00:00Z"}
              - {id: 4, appHealth: healthy, disks: [{name: osdisk, state: failed}]}
              - {id: 5, appHealth: healthy, protectFromScaleIn: true}
          - name: twin-flex
            orchestrationMode: Flexible
            generate: {count: 6, zones: ["1", "2", "3"]}
            instances: *twins
"#),
    )
}

struct Env {
    cluster: &'static Cluster,
    sim: SimEnv,
    _controller: Controller,
}

/// One cluster, simulator and controller for the whole binary; tests use their own namespaces
/// and scale sets.
fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let cluster = Cluster::shared();
        let (ns, sa) = install_chart(cluster);
        let kubeconfig = cluster.service_account_kubeconfig(ns, sa, None);
        let sim = SimEnv::start(&e2e_scenario());
        let selector = format!("!{OWN_CONTROLLER_LABEL}");
        let controller = Controller::start(
            cluster,
            &kubeconfig,
            &sim,
            &[("SSW_LABEL_SELECTOR", &selector)],
            &[],
        );
        Env {
            cluster,
            sim,
            _controller: controller,
        }
    })
}

fn get(ns: &str, name: &str) -> Value {
    support::controller::get_watch(env().cluster, ns, name)
}

#[track_caller]
fn wait_condition(
    ns: &str,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
    timeout: Duration,
) -> Value {
    support::controller::wait_condition(env().cluster, ns, name, type_, status, reason, timeout)
}

/// A namespace of its own with one watch of `scale_set` that has polled successfully.
fn ready_watch(prefix: &str, name: &str, scale_set: &str) -> (String, ssw_simulator::ScaleSetRef) {
    let e = env();
    let ns = e.cluster.create_namespace(prefix);
    e.cluster
        .kubectl_apply_stdin(&watch_yaml(&ns, name, &[], "rg-e2e", scale_set, ""));
    wait_condition(&ns, name, "Ready", "True", None, Duration::from_secs(40));
    (ns, e.sim.scale_set("rg-e2e", scale_set))
}

fn events(ns: &str, name: &str) -> Vec<Value> {
    support::controller::events_about(env().cluster, ns, name)
}
