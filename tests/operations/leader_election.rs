//! Leader election through the chart's Lease: only the leader polls; a standby takes over
//! once the lease expires after a kill -9, or at once after SIGTERM; and a leader that cannot
//! renew stops before a standby may take over.

use crate::support::controller::{
    Controller, SimEnv, condition, get_watch, scenario, wait_condition, watch_yaml,
};
use crate::support::prometheus::{sample, sum};
use crate::support::{Cluster, assert_eventually, unique_name, wait_for, wait_for_value};
use crate::{controller_kubeconfig, http_get, metrics, ops_scenario, support};
use serde_json::Value;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The lease the chart's Role lets its ServiceAccount get and update: the chart's full name,
/// in the chart's namespace.
const LEASE_NAME: &str = "scaleset-watch";
const LEASE_NS: &str = "scaleset-watch";

/// The tests that elect a leader share one Lease (the chart's RBAC names it), so they take
/// turns; everything else runs in parallel.
fn lease_turn() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits until `status.summary` is `summary`.
#[track_caller]
fn wait_summary(cluster: &Cluster, ns: &str, name: &str, summary: &str, timeout: Duration) {
    let seen = wait_for(timeout, || {
        get_watch(cluster, ns, name)["status"]["summary"] == summary
    });
    assert!(
        seen,
        "{ns}/{name}: summary never became {summary}; object:\n{:#}",
        get_watch(cluster, ns, name)
    );
}

fn lease(cluster: &Cluster) -> Option<Value> {
    let text = cluster.kubectl_ok(&[
        "get",
        "lease",
        LEASE_NAME,
        "-n",
        LEASE_NS,
        "--ignore-not-found",
        "-o",
        "json",
    ]);
    if text.trim().is_empty() {
        return None;
    }
    Some(serde_json::from_str(&text).expect("lease JSON"))
}

fn holder(lease: &Value) -> Option<String> {
    lease["spec"]["holderIdentity"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
}

fn transitions(lease: &Value) -> i64 {
    lease["spec"]["leaseTransitions"].as_i64().unwrap_or(0)
}

#[track_caller]
fn lease_time(lease: &Value, field: &str) -> jiff::Timestamp {
    let text = lease["spec"][field]
        .as_str()
        .unwrap_or_else(|| panic!("lease has no spec.{field}: {lease:#}"));
    text.parse()
        .unwrap_or_else(|e| panic!("spec.{field} {text:?}: {e}"))
}

/// Deletes the Lease left by an earlier test (as admin: the chart's Role cannot delete it).
fn reset_lease(cluster: &Cluster) {
    cluster.kubectl_ok(&[
        "delete",
        "lease",
        LEASE_NAME,
        "-n",
        LEASE_NS,
        "--ignore-not-found",
    ]);
}

fn leader_env<'a>(
    watch_ns: &'a str,
    identity: &'a str,
    duration: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("SSW_NAMESPACE", watch_ns),
        ("SSW_LEADER_ELECT", "true"),
        ("SSW_LEASE_NAME", LEASE_NAME),
        ("POD_NAMESPACE", LEASE_NS),
        ("POD_NAME", identity),
        ("SSW_LEASE_DURATION_SECONDS", duration),
    ]
}

const STANDING_BY: &str = "another replica leads; standing by";
const BECAME_LEADER: &str = "became leader";

/// What a standby shows: it is alive and ready (it does its job, which is waiting, so a
/// Deployment's rollout is not held up by it), and it has reconciled nothing and sent nothing
/// to ARM.
#[track_caller]
fn assert_standby(c: &Controller, who: &str) {
    let health = http_get(c, "/healthz");
    assert_eq!(
        (health.code, health.body.as_str()),
        (200, "ok"),
        "{who} /healthz"
    );
    let ready = http_get(c, "/readyz");
    assert_eq!(ready.code, 200, "{who} /readyz: {}", ready.body);
    let (text, samples) = metrics(c);
    assert_eq!(
        sample(&samples, "scaleset_watch_reconciles_total", &[]),
        Some(0.0),
        "{who} reconciled:\n{text}"
    );
    assert_eq!(
        sum(&samples, "scaleset_watch_arm_requests_total"),
        0.0,
        "{who} sent ARM requests:\n{text}"
    );
    assert!(
        !samples.iter().any(|s| s.name == "scaleset_watch_instances"),
        "{who} has per-watch gauges:\n{text}"
    );
    let logs = c.logs();
    assert!(logs.contains(STANDING_BY), "{who}:\n{logs}");
    assert!(
        !logs.contains(BECAME_LEADER) && !logs.contains("controller running"),
        "{who} led:\n{logs}"
    );
}

/// ARM requests the simulator answered, tokens aside.
fn arm_requests_seen(sim: &SimEnv) -> f64 {
    let stats = sim.stats();
    (stats.total - stats.kind("token")) as f64
}

#[test]
fn only_the_leader_polls_and_a_standby_takes_over_after_a_kill() {
    let _turn = lease_turn();
    let cluster = Cluster::shared();
    let kubeconfig = controller_kubeconfig(cluster);
    reset_lease(cluster);
    let sim = SimEnv::start(&ops_scenario());
    let r = sim.scale_set("rg-ops", "leader");
    let ns = cluster.create_namespace("leader");
    cluster.kubectl_apply_stdin(&watch_yaml(&ns, "w", &[], "rg-ops", "leader", ""));

    // Two replicas started together; whichever wins the Lease leads.
    let ids = [unique_name("replica-a"), unique_name("replica-b")];
    let mut replicas: Vec<Controller> = ids
        .iter()
        .map(|id| Controller::start(cluster, &kubeconfig, &sim, &leader_env(&ns, id, "6"), &[]))
        .collect();
    let leader_id = wait_for_value(Duration::from_secs(20), || holder(&lease(cluster)?))
        .expect("someone holds the lease");
    let li = ids
        .iter()
        .position(|id| *id == leader_id)
        .unwrap_or_else(|| panic!("the lease is held by a stranger: {leader_id}"));
    let si = 1 - li;
    let (leader_name, standby_name) = (ids[li].clone(), ids[si].clone());
    assert_eventually(Duration::from_secs(20), "the standby stands by", || {
        replicas[si].logs().contains(STANDING_BY)
    });

    let obj = wait_condition(
        cluster,
        &ns,
        "w",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(30),
    );
    assert_eq!(obj["status"]["summary"], "3/3");
    // Let a couple of renewals happen: the lease stays with the leader, who keeps polling.
    let fetches = sim.fetches(&r);
    assert!(fetches >= 1, "the simulator saw no fetch");
    assert_eventually(Duration::from_secs(20), "a second poll", || {
        sim.fetches(&r) > fetches
    });
    let before = lease(cluster).expect("lease");
    assert_eq!(holder(&before).as_deref(), Some(leader_name.as_str()));
    assert_eq!(before["spec"]["leaseDurationSeconds"], 6);

    // Only the leader polls: every ARM request the simulator answered is in the leader's
    // metrics, and the standby has none.
    assert_standby(&replicas[si], "standby");
    let (_, leader_samples) = metrics(&replicas[li]);
    assert!(sample(&leader_samples, "scaleset_watch_reconciles_total", &[]).unwrap_or(0.0) >= 1.0);
    let matched = wait_for(Duration::from_secs(10), || {
        let (_, s) = metrics(&replicas[li]);
        sum(&s, "scaleset_watch_arm_requests_total") == arm_requests_seen(&sim)
    });
    assert!(
        matched,
        "the simulator answered {} ARM requests, the leader counted {}",
        arm_requests_seen(&sim),
        sum(
            &metrics(&replicas[li]).1,
            "scaleset_watch_arm_requests_total"
        )
    );
    assert!(replicas[li].logs().contains(BECAME_LEADER));

    // kill -9: nothing is released; the standby must wait for the lease to expire.
    replicas[li].kill();
    let killed = Instant::now();
    let dead = lease(cluster).expect("lease");
    assert_eq!(holder(&dead).as_deref(), Some(leader_name.as_str()));
    let last_renew = lease_time(&dead, "renewTime");
    let new_holder = wait_for_value(Duration::from_secs(30), || {
        let l = lease(cluster)?;
        (holder(&l).as_deref() == Some(standby_name.as_str())).then_some(l)
    })
    .unwrap_or_else(|| {
        panic!(
            "the standby never took over; lease: {:#}\nstandby logs:\n{}",
            lease(cluster).unwrap_or_default(),
            replicas[si].logs()
        )
    });
    let took = killed.elapsed();
    eprintln!("takeover {took:?} after kill -9");
    // Lease duration 6 s: the standby waits that long after it last saw the lease change, and
    // tries every 1.3 s (a third of the default 4 s renew deadline); plus apiserver round trips.
    assert!(took <= Duration::from_secs(6 + 5), "takeover took {took:?}");
    assert_eq!(transitions(&new_holder), transitions(&before) + 1);
    let acquired = lease_time(&new_holder, "acquireTime");
    assert!(
        acquired.duration_since(last_renew) > jiff::SignedDuration::from_secs(6),
        "taken at {acquired}, before the lease renewed at {last_renew} expired"
    );
    assert_eventually(Duration::from_secs(10), "the new leader says so", || {
        replicas[si].logs().contains(BECAME_LEADER)
    });

    // Statuses keep coming: an instance changing in Azure shows up in the status.
    sim.put_instance(&r, "{id: 1, powerState: deallocated}");
    wait_summary(cluster, &ns, "w", "2/3", Duration::from_secs(10 + 10));
    let obj = get_watch(cluster, &ns, "w");
    assert_eq!(obj["status"]["unhealthyInstances"][0]["instanceId"], "1");
    let (_, s) = metrics(&replicas[si]);
    assert!(sample(&s, "scaleset_watch_reconciles_total", &[]).unwrap_or(0.0) >= 1.0);
}

#[test]
fn sigterm_releases_the_lease_exits_zero_and_the_standby_takes_over_at_once() {
    let _turn = lease_turn();
    let cluster = Cluster::shared();
    let kubeconfig = controller_kubeconfig(cluster);
    reset_lease(cluster);
    let sim = SimEnv::start(&ops_scenario());
    let ns = cluster.create_namespace("handover");
    cluster.kubectl_apply_stdin(&watch_yaml(&ns, "h", &[], "rg-ops", "handover", ""));

    // A lease of 15 s: the standby tries every 2 s, and a leader that went away without
    // releasing could only be replaced 15 s after the standby last saw it renew.
    let (a_id, b_id) = (unique_name("replica-a"), unique_name("replica-b"));
    let mut a = Controller::start(
        cluster,
        &kubeconfig,
        &sim,
        &leader_env(&ns, &a_id, "15"),
        &[],
    );
    assert_eventually(Duration::from_secs(20), "a leads", || {
        lease(cluster).and_then(|l| holder(&l)).as_deref() == Some(a_id.as_str())
    });
    let mut b = Controller::start(
        cluster,
        &kubeconfig,
        &sim,
        &leader_env(&ns, &b_id, "15"),
        &[],
    );
    assert_eventually(Duration::from_secs(20), "b stands by", || {
        b.logs().contains(STANDING_BY)
    });
    wait_condition(
        cluster,
        &ns,
        "h",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(30),
    );
    assert_standby(&b, "b");

    let before = lease(cluster).expect("lease");
    assert_eq!(holder(&before).as_deref(), Some(a_id.as_str()));
    let renewed_before = lease_time(&before, "renewTime");
    let sent = Instant::now();
    let status = a.terminate(Duration::from_secs(25));
    let exited = sent.elapsed();
    let status = status.unwrap_or_else(|| panic!("a did not exit within 25 s:\n{}", a.logs()));
    assert_eq!(status.code(), Some(0), "a: {status}\n{}", a.logs());
    eprintln!("a exited {exited:?} after SIGTERM");
    assert!(a.logs().contains("released the lease"), "a:\n{}", a.logs());

    let taken = wait_for_value(Duration::from_secs(20), || {
        let l = lease(cluster)?;
        (holder(&l).as_deref() == Some(b_id.as_str())).then_some(l)
    })
    .unwrap_or_else(|| panic!("b never took over:\n{}", b.logs()));
    let took = sent.elapsed();
    eprintln!("b took over {took:?} after SIGTERM");
    // a renewed at most 2 s before SIGTERM, so an unreleased lease would have lasted at least
    // 13 s more; b tries every 2 s.
    assert!(took < Duration::from_secs(9), "takeover took {took:?}");
    let acquired = lease_time(&taken, "acquireTime");
    assert!(
        acquired.duration_since(renewed_before) < jiff::SignedDuration::from_secs(15),
        "b took the lease at {acquired}, only after a's ({renewed_before} + 15 s) expired"
    );
    assert_eq!(transitions(&taken), transitions(&before) + 1);
    assert_eventually(Duration::from_secs(10), "b leads", || {
        b.logs().contains(BECAME_LEADER)
    });
    assert_eventually(Duration::from_secs(20), "b reconciles", || {
        sample(&metrics(&b).1, "scaleset_watch_reconciles_total", &[]).unwrap_or(0.0) >= 1.0
    });

    // With nobody waiting, a released lease visibly has no holder.
    let status = b
        .terminate(Duration::from_secs(25))
        .unwrap_or_else(|| panic!("b did not exit within 25 s"));
    assert_eq!(status.code(), Some(0), "b: {status}");
    let released = lease(cluster).expect("lease");
    assert_eq!(holder(&released), None, "{released:#}");
    assert_eq!(transitions(&released), transitions(&taken));
}

/// `kubectl get <args> --watch -o json --output-watch-events` in the background, as admin:
/// every version of the objects, in the order the API server sent them. Stopped on drop.
struct KubectlWatch {
    child: Option<std::process::Child>,
    out: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl KubectlWatch {
    fn start(cluster: &Cluster, args: &[&str]) -> KubectlWatch {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("watch.json");
        let file = std::fs::File::create(&out).expect("watch output");
        let mut cmd = cluster.command(&support::tools().kubectl);
        cmd.arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args(args)
            .args(["--watch", "-o", "json", "--output-watch-events"])
            .stdin(std::process::Stdio::null())
            .stdout(file)
            .stderr(std::process::Stdio::null());
        let child = support::spawn(&mut cmd).expect("kubectl --watch starts");
        KubectlWatch {
            child: Some(child),
            out,
            _dir: dir,
        }
    }

    /// The objects seen so far (a half-written last one is left out).
    fn objects(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        serde_json::Deserializer::from_str(&text)
            .into_iter::<Value>()
            .map_while(Result::ok)
            .map(|event| event["object"].clone())
            .collect()
    }
}

impl Drop for KubectlWatch {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `metadata.resourceVersion` as a number. Kubernetes calls resource versions opaque, but
/// with one etcd (as here) they are its revisions, which order every write the API server
/// made, to any object: that is what lets this test say which write came first.
#[track_caller]
fn revision(obj: &Value) -> u64 {
    let rv = obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default();
    rv.parse()
        .unwrap_or_else(|e| panic!("resourceVersion {rv:?}: {e}: {obj:#}"))
}

/// When the simulator last saw a request of any kind (tokens included).
fn last_arrival(sim: &SimEnv) -> Option<jiff::Timestamp> {
    sim.stats()
        .kinds
        .values()
        .filter_map(|c| c.last_at.as_deref()?.parse().ok())
        .max()
}

#[test]
fn a_leader_that_cannot_renew_stops_before_a_standby_takes_over() {
    let _turn = lease_turn();
    let cluster = Cluster::shared();
    let b_kubeconfig = controller_kubeconfig(cluster);
    reset_lease(cluster);
    // a runs as a ServiceAccount of its own with the chart's two roles, so that its right to
    // the Lease can be taken away while everything else stays: its connection to the API
    // server, its right to write statuses and events, its Azure credentials.
    let a_sa = unique_name("leader-a");
    cluster.create_service_account(LEASE_NS, &a_sa);
    let subject = format!("--serviceaccount={LEASE_NS}:{a_sa}");
    cluster.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        &a_sa,
        "--clusterrole=scaleset-watch",
        &subject,
    ]);
    cluster.kubectl_ok(&[
        "create",
        "rolebinding",
        &a_sa,
        "-n",
        LEASE_NS,
        "--role=scaleset-watch-leader-election",
        &subject,
    ]);
    let a_kubeconfig = cluster.service_account_kubeconfig(LEASE_NS, &a_sa, None);

    // Each replica has an Azure of its own, so that the simulators' logs tell their ARM
    // requests apart, and the statuses they write differ: a's scale sets have 3 instances,
    // b's 5. a's s1 hangs every request for 3 s (then 504), so a is usually in the middle of
    // an ARM call; instance 1 of a's s2 and s3 changes its extension message every second, so
    // every poll of a's writes a status.
    let sets = |count: u32, s1_faults: &str| {
        format!(
            "          - {{name: s1, generate: {{count: {count}}}{s1_faults}}}\n          - {{name: s2, generate: {{count: {count}}}}}\n          - {{name: s3, generate: {{count: {count}}}}}\n"
        )
    };
    let sim_a = SimEnv::start(&scenario(
        "rg-fence",
        &sets(3, ", faults: [{timeout: {seconds: 3}}]"),
    ));
    let sim_b = SimEnv::start(&scenario("rg-fence", &sets(5, "")));
    let ns = cluster.create_namespace("fence");
    let watches = ["s1", "s2", "s3"];
    for w in watches {
        cluster.kubectl_apply_stdin(&watch_yaml(&ns, w, &[], "rg-fence", w, ""));
    }
    let statuses = KubectlWatch::start(cluster, &["get", "ssw", "-n", &ns]);
    let leases = KubectlWatch::start(
        cluster,
        &[
            "get",
            "leases",
            "-n",
            LEASE_NS,
            &format!("--field-selector=metadata.name={LEASE_NAME}"),
        ],
    );
    assert_eventually(Duration::from_secs(20), "the status watch lists", || {
        statuses.objects().len() >= watches.len()
    });

    // Lease 15 s; renew deadline and retry period by default (10 s, 2 s).
    let (a_id, b_id) = (unique_name("replica-a"), unique_name("replica-b"));
    let mut a = Controller::start(
        cluster,
        &a_kubeconfig,
        &sim_a,
        &leader_env(&ns, &a_id, "15"),
        &[],
    );
    assert_eventually(Duration::from_secs(20), "a leads", || {
        lease(cluster).and_then(|l| holder(&l)).as_deref() == Some(a_id.as_str())
    });
    for w in ["s2", "s3"] {
        wait_summary(cluster, &ns, w, "3/3", Duration::from_secs(30));
    }
    wait_condition(
        cluster,
        &ns,
        "s1",
        "Ready",
        "False",
        Some("AzureUnavailable"),
        Duration::from_secs(40),
    );
    let b = Controller::start(
        cluster,
        &b_kubeconfig,
        &sim_b,
        &leader_env(&ns, &b_id, "15"),
        &[],
    );
    assert_eventually(Duration::from_secs(20), "b stands by", || {
        b.logs().contains(STANDING_BY)
    });

    let ticking = std::sync::atomic::AtomicBool::new(true);
    let (revoked_at, a_status) = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut tick = 0u64;
            while ticking.load(std::sync::atomic::Ordering::Relaxed) {
                tick += 1;
                for w in ["s2", "s3"] {
                    sim_a.put_instance(
                        &sim_a.scale_set("rg-fence", w),
                        &format!(
                            "{{id: 1, extensions: [{{name: tick, state: failed, message: 'tick {tick}'}}]}}"
                        ),
                    );
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        wait_summary(cluster, &ns, "s2", "2/3", Duration::from_secs(20));

        // a loses its right to the Lease, and nothing else.
        let revoked_at = jiff::Timestamp::now();
        cluster.kubectl_ok(&["delete", "rolebinding", &a_sa, "-n", LEASE_NS]);
        let a_status = a.wait_for_exit(Duration::from_secs(40));
        let taken = wait_for(Duration::from_secs(60), || {
            lease(cluster).and_then(|l| holder(&l)).as_deref() == Some(b_id.as_str())
        });
        assert!(
            taken,
            "b never took over; lease: {:#}\nb:\n{}",
            lease(cluster).unwrap_or_default(),
            b.logs()
        );
        for w in watches {
            wait_summary(cluster, &ns, w, "5/5", Duration::from_secs(40));
        }
        ticking.store(false, std::sync::atomic::Ordering::Relaxed);
        (revoked_at, a_status)
    });
    let a_status = a_status.unwrap_or_else(|| panic!("a kept running:\n{}", a.logs()));
    let a_logs = a.logs();
    assert!(!a_status.success(), "a: {a_status}\n{a_logs}");
    assert!(
        a_logs.contains("cannot renew the lease") && a_logs.contains("leadership lost"),
        "a:\n{a_logs}"
    );

    // The Lease as the API server wrote it: a's last renewal, and b's acquisition.
    let b_wrote_all = |objs: &[Value]| {
        watches.iter().all(|w| {
            objs.iter()
                .any(|o| o["metadata"]["name"] == *w && o["status"]["instances"]["total"] == 5)
        })
    };
    assert_eventually(
        Duration::from_secs(10),
        "the watch saw b's statuses",
        || b_wrote_all(&statuses.objects()),
    );
    let lease_versions = leases.objects();
    let holder_is = |l: &Value, id: &str| holder(l).as_deref() == Some(id);
    let taken = lease_versions
        .iter()
        .find(|l| holder_is(l, &b_id))
        .unwrap_or_else(|| panic!("no version held by b: {lease_versions:#?}"));
    let (taken_rev, acquired) = (revision(taken), lease_time(taken, "acquireTime"));
    let a_last = lease_versions
        .iter()
        .rfind(|l| holder_is(l, &a_id))
        .unwrap_or_else(|| panic!("no version held by a: {lease_versions:#?}"));
    let a_renewed = lease_time(a_last, "renewTime");
    let a_last_request = last_arrival(&sim_a).expect("a sent ARM requests");
    eprintln!(
        "revoked {revoked_at}; a last renewed {a_renewed}, last sent to ARM {a_last_request}; b acquired {acquired}"
    );

    // ARM: a's last request came before b took over, and within a's renew deadline.
    assert!(
        a_last_request < acquired,
        "a sent an ARM request at {a_last_request}, after b acquired the lease at {acquired}"
    );
    assert!(
        a_last_request <= a_renewed + jiff::SignedDuration::from_millis(10_000 + 1_000),
        "a sent an ARM request at {a_last_request}, past its renew deadline (renewed at {a_renewed} + 10 s)"
    );
    // b waited a whole lease duration after the last renewal it could have seen.
    assert!(
        acquired.duration_since(a_renewed) >= jiff::SignedDuration::from_secs(15),
        "b acquired at {acquired}, less than 15 s after a renewed at {a_renewed}"
    );

    // Kubernetes: every status a wrote (its scale sets have 3 instances, or fail) came before
    // b's acquisition in the API server's own order; b's only after.
    let written_by = |o: &Value| -> Option<char> {
        let ready = condition(o, "Ready").map(|c| c["reason"].clone());
        match o["status"]["instances"]["total"].as_u64() {
            Some(3) => Some('a'),
            Some(5) => Some('b'),
            _ if ready.is_some_and(|r| r == "AzureUnavailable") => Some('a'),
            _ => None,
        }
    };
    let versions = statuses.objects();
    let by_a: Vec<u64> = versions
        .iter()
        .filter(|o| written_by(o) == Some('a'))
        .map(revision)
        .collect();
    let by_b: Vec<u64> = versions
        .iter()
        .filter(|o| written_by(o) == Some('b'))
        .map(revision)
        .collect();
    assert!(!by_a.is_empty() && !by_b.is_empty(), "{versions:#?}");
    let last_by_a = by_a.iter().max().copied().unwrap_or_default();
    assert!(
        last_by_a < taken_rev,
        "a wrote a status at revision {last_by_a}, after b acquired the lease at {taken_rev}"
    );
    assert!(
        by_b.iter().all(|r| *r > taken_rev),
        "b wrote before it acquired the lease ({taken_rev}): {by_b:?}"
    );
    // And every Event a recorded.
    let events = cluster.kubectl_json(&["get", "events", "-n", &ns]);
    let a_events: Vec<u64> = events["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|e| e["reportingInstance"] == a_id.as_str())
        .map(revision)
        .collect();
    assert!(!a_events.is_empty(), "a recorded no event: {events:#}");
    assert!(
        a_events.iter().all(|r| *r < taken_rev),
        "a recorded an event after b acquired the lease at {taken_rev}: {a_events:?}"
    );
    cluster.kubectl_ok(&["delete", "clusterrolebinding", &a_sa]);
}
