//! The per-scale-set schedule end to end: the kube-apiserver of `hack/control-plane.sh`, the
//! controller binary and the ARM simulator, one controller and simulator per test (so the
//! simulator's request log is the test's own), each watching only its test's namespace.
//!
//! Fetch times are read from the simulator's log of the requests it answered. Every scale set
//! here fits on one page, so each list request is one fetch.

mod support;

use jiff::Timestamp;
use std::time::Duration;
use support::controller::{
    Controller, SimEnv, get_watch, install_chart, scenario, wait_condition, watch_yaml,
};
use support::{Cluster, wait_for};

const RG: &str = "rg-sched";

struct Setup {
    cluster: &'static Cluster,
    sim: SimEnv,
    controller: Controller,
    ns: String,
}

/// A namespace, a simulator and a controller watching only that namespace, with `env`.
fn start(prefix: &str, env: &[(&str, &str)]) -> Setup {
    let cluster = Cluster::shared();
    let (sa_ns, sa) = install_chart(cluster);
    let kubeconfig = cluster.service_account_kubeconfig(sa_ns, sa, None);
    let sim = SimEnv::start(&scenario(
        RG,
        r#"          - {name: shared, generate: {count: 3}}
          - {name: shorter, generate: {count: 3}}
          - {name: transient, generate: {count: 2}}
          - {name: beat, generate: {count: 2}}
"#,
    ));
    let ns = cluster.create_namespace(prefix);
    let mut all = vec![("SSW_NAMESPACE", ns.as_str())];
    all.extend_from_slice(env);
    let controller = Controller::start(cluster, &kubeconfig, &sim, &all, &[]);
    Setup {
        cluster,
        sim,
        controller,
        ns,
    }
}

impl Setup {
    fn apply(&self, name: &str, scale_set: &str, interval: &str) {
        let yaml = watch_yaml(&self.ns, name, &[], RG, scale_set, "")
            .replace("interval: 10s", &format!("interval: {interval}"));
        self.cluster.kubectl_apply_stdin(&yaml);
    }

    #[track_caller]
    fn ready(&self, name: &str, timeout: Duration) -> serde_json::Value {
        wait_condition(
            self.cluster,
            &self.ns,
            name,
            "Ready",
            "True",
            Some("PollSucceeded"),
            timeout,
        )
    }

    /// When the simulator answered each list of `scale_set`, and with which status.
    fn lists(&self, scale_set: &str) -> Vec<(Timestamp, u16)> {
        let path = format!("/virtualMachineScaleSets/{scale_set}/virtualMachines");
        self.sim
            .stats()
            .recent
            .iter()
            .filter(|r| r.kind == "listVmssVms" && r.path.contains(&path))
            .map(|r| (r.at.parse().expect("RFC 3339"), r.status))
            .collect()
    }

    fn list_times(&self, scale_set: &str) -> Vec<Timestamp> {
        self.lists(scale_set).into_iter().map(|(t, _)| t).collect()
    }

    /// One sample of the controller's metrics, by its exact series text.
    fn metric(&self, series: &str) -> Option<f64> {
        let text = self.controller.get("/metrics")?;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64()
}

/// Seconds between consecutive fetches.
fn gaps(times: &[Timestamp]) -> Vec<f64> {
    times.windows(2).map(|w| seconds(w[0], w[1])).collect()
}

/// Every gap is the interval: one fetch per interval, never two, never none. The slack is
/// for the processes' own scheduling on a loaded machine; fetches that follow watches'
/// requeues instead (a status write, a jittered timer, an added watch) miss it by seconds.
#[track_caller]
fn assert_one_fetch_per_interval(gaps: &[f64], interval: f64) {
    assert!(
        gaps.iter().all(|g| (g - interval).abs() < 0.6),
        "gaps between fetches (s), expected {interval} each: {gaps:?}"
    );
}

#[test]
fn watches_of_one_scale_set_make_exactly_one_fetch_per_interval() {
    let s = start("one-per-interval", &[]);
    for name in ["a", "b", "c", "d"] {
        s.apply(name, "shared", "10s");
    }
    for name in ["a", "b", "c", "d"] {
        let obj = s.ready(name, Duration::from_secs(30));
        assert_eq!(obj["status"]["summary"], "3/3");
    }
    // Half-way through the set's schedule, a watch joins and one leaves: neither fetches.
    std::thread::sleep(Duration::from_secs(23));
    s.apply("e", "shared", "10s");
    s.cluster
        .kubectl_ok(&["delete", "ssw", "a", "-n", &s.ns, "--wait=true"]);
    // The newcomer is served the set's latest result at once.
    s.ready("e", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(40));
    let times = s.list_times("shared");
    assert!(times.len() >= 7, "{times:?}");
    assert_one_fetch_per_interval(&gaps(&times), 10.0);
}

#[test]
fn a_watch_that_shortens_its_interval_shortens_the_scale_sets() {
    let s = start("shorter", &[]);
    s.apply("slow", "shorter", "60s");
    s.apply("fast", "shorter", "60s");
    s.ready("slow", Duration::from_secs(45));
    s.ready("fast", Duration::from_secs(45));
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(s.list_times("shorter").len(), 1, "one fetch per 60s");
    s.cluster.kubectl_ok(&[
        "patch",
        "ssw",
        "fast",
        "-n",
        &s.ns,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"interval":"10s"}}"#,
    ]);
    let patched = Timestamp::now();
    std::thread::sleep(Duration::from_secs(36));
    let times = s.list_times("shorter");
    // The fetch due 10s after the first one is overdue: it comes at once, and the set then
    // keeps to its grid every 10s.
    assert!(times.len() >= 4, "{times:?}");
    assert!(
        seconds(patched, times[1]) < 3.0,
        "the overdue fetch came {}s after the patch",
        seconds(patched, times[1])
    );
    assert_one_fetch_per_interval(&gaps(&times[2..]), 10.0);
}

#[test]
fn after_a_transient_server_error_the_next_real_fetch_is_the_short_retry() {
    let s = start("transient", &[]);
    let r = s.sim.scale_set(RG, "transient");
    // The client tries each page 4 times, so the first fetch fails and the second is clean.
    s.sim
        .set_faults(&r, "[{serverError: {status: 503}, count: 4}]");
    s.apply("t", "transient", "60s");
    wait_condition(
        s.cluster,
        &s.ns,
        "t",
        "Ready",
        "False",
        Some("AzureUnavailable"),
        Duration::from_secs(45),
    );
    // A cached error served to the retries would hold this until 90% of the interval.
    s.ready("t", Duration::from_secs(25));
    let lists = s.lists("transient");
    let failed = lists
        .iter()
        .filter(|(_, status)| *status == 503)
        .map(|(at, _)| *at)
        .max()
        .expect("the 503s were answered");
    let retried = lists
        .iter()
        .find(|(at, status)| *status == 200 && *at > failed)
        .map(|(at, _)| *at)
        .expect("the retry was answered");
    let after = seconds(failed, retried);
    assert!(
        (4.5..15.0).contains(&after),
        "the retry came {after}s after the failed fetch: {lists:?}"
    );
    // One failed fetch, counted once, however often the watch was reconciled meanwhile.
    let errors = r#"scaleset_watch_reconcile_errors_total{reason="AzureUnavailable"}"#;
    assert_eq!(s.metric(errors), Some(1.0), "{}", s.controller.logs());
}

#[test]
fn the_status_heartbeat_is_configurable() {
    let s = start("heartbeat", &[("SSW_STATUS_HEARTBEAT", "15s")]);
    s.apply("hb", "beat", "10s");
    s.ready("hb", Duration::from_secs(30));
    let first = s.list_times("beat").len();
    let mut versions =
        vec![get_watch(s.cluster, &s.ns, "hb")["metadata"]["resourceVersion"].clone()];
    let mut poll_times = Vec::new();
    // Sample the object for 50s: five polls, two or three of them due for a heartbeat.
    wait_for(Duration::from_secs(50), || {
        let obj = get_watch(s.cluster, &s.ns, "hb");
        let version = obj["metadata"]["resourceVersion"].clone();
        if versions.last() != Some(&version) {
            versions.push(version);
            poll_times.push(obj["status"]["lastPollTime"].clone());
        }
        false
    });
    let polls = s.list_times("beat").len() - first;
    let writes = versions.len() - 1;
    assert!(polls >= 4, "{polls} polls");
    assert!(
        (2..polls).contains(&writes),
        "{writes} status writes in {polls} unchanged polls: {poll_times:?}"
    );
}
