//! Scoping: a controller limited to one namespace (`SSW_NAMESPACE`) or to a label selector
//! (`SSW_LABEL_SELECTOR`) leaves every other ScaleSetWatch alone.

use crate::support::Cluster;
use crate::support::controller::{Controller, SimEnv, get_watch, wait_condition, watch_yaml};
use crate::support::prometheus::sample;
use crate::{controller_kubeconfig, metrics, ops_scenario};
use std::time::{Duration, Instant};

/// How long "nothing happens" is watched for: past one 10 s interval.
const QUIET: Duration = Duration::from_secs(12);

#[test]
fn a_namespaced_controller_ignores_other_namespaces() {
    let cluster = Cluster::shared();
    let kubeconfig = controller_kubeconfig(cluster);
    let sim = SimEnv::start(&ops_scenario());
    let a = cluster.create_namespace("scope-a");
    let b = cluster.create_namespace("scope-b");
    cluster.kubectl_apply_stdin(&watch_yaml(&a, "w", &[], "rg-ops", "scope", ""));
    cluster.kubectl_apply_stdin(&watch_yaml(&b, "w", &[], "rg-ops", "scope", ""));
    let c = Controller::start(cluster, &kubeconfig, &sim, &[("SSW_NAMESPACE", &a)], &[]);
    wait_condition(
        cluster,
        &a,
        "w",
        "Ready",
        "True",
        None,
        Duration::from_secs(30),
    );
    let watched_from = Instant::now();
    assert_no_status_for(cluster, &b, "w", QUIET);
    assert!(watched_from.elapsed() >= QUIET);
    let (text, s) = metrics(&c);
    assert!(
        !s.iter().any(|x| x.labels.get("namespace") == Some(&b)),
        "{b} is in the metrics:\n{text}"
    );
    assert!(sample(&s, "scaleset_watch_healthy_percent", &[("namespace", &a)]).is_some());
}

#[test]
fn a_label_selector_limits_what_is_reconciled() {
    let cluster = Cluster::shared();
    let kubeconfig = controller_kubeconfig(cluster);
    let sim = SimEnv::start(&ops_scenario());
    let ns = cluster.create_namespace("selector");
    cluster.kubectl_apply_stdin(&watch_yaml(
        &ns,
        "team-x",
        &[("team", "x")],
        "rg-ops",
        "scope",
        "",
    ));
    cluster.kubectl_apply_stdin(&watch_yaml(
        &ns,
        "team-y",
        &[("team", "y")],
        "rg-ops",
        "scope",
        "",
    ));
    cluster.kubectl_apply_stdin(&watch_yaml(&ns, "unlabelled", &[], "rg-ops", "scope", ""));
    let _c = Controller::start(
        cluster,
        &kubeconfig,
        &sim,
        &[("SSW_NAMESPACE", &ns), ("SSW_LABEL_SELECTOR", "team=x")],
        &[],
    );
    wait_condition(
        cluster,
        &ns,
        "team-x",
        "Ready",
        "True",
        None,
        Duration::from_secs(30),
    );
    assert!(
        get_watch(cluster, &ns, "unlabelled")["status"].is_null(),
        "an unlabelled watch got a status"
    );
    // Labelled later: picked up at once.
    cluster.kubectl_ok(&["label", "ssw", "unlabelled", "-n", &ns, "team=x"]);
    wait_condition(
        cluster,
        &ns,
        "unlabelled",
        "Ready",
        "True",
        None,
        Duration::from_secs(20),
    );
    assert_no_status_for(cluster, &ns, "team-y", QUIET);
}

/// Asserts that `ns/name` has no status now and for `quiet` more.
#[track_caller]
fn assert_no_status_for(cluster: &Cluster, ns: &str, name: &str, quiet: Duration) {
    let end = Instant::now() + quiet;
    loop {
        let obj = get_watch(cluster, ns, name);
        assert!(
            obj["status"].is_null(),
            "{ns}/{name} out of scope got a status: {:#}",
            obj["status"]
        );
        if Instant::now() >= end {
            break;
        }
        std::thread::sleep(Duration::from_secs(2).min(end - Instant::now()));
    }
}
