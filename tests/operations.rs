//! End to end, the operational promises: leader election (kill -9 and SIGTERM hand-overs),
//! workload identity against the cluster's own service-account issuer, metrics and probes,
//! JSON logs, and namespace / label-selector scoping.
//!
//! Everything is real: the kube-apiserver of `hack/control-plane.sh`, kubectl, the controller
//! binary run as local processes with a TokenRequest kubeconfig of the chart's ServiceAccount,
//! and the ARM simulator standing in for Azure (one per test, so its request counts are the
//! test's own). Every controller here watches only its test's namespace (`SSW_NAMESPACE`), so
//! tests running in parallel never reconcile each other's ScaleSetWatches.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use support::controller::{
    Controller, SECRET, SUB, SimEnv, TENANT, condition, get_watch, install_chart, scenario,
    wait_condition, watch_yaml,
};
use support::prometheus::{Sample, parse_samples, sample, sum};
use support::{Cluster, assert_eventually, run_command, unique_name, wait_for, wait_for_value};

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

/// The lease the chart's Role lets its ServiceAccount get and update: the chart's full name,
/// in the chart's namespace.
const LEASE_NAME: &str = "scaleset-watch";
const LEASE_NS: &str = "scaleset-watch";

/// The Azure AD token exchange audience that workload identity tokens carry.
const WI_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The application that only federated credentials sign in (it has no client secret).
const WI_CLIENT: &str = "5b5a2b8e-3f1c-4d7e-9a21-0c8f6b7d4e31";

/// The tests that elect a leader share one Lease (the chart's RBAC names it), so they take
/// turns; everything else runs in parallel.
fn lease_turn() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The chart's ServiceAccount's kubeconfig, as every controller here runs with.
fn controller_kubeconfig(cluster: &Cluster) -> std::path::PathBuf {
    let (ns, sa) = install_chart(cluster);
    cluster.service_account_kubeconfig(ns, sa, None)
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

// ---------------------------------------------------------------------------------------------
// HTTP endpoints and the Prometheus text format

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

// ---------------------------------------------------------------------------------------------
// Leases

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

// ---------------------------------------------------------------------------------------------
// Workload identity

#[test]
fn workload_identity_signs_in_with_the_service_account_token_and_only_that_one() {
    let cluster = Cluster::shared();
    let (sa_ns, sa) = install_chart(cluster);
    let kubeconfig = controller_kubeconfig(cluster);
    // The same name in another namespace: another subject.
    let other_ns = cluster.create_namespace("wi-other");
    cluster.create_service_account(&other_ns, sa);
    let hour = Duration::from_secs(3600);
    let tokens = [
        (
            "right",
            cluster.service_account_token(sa_ns, sa, Some(WI_AUDIENCE), hour),
        ),
        (
            "other-sa",
            cluster.service_account_token(&other_ns, sa, Some(WI_AUDIENCE), hour),
        ),
        // The right subject, but the API server's own audience.
        (
            "wrong-aud",
            cluster.service_account_token(sa_ns, sa, None, hour),
        ),
    ];
    let dir = tempfile::tempdir().expect("temp dir");

    let api = cluster.api_url();
    let scenario = format!(
        r#"
servicePrincipals:
  - tenantId: {TENANT}
    clientId: {WI_CLIENT}
    subscriptions: [{SUB}]
federatedIdentities:
  - issuer: {api}
    subject: system:serviceaccount:{sa_ns}:{sa}
    audience: {WI_AUDIENCE}
    tenantId: {TENANT}
    clientId: {WI_CLIENT}
    jwksUrl: {api}/openid/v1/jwks
    jwksCaFile: {ca}
subscriptions:
  - id: {SUB}
    tenantId: {TENANT}
    resourceGroups:
      - name: rg-ops
        scaleSets:
          - name: wi
            pageSize: 2
            defaults: {{appHealth: healthy}}
            generate: {{count: 5}}
            instances:
              - {{id: 4, powerState: stopped}}
"#,
        ca = cluster.ca_file().display(),
    );
    let sim = SimEnv::start(&scenario);

    let mut controllers = Vec::new();
    let mut namespaces = Vec::new();
    for (what, token) in &tokens {
        let file = dir.path().join(format!("{what}.jwt"));
        support::write_private(&file, token.as_bytes());
        let ns = cluster.create_namespace(&format!("wi-{what}"));
        cluster.kubectl_apply_stdin(&watch_yaml(&ns, "wi", &[], "rg-ops", "wi", ""));
        let file = file.to_str().expect("utf-8 path").to_owned();
        let env = [
            ("SSW_NAMESPACE", ns.as_str()),
            ("AZURE_FEDERATED_TOKEN_FILE", file.as_str()),
            ("AZURE_CLIENT_ID", WI_CLIENT),
            ("AZURE_TENANT_ID", TENANT),
            // No client secret: empty counts as unset.
            ("AZURE_CLIENT_SECRET", ""),
        ];
        controllers.push(Controller::start(cluster, &kubeconfig, &sim, &env, &[]));
        namespaces.push(ns);
    }

    let obj = wait_condition(
        cluster,
        &namespaces[0],
        "wi",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(40),
    );
    let s = &obj["status"];
    assert_eq!(s["summary"], "4/5", "{s:#}");
    assert_eq!(s["instances"]["total"], 5);
    assert_eq!(s["instances"]["stopped"], 1);
    assert!(sim.stats().tokens.issued >= 1);

    for (i, (what, _)) in tokens.iter().enumerate().skip(1) {
        let obj = wait_condition(
            cluster,
            &namespaces[i],
            "wi",
            "Ready",
            "False",
            Some("AuthenticationFailed"),
            Duration::from_secs(40),
        );
        let message = condition(&obj, "Ready").expect("Ready")["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.contains("No matching federated identity record"),
            "{what}: {message}"
        );
        assert!(
            obj["status"]["instances"].is_null(),
            "{what}: counts without a sign-in: {:#}",
            obj["status"]
        );
    }
    let stats = sim.stats();
    assert!(stats.tokens.rejected >= 2, "{:?}", stats.tokens);
    // Every token the simulator issued went to the right identity: only it listed VMs.
    for (i, c) in controllers.iter().enumerate() {
        let (_, s) = metrics(c);
        let ok = sample(&s, "scaleset_watch_arm_requests_total", &[("code", "200")]).unwrap_or(0.0);
        assert_eq!(
            ok > 0.0,
            i == 0,
            "{}: {ok} ARM requests answered 200",
            tokens[i].0
        );
        let logs = c.logs();
        for (what, token) in &tokens {
            assert!(
                !logs.contains(token.as_str()),
                "the {what} token is in the logs"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics and probes

#[test]
fn metrics_and_probes() {
    let cluster = Cluster::shared();
    let kubeconfig = controller_kubeconfig(cluster);
    let sim = SimEnv::start(&ops_scenario());
    let ns = cluster.create_namespace("metrics");
    cluster.kubectl_apply_stdin(&watch_yaml(&ns, "m", &[], "rg-ops", "metrics", ""));
    let c = Controller::start(cluster, &kubeconfig, &sim, &[("SSW_NAMESPACE", &ns)], &[]);

    let health = http_get(&c, "/healthz");
    assert_eq!((health.code, health.body.as_str()), (200, "ok"));
    assert_eventually(Duration::from_secs(20), "/readyz 200", || {
        http_get(&c, "/readyz").code == 200
    });
    assert_eq!(http_get(&c, "/nothing-here").code, 404);

    wait_condition(
        cluster,
        &ns,
        "m",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(30),
    );
    let w = [("namespace", ns.as_str()), ("name", "m")];
    let with = |extra: (&'static str, &'static str)| {
        let mut l = w.to_vec();
        l.push(extra);
        l
    };
    // The status is written inside the reconcile and the reconcile is counted when it returns,
    // so the condition can be seen a moment before the counter moves.
    assert_eventually(
        Duration::from_secs(10),
        "a finished reconcile is counted",
        || sample(&metrics(&c).1, "scaleset_watch_reconciles_total", &[]).is_some_and(|n| n >= 1.0),
    );
    let r = http_get(&c, "/metrics");
    assert_eq!(r.code, 200);
    assert!(
        r.content_type.starts_with("application/openmetrics-text"),
        "{}",
        r.content_type
    );
    let text = r.body;
    let s = parse_samples(&text);

    for (family, kind) in [
        ("scaleset_watch_instances", "gauge"),
        ("scaleset_watch_healthy_percent", "gauge"),
        ("scaleset_watch_condition", "gauge"),
        ("scaleset_watch_arm_requests", "counter"),
        ("scaleset_watch_arm_request_duration_seconds", "histogram"),
        ("scaleset_watch_arm_throttled", "counter"),
        ("scaleset_watch_arm_remaining_resource_reads", "gauge"),
        ("scaleset_watch_reconciles", "counter"),
        // (scaleset_watch_reconcile_errors has no series yet: the encoder omits empty
        // labelled families.)
        ("scaleset_watch_reconcile_duration_seconds", "histogram"),
    ] {
        let type_line = format!("# TYPE {family} {kind}");
        assert!(
            text.lines().any(|l| l == type_line),
            "no {type_line:?} in:\n{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("# HELP {family} "))),
            "no HELP for {family}:\n{text}"
        );
    }
    assert_eq!(
        text.lines().last(),
        Some("# EOF"),
        "OpenMetrics ends with # EOF"
    );

    let gauge = |name: &str, labels: &[(&str, &str)]| {
        sample(&s, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"))
    };
    assert_eq!(
        gauge("scaleset_watch_instances", &with(("state", "total"))),
        4.0
    );
    assert_eq!(
        gauge("scaleset_watch_instances", &with(("state", "healthy"))),
        3.0
    );
    assert_eq!(
        gauge("scaleset_watch_instances", &with(("state", "unhealthy"))),
        1.0
    );
    assert_eq!(
        gauge(
            "scaleset_watch_instances",
            &with(("state", "application_unhealthy"))
        ),
        1.0
    );
    assert_eq!(gauge("scaleset_watch_healthy_percent", &w), 75.0);
    // One series per condition and status, the current status at 1 (Unknown is not 0).
    let condition = |c: &'static str, status: &'static str| {
        let mut l = with(("condition", c));
        l.push(("status", status));
        l
    };
    for (c, current) in [
        ("Ready", "true"),
        ("Healthy", "false"),
        ("Degraded", "true"),
    ] {
        for status in ["true", "false", "unknown"] {
            assert_eq!(
                gauge("scaleset_watch_condition", &condition(c, status)),
                f64::from(u8::from(status == current)),
                "{c} {status}"
            );
        }
    }
    assert_eq!(gauge("scaleset_watch_suspended", &w), 0.0);

    let ok = gauge("scaleset_watch_arm_requests_total", &[("code", "200")]);
    // Four instances on pages of three: two pages per fetch.
    assert!(ok >= 2.0, "{ok} ARM requests answered 200");
    let count = gauge("scaleset_watch_arm_request_duration_seconds_count", &[]);
    assert_eq!(count, sum(&s, "scaleset_watch_arm_requests_total"));
    let inf = gauge(
        "scaleset_watch_arm_request_duration_seconds_bucket",
        &[("le", "+Inf")],
    );
    assert_eq!(inf, count, "the +Inf bucket holds every request");
    let buckets = s
        .iter()
        .filter(|x| x.name == "scaleset_watch_arm_request_duration_seconds_bucket")
        .count();
    assert!(buckets > 2, "{buckets} buckets");
    assert!(gauge("scaleset_watch_reconciles_total", &[]) >= 1.0);
    assert!(gauge("scaleset_watch_reconcile_duration_seconds_count", &[]) >= 1.0);

    // The gauges follow the fleet.
    let r = sim.scale_set("rg-ops", "metrics");
    sim.put_instance(&r, "{id: 2, appHealth: healthy}");
    // Counts are recorded when polled and conditions when judged: wait for a scrape after both.
    let healed = |s: &[Sample]| {
        sample(s, "scaleset_watch_instances", &with(("state", "healthy"))) == Some(4.0)
            && sample(s, "scaleset_watch_condition", &condition("Healthy", "true")) == Some(1.0)
            && sample(
                s,
                "scaleset_watch_condition",
                &condition("Degraded", "false"),
            ) == Some(1.0)
    };
    assert_eventually(
        Duration::from_secs(10 + 10),
        "healthy gauge at 4, Healthy true, Degraded false",
        || healed(&metrics(&c).1),
    );
    let (text, s) = metrics(&c);
    assert_eq!(
        sample(&s, "scaleset_watch_healthy_percent", &w),
        Some(100.0),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Logs

#[test]
fn json_logs_carry_the_watch_and_no_secret() {
    let cluster = Cluster::shared();
    let kubeconfig = controller_kubeconfig(cluster);
    let sim = SimEnv::start(&ops_scenario());
    let ns = cluster.create_namespace("logs");
    // A healthy poll, a failing one (no such scale set), and one with a Secret's credentials.
    cluster.kubectl_apply_stdin(&watch_yaml(&ns, "good", &[], "rg-ops", "logs", ""));
    cluster.kubectl_apply_stdin(&watch_yaml(
        &ns,
        "missing",
        &[],
        "rg-ops",
        "no-such-scale-set",
        "",
    ));
    cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "azure-sp",
        "-n",
        &ns,
        &format!("--from-literal=tenantId={TENANT}"),
        &format!("--from-literal=clientId={}", support::controller::CLIENT),
        &format!("--from-literal=clientSecret={SECRET}"),
    ]);
    let sp = format!(
        "{}  credentials:\n    secretRef:\n      name: azure-sp\n",
        watch_yaml(&ns, "sp", &[], "rg-ops", "logs", "")
    );
    cluster.kubectl_apply_stdin(&sp);
    let mut c = Controller::start(
        cluster,
        &kubeconfig,
        &sim,
        &[
            ("SSW_NAMESPACE", &ns),
            ("SSW_LOG_FORMAT", "json"),
            // Every crate at debug: the HTTP and Azure clients too.
            ("SSW_LOG_LEVEL", "debug"),
        ],
        &[],
    );
    for name in ["good", "sp"] {
        wait_condition(
            cluster,
            &ns,
            name,
            "Ready",
            "True",
            Some("PollSucceeded"),
            Duration::from_secs(30),
        );
    }
    wait_condition(
        cluster,
        &ns,
        "missing",
        "Ready",
        "False",
        Some("ScaleSetNotFound"),
        Duration::from_secs(30),
    );
    // Shutting down flushes nothing (stderr is unbuffered) but ends the log for sure.
    let status = c.terminate(Duration::from_secs(25)).expect("exits");
    assert!(status.success(), "{status}");
    let logs = c.logs();

    let mut lines = Vec::new();
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v.is_object(), "{line}");
        for field in ["timestamp", "level", "target"] {
            assert!(v[field].is_string(), "no {field} in {line}");
        }
        lines.push((line, v));
    }
    assert!(lines.len() > 10, "only {} lines:\n{logs}", lines.len());

    // Every line of a reconcile (inside kube-runtime's "reconciling object" span) carries the
    // watch it is about in its span fields, and so does what a reconcile reports.
    let watches = ["good", "missing", "sp"];
    let mut seen = BTreeMap::<String, Vec<String>>::new();
    for (line, v) in &lines {
        let message = v["message"].as_str().unwrap_or_default();
        let object_ref = v["spans"].as_array().and_then(|spans| {
            spans
                .iter()
                .find(|s| s["name"] == "reconciling object")
                .and_then(|s| s["object.ref"].as_str())
        });
        let reports = matches!(message, "condition changed" | "poll failed");
        if object_ref.is_none() && !reports {
            continue;
        }
        // The innermost span may be a client's (kube's "HTTP"); the reconcile span is in the
        // list of every span the line is in.
        let span = v["spans"]
            .as_array()
            .and_then(|spans| spans.iter().rev().find(|s| s["name"] == "reconcile"))
            .unwrap_or_else(|| panic!("not in a reconcile span: {line}"));
        if reports {
            assert_eq!(&v["span"], span, "{line}");
        }
        assert_eq!(span["namespace"], ns.as_str(), "{line}");
        let name = span["scalesetwatch"].as_str().unwrap_or_default();
        assert!(watches.contains(&name), "no watch name in the span: {line}");
        if let Some(r) = object_ref {
            assert!(
                r.ends_with(&format!("/{name}.{ns}")),
                "the span names {name}, kube-runtime {r}: {line}"
            );
        }
        seen.entry(name.to_owned())
            .or_default()
            .push(message.to_owned());
    }
    for name in watches {
        assert!(
            seen.get(name)
                .is_some_and(|m| m.iter().any(|m| m == "condition changed")),
            "no 'condition changed' line for {name}: {seen:?}\n{logs}"
        );
    }
    assert!(
        seen["missing"].iter().any(|m| m == "poll failed"),
        "{seen:?}"
    );
    // The ARM client's own debug lines are among them.
    let in_reconcile = seen.values().map(Vec::len).sum::<usize>();
    assert!(
        in_reconcile > 6,
        "only {in_reconcile} lines inside reconciles: {seen:?}"
    );

    // No secret and no bearer token, in any line.
    let sa_token = std::fs::read_to_string(&kubeconfig)
        .expect("kubeconfig")
        .lines()
        .find_map(|l| l.trim().strip_prefix("token:").map(|t| t.trim().to_owned()))
        .expect("token in kubeconfig");
    for (line, _) in &lines {
        assert!(!line.contains(SECRET), "the client secret leaked: {line}");
        assert!(
            !line.contains(&sa_token),
            "the Kubernetes token leaked: {line}"
        );
        // Every token here (Kubernetes' and the simulated Entra ID's) is a JWT.
        assert!(!line.contains("eyJ"), "a JWT leaked: {line}");
        assert!(
            !line.to_ascii_lowercase().contains("bearer "),
            "an Authorization header leaked: {line}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Scoping

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
