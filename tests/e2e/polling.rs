//! When the controller polls: not after a delete nor while suspended, one fetch per scale set
//! per interval however many watches share it, and no sooner than Retry-After when throttled.

use crate::support::controller::{condition, watch_yaml};
use crate::{env, ready_watch, wait_condition};
use std::time::Duration;

fn set_suspend(ns: &str, name: &str, suspend: bool) {
    let patch = format!(r#"{{"spec":{{"suspend":{suspend}}}}}"#);
    env().cluster.kubectl_ok(&[
        "patch", "ssw", name, "-n", ns, "--type", "merge", "-p", &patch,
    ]);
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
