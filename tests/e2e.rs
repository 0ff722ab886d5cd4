//! End to end: a real kube-apiserver, real kubectl and helm, the controller binary as a local
//! process authenticated with a TokenRequest token of the chart's ServiceAccount, and the ARM
//! simulator standing in for Azure.

mod support;

use serde_json::Value;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::controller::{Controller, SimEnv, condition, install_chart, scenario, watch_yaml};
use support::{Cluster, assert_eventually};

fn e2e_scenario() -> String {
    scenario(
        "rg-e2e",
        r#"          - name: worker
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
"#,
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
        let controller = Controller::start(cluster, &kubeconfig, &sim, &[], &[]);
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
fn ready_watch(
    prefix: &str,
    name: &str,
    scale_set: &str,
) -> (String, scaleset_watch::simulator::ScaleSetRef) {
    let e = env();
    let ns = e.cluster.create_namespace(prefix);
    e.cluster
        .kubectl_apply_stdin(&watch_yaml(&ns, name, &[], "rg-e2e", scale_set, ""));
    wait_condition(&ns, name, "Ready", "True", None, Duration::from_secs(40));
    (ns, e.sim.scale_set("rg-e2e", scale_set))
}

fn set_suspend(ns: &str, name: &str, suspend: bool) {
    let patch = format!(r#"{{"spec":{{"suspend":{suspend}}}}}"#);
    env().cluster.kubectl_ok(&[
        "patch", "ssw", name, "-n", ns, "--type", "merge", "-p", &patch,
    ]);
}

fn events(ns: &str, name: &str) -> Vec<Value> {
    support::controller::events_about(env().cluster, ns, name)
}

#[test]
fn status_reports_counts_reasons_and_conditions() {
    let e = env();
    let ns = e.cluster.create_namespace("counts");
    e.cluster
        .kubectl_apply_stdin(&watch_yaml(&ns, "workers", &[], "rg-e2e", "worker", ""));
    let obj = wait_condition(
        &ns,
        "workers",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(40),
    );
    let s = &obj["status"];
    let i = &s["instances"];
    assert_eq!(i["total"], 12, "{s:#}");
    assert_eq!(i["healthy"], 9);
    assert_eq!(i["unhealthy"], 3);
    assert_eq!(i["running"], 11);
    assert_eq!(i["deallocated"], 1);
    assert_eq!(i["extensionsFailed"], 1);
    assert_eq!(i["applicationUnhealthy"], 1);
    assert_eq!(i["noInstanceView"], 0);
    assert_eq!(s["summary"], "9/12");
    assert_eq!(s["healthyPercent"], 75);
    assert_eq!(s["observedGeneration"], obj["metadata"]["generation"]);
    let unhealthy: Vec<(String, Vec<String>)> = s["unhealthyInstances"]
        .as_array()
        .expect("list")
        .iter()
        .map(|u| {
            (
                u["instanceId"].as_str().unwrap_or_default().to_owned(),
                u["reasons"]
                    .as_array()
                    .expect("reasons")
                    .iter()
                    .map(|r| r.as_str().unwrap_or_default().to_owned())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        unhealthy,
        vec![
            (
                "3".to_string(),
                vec!["extension bootstrap failed: Enable failed: exit status=1".to_string()]
            ),
            (
                "7".to_string(),
                vec!["power state deallocated (expected running)".to_string()]
            ),
            (
                "9".to_string(),
                vec!["application health unhealthy".to_string()]
            ),
        ],
        "{s:#}"
    );
    let fds = s["faultDomains"].as_array().expect("fault domains");
    assert_eq!(fds.len(), 3);
    assert_eq!(
        fds.iter()
            .map(|d| d["total"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        12
    );
    assert_eq!(
        s["updateDomains"].as_array().expect("update domains").len(),
        4
    );
    let healthy = condition(&obj, "Healthy").expect("Healthy");
    assert_eq!(healthy["status"], "False");
    assert_eq!(healthy["reason"], "BelowMinHealthy");
    assert_eq!(
        condition(&obj, "Degraded").expect("Degraded")["status"],
        "True"
    );

    // What a person sees.
    let table = e.cluster.kubectl_ok(&["get", "ssw", "-n", &ns]);
    let header = table.lines().next().unwrap_or_default();
    for column in [
        "NAME",
        "SCALE SET",
        "HEALTHY",
        "READY",
        "STATUS",
        "LAST POLL",
        "AGE",
    ] {
        assert!(header.contains(column), "column {column} missing:\n{table}");
    }
    let row = table.lines().nth(1).unwrap_or_default();
    for cell in ["workers", "worker", "9/12", "True", "BelowMinHealthy"] {
        assert!(row.contains(cell), "{cell} missing:\n{table}");
    }

    // A laxer policy on the same fleet.
    e.cluster.kubectl_apply_stdin(&watch_yaml(
        &ns,
        "workers-lax",
        &[],
        "rg-e2e",
        "worker",
        "  health:\n    minHealthyPercent: 70\n    expectedPowerStates: [running, deallocated]",
    ));
    let lax = wait_condition(
        &ns,
        "workers-lax",
        "Healthy",
        "True",
        Some("MinHealthyMet"),
        Duration::from_secs(40),
    );
    assert_eq!(
        lax["status"]["summary"], "10/12",
        "deallocated is expected here"
    );
}

#[test]
fn an_instance_turning_unhealthy_and_back_is_seen_within_an_interval_with_events() {
    let e = env();
    let ns = e.cluster.create_namespace("flip");
    let flip = e.sim.scale_set("rg-e2e", "flip");
    e.cluster
        .kubectl_apply_stdin(&watch_yaml(&ns, "flip", &[], "rg-e2e", "flip", ""));
    wait_condition(
        &ns,
        "flip",
        "Healthy",
        "True",
        Some("AllInstancesHealthy"),
        Duration::from_secs(40),
    );

    e.sim.put_instance(
        &flip,
        "{id: 1, disks: [{name: osdisk, state: failed, message: 'disk detached'}]}",
    );
    let broke = Instant::now();
    let obj = wait_condition(
        &ns,
        "flip",
        "Healthy",
        "False",
        Some("BelowMinHealthy"),
        Duration::from_secs(10 + 8),
    );
    eprintln!("unhealthy seen after {:?}", broke.elapsed());
    assert_eq!(obj["status"]["unhealthyInstances"][0]["instanceId"], "1");
    assert_eq!(
        obj["status"]["unhealthyInstances"][0]["reasons"][0],
        "disk osdisk failed: disk detached"
    );
    assert_eq!(obj["status"]["instances"]["disksFailed"], 1);
    assert_eventually(Duration::from_secs(10), "an Unhealthy event", || {
        events(&ns, "flip")
            .iter()
            .any(|ev| ev["reason"] == "Unhealthy" && ev["type"] == "Warning")
    });

    e.sim.put_instance(&flip, "{id: 1}");
    let obj = wait_condition(
        &ns,
        "flip",
        "Healthy",
        "True",
        Some("AllInstancesHealthy"),
        Duration::from_secs(10 + 8),
    );
    assert!(
        obj["status"]["unhealthyInstances"].is_null(),
        "{:#}",
        obj["status"]
    );
    assert_eventually(Duration::from_secs(10), "a Healthy event", || {
        events(&ns, "flip")
            .iter()
            .any(|ev| ev["reason"] == "Healthy" && ev["type"] == "Normal")
    });
    // One event per transition, not one per poll.
    let unhealthy_events = events(&ns, "flip")
        .iter()
        .filter(|ev| ev["reason"] == "Unhealthy")
        .count();
    assert_eq!(unhealthy_events, 1);
}

#[test]
fn invalid_specs_are_refused_by_the_api_server_with_clear_messages() {
    let e = env();
    let ns = e.cluster.create_namespace("invalid");
    const UUID: &str = "00000000-0000-0000-0000-000000000000";
    // (the field that is wrong, the spec around it, what the API server must say)
    let cases: &[(&str, &str)] = &[
        (
            "subscriptionId: not-a-uuid\nresourceGroup: rg\nscaleSetName: web",
            "spec.subscriptionId",
        ),
        (
            "resourceGroup: rg.\nscaleSetName: web",
            "spec.resourceGroup",
        ),
        (
            "resourceGroup: \"\"\nscaleSetName: web",
            "spec.resourceGroup",
        ),
        ("resourceGroup: rg\nscaleSetName: -web", "spec.scaleSetName"),
        (
            "resourceGroup: rg\nscaleSetName: web\ninterval: 5s",
            "interval must be at least 10s",
        ),
        (
            "resourceGroup: rg\nscaleSetName: web\ninterval: often",
            "spec.interval",
        ),
        (
            "resourceGroup: rg\nscaleSetName: web\nhealth: {minHealthyPercent: 101}",
            "spec.health.minHealthyPercent",
        ),
        (
            "resourceGroup: rg\nscaleSetName: web\ncloud: AzureMars",
            "\"AzurePublic\", \"AzureChina\", \"AzureUSGovernment\"",
        ),
        (
            "resourceGroup: rg\nscaleSetName: web\nhealth: {expectedPowerStates: [sleeping]}",
            "spec.health.expectedPowerStates[0]",
        ),
        (
            "resourceGroup: rg\nscaleSetName: web\napiVersion: latest",
            "spec.apiVersion",
        ),
        ("resourceGroup: rg", "spec.scaleSetName: Required value"),
    ];
    for (i, (spec, expected)) in cases.iter().enumerate() {
        let spec = if spec.starts_with("subscriptionId") {
            spec.to_string()
        } else {
            format!("subscriptionId: {UUID}\n{spec}")
        };
        let body: String = spec.lines().map(|l| format!("  {l}\n")).collect();
        let yaml = format!(
            "apiVersion: scalesetwatch.io/v1alpha1\nkind: ScaleSetWatch\nmetadata:\n  name: bad-{i}\n  namespace: {ns}\nspec:\n{body}"
        );
        let out = e.cluster.kubectl_stdin(&["apply", "-f", "-"], &yaml);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted:\n{yaml}");
        assert!(
            stderr.contains(expected),
            "case {i}: expected {expected:?} in:\n{stderr}\nfor:\n{yaml}"
        );
    }
    // The schema documents itself.
    let explained = e
        .cluster
        .kubectl_ok(&["explain", "scalesetwatch.spec.health"]);
    // kubectl wraps lines; compare with single spaces.
    let explained = explained.split_whitespace().collect::<Vec<_>>().join(" ");
    for words in [
        "minHealthyPercent",
        "at least this percentage of its instances is healthy",
        "expectedPowerStates",
        "requireVmAgent",
    ] {
        assert!(
            explained.contains(words),
            "{words:?} missing from:\n{explained}"
        );
    }
    let listed = e
        .cluster
        .kubectl_ok(&["get", "ssw", "-n", &ns, "-o", "name"]);
    assert!(
        listed.trim().is_empty(),
        "nothing invalid was stored: {listed}"
    );
}

#[test]
fn secret_credentials_wrong_missing_and_right() {
    let e = env();
    let ns = e.cluster.create_namespace("secret");
    let spec = "  credentials:\n    secretRef:\n      name: azure-sp";
    e.cluster
        .kubectl_apply_stdin(&watch_yaml(&ns, "sp", &[], "rg-e2e", "secret", spec));
    let obj = wait_condition(
        &ns,
        "sp",
        "Ready",
        "False",
        Some("CredentialsNotFound"),
        Duration::from_secs(30),
    );
    assert!(
        condition(&obj, "Ready").expect("Ready")["message"]
            .as_str()
            .unwrap_or_default()
            .contains("azure-sp")
    );
    assert_eq!(
        condition(&obj, "Healthy").expect("Healthy")["status"],
        "Unknown"
    );

    let wrong = "this-is-the-wrong-secret";
    e.cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "azure-sp",
        "-n",
        &ns,
        "--from-literal=tenantId=0d3f2a1b-5c6e-4f70-8a9b-1c2d3e4f5a6b",
        "--from-literal=clientId=8e1b2c3d-4a5f-4b6c-9d7e-0f1a2b3c4d5e",
        &format!("--from-literal=clientSecret={wrong}"),
    ]);
    let obj = wait_condition(
        &ns,
        "sp",
        "Ready",
        "False",
        Some("AuthenticationFailed"),
        Duration::from_secs(60),
    );
    let dump = serde_json::to_string(&obj).expect("json");
    assert!(!dump.contains(wrong), "the secret leaked into the status");
    assert_eventually(Duration::from_secs(10), "a PollFailed event", || {
        events(&ns, "sp")
            .iter()
            .any(|ev| ev["reason"] == "PollFailed" && ev["type"] == "Warning")
    });
    let all_events = serde_json::to_string(&events(&ns, "sp")).expect("json");
    assert!(!all_events.contains(wrong), "the secret leaked into events");
    assert!(
        !e._controller.logs().contains(wrong),
        "the secret leaked into logs"
    );
    assert!(
        e._controller.get("/healthz").is_some(),
        "the controller is still up"
    );

    let patch = format!(
        r#"{{"stringData":{{"clientSecret":"{}"}}}}"#,
        support::controller::SECRET
    );
    e.cluster.kubectl_ok(&[
        "patch", "secret", "azure-sp", "-n", &ns, "--type", "merge", "-p", &patch,
    ]);
    let obj = wait_condition(
        &ns,
        "sp",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(90),
    );
    assert_eq!(obj["status"]["summary"], "2/2");
}

#[test]
fn deleting_a_watch_stops_its_polling() {
    let e = env();
    let (ns, r) = ready_watch("delete", "gone", "deleted");
    e.cluster
        .kubectl_ok(&["delete", "ssw", "gone", "-n", &ns, "--wait=true"]);
    // A reconcile already running may still finish its fetch.
    std::thread::sleep(Duration::from_secs(2));
    let before = e.sim.fetches(&r);
    std::thread::sleep(Duration::from_secs(25));
    assert_eq!(
        e.sim.fetches(&r),
        before,
        "the simulator still sees polls after the delete"
    );
}

#[test]
fn suspend_stops_polling_and_says_so() {
    let e = env();
    let (ns, r) = ready_watch("suspend", "s", "suspended");
    set_suspend(&ns, "s", true);
    let obj = wait_condition(
        &ns,
        "s",
        "Ready",
        "False",
        Some("Suspended"),
        Duration::from_secs(20),
    );
    assert_eq!(obj["status"]["summary"], "2/2", "the last counts are kept");
    std::thread::sleep(Duration::from_secs(2));
    let before = e.sim.fetches(&r);
    std::thread::sleep(Duration::from_secs(22));
    assert_eq!(e.sim.fetches(&r), before, "a suspended watch polled");
    set_suspend(&ns, "s", false);
    wait_condition(
        &ns,
        "s",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(30),
    );
}

#[test]
fn watches_of_one_scale_set_share_one_fetch_per_interval() {
    let e = env();
    let ns = e.cluster.create_namespace("shared");
    let r = e.sim.scale_set("rg-e2e", "shared");
    for name in ["a", "b", "c"] {
        e.cluster
            .kubectl_apply_stdin(&watch_yaml(&ns, name, &[], "rg-e2e", "shared", ""));
    }
    for name in ["a", "b", "c"] {
        let obj = wait_condition(&ns, name, "Ready", "True", None, Duration::from_secs(40));
        assert_eq!(obj["status"]["summary"], "4/4");
    }
    let before = e.sim.fetches(&r);
    let window = Duration::from_secs(31);
    std::thread::sleep(window);
    let fetches = e.sim.fetches(&r) - before;
    // Three watches at 10s each would fetch about 9 times in 31s without sharing.
    assert!(
        (2..=4).contains(&fetches),
        "{fetches} fetches in {window:?}"
    );
}

#[test]
fn throttling_keeps_the_last_counts_says_so_and_backs_off() {
    let e = env();
    let (ns, r) = ready_watch("throttle", "t", "throttled");
    e.sim
        .set_faults(&r, "[{throttle: {retryAfterSeconds: 40}}]");
    let obj = wait_condition(
        &ns,
        "t",
        "Ready",
        "False",
        Some("Throttled"),
        Duration::from_secs(25),
    );
    assert_eq!(obj["status"]["summary"], "2/2", "the last good counts stay");
    let message = condition(&obj, "Ready").expect("Ready")["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("Counts are from the last successful poll"),
        "{message}"
    );
    let throttled_at = e.sim.stats().scale_set(&r).throttled;
    std::thread::sleep(Duration::from_secs(20));
    assert_eq!(
        e.sim.stats().scale_set(&r).throttled,
        throttled_at,
        "requests were sent before Retry-After passed"
    );
    e.sim.clear_faults(&r);
    wait_condition(
        &ns,
        "t",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(60),
    );
}

#[test]
fn a_steady_fleet_does_not_rewrite_its_status_every_poll() {
    let e = env();
    let (ns, r) = ready_watch("steady", "st", "steady");
    let version = get(&ns, "st")["metadata"]["resourceVersion"].clone();
    let before = e.sim.fetches(&r);
    std::thread::sleep(Duration::from_secs(25));
    assert!(e.sim.fetches(&r) - before >= 2, "it kept polling");
    let after = get(&ns, "st");
    assert_eq!(
        after["metadata"]["resourceVersion"], version,
        "status was rewritten without change"
    );
}
