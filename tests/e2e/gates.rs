//! Rollout gates (`kubectl wait --for=condition=Healthy`) and old data: a verdict outlives
//! neither the polls nor the target it came from.

use crate::support::controller::{condition, watch_yaml};
use crate::{env, get, ready_watch, support, wait_condition};
use std::time::Duration;

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
