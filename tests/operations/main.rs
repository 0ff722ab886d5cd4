//! End to end, the operational promises: leader election (kill -9 and SIGTERM hand-overs),
//! workload identity against the cluster's own service-account issuer, metrics and probes,
//! JSON logs, and namespace / label-selector scoping.
//!
//! Everything is real: the kube-apiserver of `hack/control-plane.sh`, kubectl, the controller
//! binary run as local processes with a TokenRequest kubeconfig of the chart's ServiceAccount,
//! and the ARM simulator standing in for Azure (one per test, so its request counts are the
//! test's own). Every controller here watches only its test's namespace (`SSW_NAMESPACE`), so
//! tests running in parallel never reconcile each other's ScaleSetWatches.
//!
//! One test binary (one control plane); one module per topic: `leader_election`,
//! `workload_identity`, `observability` (metrics, probes and logs) and `scoping`.

#[path = "../support/mod.rs"]
mod support;

mod leader_election;
mod observability;
mod scoping;
mod workload_identity;

use std::process::Command;
use std::time::Duration;
use support::controller::{Controller, install_chart, scenario};
use support::prometheus::{Sample, parse_samples};
use support::{Cluster, run_command};

fn ops_scenario() -> String {
    scenario(
        "rg-ops",
        r#"          - {name: leader, pageSize: 2, defaults: {appHealth: healthy}, generate: {count: 3}}
          - {name: handover, generate: {count: 2}}
          - name: metrics
            pageSize: 3
            defaults: {appHealth: healthy}
            generate: {count: 4}
            instances:
              - {id: 2, appHealth: unhealthy}
          - {name: logs, pageSize: 2, generate: {count: 3}}
          - {name: scope, generate: {count: 2}}
"#,
    )
}

/// The chart's ServiceAccount's kubeconfig, as every controller here runs with.
fn controller_kubeconfig(cluster: &Cluster) -> std::path::PathBuf {
    let (ns, sa) = install_chart(cluster);
    cluster.service_account_kubeconfig(ns, sa, None)
}

/// One response of the controller's HTTP endpoint.
struct Response {
    code: u16,
    content_type: String,
    body: String,
}

fn http_get(c: &Controller, path: &str) -> Response {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "--max-time",
        "5",
        "-w",
        "\n%{http_code}\n%{content_type}",
        &format!("http://{}{path}", c.http_addr),
    ]);
    let out = run_command(cmd, None, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts = text.rsplitn(3, '\n');
    let content_type = parts.next().unwrap_or_default().to_owned();
    let code = parts.next().unwrap_or_default().parse().unwrap_or(0);
    let body = parts.next().unwrap_or_default().to_owned();
    Response {
        code,
        content_type,
        body,
    }
}

#[track_caller]
fn metrics(c: &Controller) -> (String, Vec<Sample>) {
    let r = http_get(c, "/metrics");
    assert_eq!(r.code, 200, "/metrics answered {}: {}", r.code, r.body);
    let samples = parse_samples(&r.body);
    (r.body, samples)
}
