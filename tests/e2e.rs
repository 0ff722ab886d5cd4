//! End to end: a real kube-apiserver, real kubectl and helm, the controller binary as a local
//! process authenticated with a TokenRequest token of the chart's ServiceAccount, and the ARM
//! simulator standing in for Azure.

mod support;

use serde_json::Value;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::controller::{Controller, SimEnv, condition, install_chart, scenario, watch_yaml};
use support::{Cluster, assert_eventually};

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
            "resourceGroup: rg\nscaleSetName: web\nhealth: {unknownAfterFailedIntervals: 0}",
            "spec.health.unknownAfterFailedIntervals",
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
        (
            "resourceGroup: rg\nscaleSetName: web\ncredentials: {secretRef: {name: ../x}}",
            "spec.credentials.secretRef.name",
        ),
        (
            "resourceGroup: rg\nscaleSetName: web\ncredentials: {secretRef: {name: Azure_SP}}",
            "spec.credentials.secretRef.name",
        ),
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
        "unknownAfterFailedIntervals",
        "never passes on old data",
        "appHealthGracePeriod",
        "default grace period of VMSS automatic instance repairs",
        "outdatedModel",
        "Ignore (not counted), Report (default",
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

#[test]
fn a_fleet_with_huge_extension_messages_still_gets_a_bounded_status() {
    let e = env();
    let ns = e.cluster.create_namespace("huge");
    e.cluster
        .kubectl_apply_stdin(&watch_yaml(&ns, "huge", &[], "rg-e2e", "huge", ""));
    // 60 instances x 3 extensions x 20 KB: unbounded, the status is megabytes, which the API
    // server and etcd refuse, and Ready never turns True.
    let obj = wait_condition(
        &ns,
        "huge",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(60),
    );
    let s = &obj["status"];
    assert_eq!(s["instances"]["unhealthy"], 60, "{}", s["instances"]);
    assert_eq!(s["instances"]["extensionsFailed"], 60);
    let listed = s["unhealthyInstances"].as_array().expect("listed");
    let omitted = s["unhealthyInstancesOmitted"].as_u64().unwrap_or(0);
    assert_eq!(listed.len() as u64 + omitted, 60);
    assert_eq!(listed.len(), 50);
    for u in listed {
        let reasons = u["reasons"].as_array().expect("reasons");
        assert_eq!(reasons.len(), 3, "{u}");
        for r in reasons {
            let r = r.as_str().unwrap_or_default();
            assert!(r.len() <= 512, "{} bytes", r.len());
            assert!(
                r.starts_with("extension ") && r.contains(" failed: Enable failed: xxx"),
                "{r}"
            );
            assert!(r.ends_with('…'), "a cut reason says so: {r}");
        }
    }
    let size = serde_json::to_vec(s).expect("json").len();
    assert!(size <= 128 * 1024, "status of {size} bytes");
    for c in s["conditions"].as_array().expect("conditions") {
        assert!(c["message"].as_str().unwrap_or_default().len() <= 4096);
    }
}

#[test]
fn a_new_target_that_fails_its_first_poll_does_not_inherit_the_old_targets_health() {
    let e = env();
    let (ns, _) = ready_watch("retarget", "rt", "retarget");
    let before = wait_condition(
        &ns,
        "rt",
        "Healthy",
        "True",
        Some("AllInstancesHealthy"),
        Duration::from_secs(30),
    );
    assert_eq!(before["status"]["summary"], "2/2");
    // A scale set the simulator does not have: every poll of it fails (404).
    e.cluster.kubectl_ok(&[
        "patch",
        "ssw",
        "rt",
        "-n",
        &ns,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"scaleSetName":"retarget-gone"}}"#,
    ]);
    let obj = wait_condition(
        &ns,
        "rt",
        "Ready",
        "False",
        Some("ScaleSetNotFound"),
        Duration::from_secs(30),
    );
    let s = &obj["status"];
    assert_eq!(s["observedGeneration"], obj["metadata"]["generation"]);
    for absent in [
        "summary",
        "instances",
        "healthyPercent",
        "unhealthyInstances",
        "lastPollTime",
    ] {
        assert!(
            s[absent].is_null(),
            "{absent} of the old target is still shown: {s:#}"
        );
    }
    for type_ in ["Healthy", "Degraded"] {
        let c = condition(&obj, type_).expect("condition");
        assert_eq!(c["status"], "Unknown", "{c}");
        assert_eq!(c["reason"], "TargetChanged", "{c}");
    }
    assert!(
        s["target"]
            .as_str()
            .unwrap_or_default()
            .contains("/rg-e2e/retarget-gone"),
        "{s:#}"
    );
    let row = e
        .cluster
        .kubectl_ok(&["get", "ssw", "rt", "-n", &ns, "--no-headers"]);
    assert!(
        !row.contains("2/2") && row.contains("TargetChanged"),
        "{row}"
    );
}

#[test]
fn the_controllers_own_identity_serves_only_the_namespaces_and_subscriptions_allowed() {
    const OTHER_SUB: &str = "00000000-0000-0000-0000-0000000000bb";
    let e = env();
    let allowed = e.cluster.create_namespace("ambient-ok");
    let denied = e.cluster.create_namespace("ambient-no");
    let (sa_ns, sa) = install_chart(e.cluster);
    let kubeconfig = e.cluster.service_account_kubeconfig(sa_ns, sa, None);
    let selector = format!("{OWN_CONTROLLER_LABEL}=ambient");
    let _controller = Controller::start(
        e.cluster,
        &kubeconfig,
        &e.sim,
        &[
            ("SSW_LABEL_SELECTOR", &selector),
            ("SSW_AMBIENT_NAMESPACES", &allowed),
            ("SSW_AMBIENT_SUBSCRIPTIONS", support::controller::SUB),
        ],
        &[],
    );
    let label = [(OWN_CONTROLLER_LABEL, "ambient")];
    let apply = |ns: &str, name: &str, scale_set: &str, extra: &str| {
        e.cluster
            .kubectl_apply_stdin(&watch_yaml(ns, name, &label, "rg-e2e", scale_set, extra));
    };
    apply(&denied, "w", "ambient-denied", "");
    apply(&allowed, "w", "ambient-allowed", "");
    let other_sub = watch_yaml(
        &allowed,
        "other-sub",
        &label,
        "rg-e2e",
        "ambient-allowed",
        "",
    )
    .replace(support::controller::SUB, OTHER_SUB);
    e.cluster.kubectl_apply_stdin(&other_sub);

    let obj = wait_condition(
        &denied,
        "w",
        "Ready",
        "False",
        Some("CredentialsNotAllowed"),
        Duration::from_secs(30),
    );
    let message = condition(&obj, "Ready").expect("Ready")["message"].to_string();
    assert!(
        message.contains(&format!("namespace {denied}")) && message.contains("spec.credentials"),
        "{message}"
    );
    assert_eq!(
        condition(&obj, "Healthy").expect("Healthy")["status"],
        "Unknown"
    );
    let obj = wait_condition(
        &allowed,
        "other-sub",
        "Ready",
        "False",
        Some("CredentialsNotAllowed"),
        Duration::from_secs(30),
    );
    assert!(
        condition(&obj, "Ready").expect("Ready")["message"]
            .to_string()
            .contains(OTHER_SUB)
    );
    wait_condition(
        &allowed,
        "w",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(30),
    );

    // A watch in the denied namespace that brings its own service principal is served.
    e.cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "own-sp",
        "-n",
        &denied,
        &format!("--from-literal=tenantId={}", support::controller::TENANT),
        &format!("--from-literal=clientId={}", support::controller::CLIENT),
        &format!(
            "--from-literal=clientSecret={}",
            support::controller::SECRET
        ),
    ]);
    apply(
        &denied,
        "own",
        "ambient-secret",
        "  credentials:\n    secretRef:\n      name: own-sp",
    );
    wait_condition(
        &denied,
        "own",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(30),
    );

    // Refused before any request: ARM never heard of the denied scale set or subscription.
    let stats = e.sim.stats();
    let denied_counters = stats.scale_set(&e.sim.scale_set("rg-e2e", "ambient-denied"));
    assert_eq!(denied_counters.list_pages.count, 0, "{denied_counters:?}");
    assert_eq!(denied_counters.first_pages, 0);
    assert!(
        !stats
            .recent
            .iter()
            .any(|r| r.path.contains("ambient-denied") || r.path.contains(OTHER_SUB)),
        "{:#?}",
        stats.recent
    );
}

#[test]
fn a_status_computed_for_a_deleted_watch_never_lands_on_its_successor() {
    use kube::api::{Api, DeleteParams, PostParams};
    use scaleset_watch::api::{ScaleSetWatch, ScaleSetWatchStatus};
    use scaleset_watch::controller::reconcile::{StatusWrite, patch_status};

    let e = env();
    let ns = e.cluster.create_namespace("uid");
    // No controller reconciles it: only this test writes its status.
    let yaml = watch_yaml(
        &ns,
        "w",
        &[(OWN_CONTROLLER_LABEL, "none")],
        "rg-e2e",
        "steady",
        "",
    );
    e.cluster.kubectl_apply_stdin(&yaml);
    let status = |summary: &str| ScaleSetWatchStatus {
        summary: Some(summary.into()),
        observed_generation: Some(1),
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(e.cluster.kubeconfig()).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("config");
        let api: Api<ScaleSetWatch> =
            Api::namespaced(kube::Client::try_from(config).expect("client"), &ns);
        let old = api.get("w").await.expect("get");
        assert_eq!(
            patch_status(&api, &old, &status("first"))
                .await
                .expect("patch"),
            StatusWrite::Written
        );

        // Deleted and created again while a poll of the old one was running.
        api.delete("w", &DeleteParams::default())
            .await
            .expect("delete");
        let mut again = ScaleSetWatch::new("w", old.spec.clone());
        again.metadata.labels = old.metadata.labels.clone();
        let new = api
            .create(&PostParams::default(), &again)
            .await
            .expect("create");
        assert_ne!(new.metadata.uid, old.metadata.uid);

        assert_eq!(
            patch_status(&api, &old, &status("computed-for-the-old-object"))
                .await
                .expect("a replaced object is not an error"),
            StatusWrite::Gone
        );
        let stored = api.get("w").await.expect("get");
        assert!(stored.status.is_none(), "{:?}", stored.status);

        // The new object's own status is written, and replaces the whole status.
        let mut full = status("for-the-new-object");
        full.unhealthy_instances_omitted = 3;
        assert_eq!(
            patch_status(&api, &new, &full).await.expect("patch"),
            StatusWrite::Written
        );
        assert_eq!(
            patch_status(&api, &new, &status("for-the-new-object"))
                .await
                .expect("patch"),
            StatusWrite::Written
        );
        let stored = api.get("w").await.expect("get");
        assert_eq!(stored.status, Some(status("for-the-new-object")));

        // Deleted for good: dropped, not an error.
        api.delete("w", &DeleteParams::default())
            .await
            .expect("delete");
        assert_eq!(
            patch_status(&api, &new, &status("late"))
                .await
                .expect("no error"),
            StatusWrite::Gone
        );
    });
}

/// `kubectl wait --for=condition=Healthy ssw/NAME`, the rollout gate the README documents.
fn gate(ns: &str, name: &str, condition: &str, timeout: &str) -> std::process::Output {
    env().cluster.kubectl(&[
        "wait",
        &format!("ssw/{name}"),
        "-n",
        ns,
        &format!("--for=condition={condition}"),
        &format!("--timeout={timeout}"),
    ])
}

#[test]
fn a_healthy_gate_does_not_pass_on_the_last_good_poll_while_polls_fail() {
    let e = env();
    let ns = e.cluster.create_namespace("stale");
    let health = "  health: {unknownAfterFailedIntervals: 1}";
    e.cluster
        .kubectl_apply_stdin(&watch_yaml(&ns, "s", &[], "rg-e2e", "stale", health));
    wait_condition(
        &ns,
        "s",
        "Healthy",
        "True",
        Some("AllInstancesHealthy"),
        Duration::from_secs(40),
    );
    let passed = gate(&ns, "s", "Healthy", "10s");
    assert!(
        passed.status.success(),
        "{}",
        support::describe("gate", &passed)
    );

    let r = e.sim.scale_set("rg-e2e", "stale");
    e.sim.set_faults(&r, "[{serverError: {status: 500}}]");
    // One failed interval (10s) after the first failed poll, the old verdict goes.
    let obj = wait_condition(
        &ns,
        "s",
        "Healthy",
        "Unknown",
        Some("PollsFailing"),
        Duration::from_secs(60),
    );
    assert_eq!(obj["status"]["summary"], "2/2", "the last good counts stay");
    let ready = condition(&obj, "Ready").expect("Ready");
    assert_eq!(ready["status"], "False", "{ready}");
    let healthy = condition(&obj, "Healthy").expect("Healthy");
    let message = healthy["message"].as_str().unwrap_or_default();
    let since = ready["lastTransitionTime"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "No poll has succeeded since {since} (Ready is False: "
        )) && message.contains("1 or more poll intervals of 10s"),
        "{message}"
    );
    let degraded = condition(&obj, "Degraded").expect("Degraded");
    assert_eq!(
        (degraded["status"].as_str(), degraded["reason"].as_str()),
        (Some("Unknown"), Some("PollsFailing"))
    );
    let row = e
        .cluster
        .kubectl_ok(&["get", "ssw", "s", "-n", &ns, "--no-headers"]);
    assert!(row.contains("PollsFailing"), "{row}");

    // Gates started now wait: neither Healthy nor its opposite is claimed from old data.
    for (condition, timeout) in [("Healthy", "20s"), ("Healthy=false", "5s")] {
        let out = gate(&ns, "s", condition, timeout);
        assert!(
            !out.status.success(),
            "{}",
            support::describe(condition, &out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("timed out"),
            "{}",
            support::describe(condition, &out)
        );
    }

    // A gate that is waiting when Azure answers again passes.
    let waiting = {
        let ns = ns.clone();
        std::thread::spawn(move || gate(&ns, "s", "Healthy", "90s"))
    };
    std::thread::sleep(Duration::from_secs(2));
    e.sim.clear_faults(&r);
    let out = waiting.join().expect("gate thread");
    assert!(out.status.success(), "{}", support::describe("gate", &out));
    let obj = get(&ns, "s");
    assert_eq!(
        condition(&obj, "Healthy").expect("Healthy")["reason"],
        "AllInstancesHealthy"
    );
    assert_eq!(condition(&obj, "Ready").expect("Ready")["status"], "True");
}

#[test]
fn a_long_retry_after_does_not_hold_the_old_verdict_past_the_failed_intervals() {
    let e = env();
    let ns = e.cluster.create_namespace("stale-429");
    let health = "  health: {unknownAfterFailedIntervals: 1}";
    e.cluster.kubectl_apply_stdin(&watch_yaml(
        &ns,
        "s",
        &[],
        "rg-e2e",
        "stale-throttled",
        health,
    ));
    wait_condition(&ns, "s", "Healthy", "True", None, Duration::from_secs(40));
    let r = e.sim.scale_set("rg-e2e", "stale-throttled");
    e.sim
        .set_faults(&r, "[{throttle: {retryAfterSeconds: 300}}]");
    wait_condition(
        &ns,
        "s",
        "Ready",
        "False",
        Some("Throttled"),
        Duration::from_secs(25),
    );
    let throttled = e.sim.stats().scale_set(&r).throttled;
    // Retrying only after Retry-After, Healthy would stand for 5 minutes.
    wait_condition(
        &ns,
        "s",
        "Healthy",
        "Unknown",
        Some("PollsFailing"),
        Duration::from_secs(60),
    );
    assert_eq!(
        e.sim.stats().scale_set(&r).throttled,
        throttled,
        "a request was sent before Retry-After passed"
    );
}

#[test]
fn kubectl_get_wide_shows_the_resource_group_and_the_condition_messages() {
    let e = env();
    let (ns, _) = ready_watch("wide", "w", "worker");
    let obj = wait_condition(&ns, "w", "Degraded", "True", None, Duration::from_secs(30));
    let degraded = condition(&obj, "Degraded").expect("Degraded")["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        degraded.starts_with("3 unhealthy: 3 (extension bootstrap failed"),
        "{degraded}"
    );
    let wide = e
        .cluster
        .kubectl_ok(&["get", "ssw", "w", "-n", &ns, "-o", "wide"]);
    let mut lines = wide.lines();
    let header = lines.next().unwrap_or_default();
    let row = lines.next().unwrap_or_default();
    for column in [
        "RESOURCE GROUP",
        "MODE",
        "OUTDATED",
        "READY MESSAGE",
        "DEGRADED MESSAGE",
    ] {
        assert!(header.contains(column), "{column} missing:\n{wide}");
    }
    for value in [
        " rg-e2e ",
        " Uniform ",
        "Listed 12 instances of scale set worker",
        degraded.as_str(),
    ] {
        assert!(row.contains(value), "{value:?} missing:\n{wide}");
    }
    let narrow = e.cluster.kubectl_ok(&["get", "ssw", "w", "-n", &ns]);
    assert!(
        !narrow.contains("RESOURCE GROUP") && !narrow.contains("Listed 12"),
        "the default view is unchanged:\n{narrow}"
    );
}

/// A rolling upgrade as the simulator plays it: instances move to the latest model one by
/// one, and `outdatedModel` counts down to 0 while the watch stays healthy (Report).
#[test]
fn a_rolling_upgrade_shows_outdated_model_counting_down() {
    let (ns, rollout) = ready_watch("rollout", "rollout", "rollout");
    let outdated = |expected: u64| {
        let mut last = Value::Null;
        let seen = support::wait_for(Duration::from_secs(10 + 8), || {
            last = get(&ns, "rollout");
            last["status"]["instances"]["outdatedModel"] == expected
        });
        assert!(seen, "outdatedModel {expected}: {:#}", last["status"]);
        last
    };
    let obj = outdated(3);
    assert_eq!(
        obj["status"]["outdatedInstances"],
        serde_json::json!(["0", "1", "2"])
    );
    assert_eq!(
        obj["status"]["summary"], "3/3",
        "Report: outdated is not unhealthy"
    );
    for (id, left) in [("0", 2), ("1", 1), ("2", 0)] {
        env()
            .sim
            .put_instance(&rollout, &format!("{{id: {id}, latestModelApplied: true}}"));
        let obj = outdated(left);
        assert_eq!(obj["status"]["summary"], "3/3");
    }
    let obj = get(&ns, "rollout");
    assert!(
        obj["status"]["outdatedInstances"].is_null(),
        "{:#}",
        obj["status"]
    );
}

/// The same instance states in a Uniform and a Flexible set give the same health, counts,
/// zones and reasons; only what Flexible VMs do not have (latestModelApplied, protection
/// policies) is absent there.
#[test]
fn uniform_and_flexible_sets_with_the_same_instances_report_the_same_health() {
    let (ns_u, _) = ready_watch("twin-u", "twin", "twin-uniform");
    let (ns_f, _) = ready_watch("twin-f", "twin", "twin-flex");
    let (u, f) = (get(&ns_u, "twin"), get(&ns_f, "twin"));
    let (su, sf) = (&u["status"], &f["status"]);
    let i = &su["instances"];
    assert_eq!(su["summary"], "3/6", "{su:#}");
    assert_eq!(
        i["applicationHealth"],
        serde_json::json!({"healthy": 3, "unhealthy": 1, "unknown": 1, "initializing": 1, "notReported": 0})
    );
    assert_eq!(
        i["applicationHealthPending"], 1,
        "the unknown one, created in 2020"
    );
    assert_eq!(i["outdatedModel"], 0);
    assert_eq!(i["protectedFromScaleIn"], 1);
    assert_eq!(
        su["zones"],
        serde_json::json!([
            {"zone": "1", "total": 2, "unhealthy": 0},
            {"zone": "2", "total": 2, "unhealthy": 2},
            {"zone": "3", "total": 2, "unhealthy": 1}
        ])
    );
    for field in ["summary", "healthyPercent", "zones"] {
        assert_eq!(su[field], sf[field], "{field}");
    }
    assert_eq!(
        (&su["orchestrationMode"], &sf["orchestrationMode"]),
        (
            &serde_json::json!("Uniform"),
            &serde_json::json!("Flexible")
        )
    );
    let mut without_model = i.clone();
    for key in [
        "outdatedModel",
        "protectedFromScaleIn",
        "protectedFromScaleSetActions",
    ] {
        without_model.as_object_mut().map(|o| o.remove(key));
        assert!(sf["instances"][key].is_null(), "Flexible: no {key}");
    }
    assert_eq!(without_model, sf["instances"]);
    // Reasons alike; Flexible instances are named by VM name.
    let reasons = |s: &Value| -> Vec<Value> {
        s["unhealthyInstances"]
            .as_array()
            .expect("listed")
            .iter()
            .map(|u| u["reasons"].clone())
            .collect()
    };
    assert_eq!(reasons(su), reasons(sf));
    assert_eq!(sf["unhealthyInstances"][0]["instanceId"], "twin-flex_1");
    for s in [su, sf] {
        let degraded = s["conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .find(|c| c["type"] == "Degraded")
            .expect("Degraded");
        assert_eq!(degraded["status"], "True");
    }
}
