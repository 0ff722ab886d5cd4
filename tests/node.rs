//! The chart installed for real: `helm install` of charts/scaleset-watch with the image built
//! from ./Dockerfile (hack/image.sh, buildah), on the test bed's node (kubelet + containerd,
//! `hack/control-plane.sh up-node`). The pods run as the chart runs them (non-root, read-only
//! root filesystem, no capabilities, projected ServiceAccount token) in namespaces that enforce
//! the `restricted` Pod Security Standard, reach the API server and the ARM simulator at the
//! node's address, and report status.
//!
//! Network: the simulator listens on the node's bridge address, and pods reach the API server
//! there too (a forwarder to its loopback port; KUBERNETES_SERVICE_HOST/PORT point at it, as
//! there is no kube-proxy). Nothing leaves the machine.

mod support;

use serde_json::Value;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::controller::{
    CLIENT, SECRET, SimEnv, TENANT, events_about, scenario, wait_condition, watch_yaml,
};
use support::{
    Cluster, assert_eventually, describe, repo_root, run_command, unique_name, wait_for_value,
};

const RG: &str = "rg-node";
const IMAGE_REPO: &str = "localhost/scaleset-watch";
/// A pod's wait for its node, image and probes.
const POD_READY: Duration = Duration::from_secs(110);
const LEASE_SECONDS: u64 = 15;

struct Bed {
    cluster: &'static Cluster,
    sim: SimEnv,
    /// The image tag every install starts from.
    tag: String,
}

/// One node, simulator and image for the whole binary; each test installs its own release in
/// a namespace of its own, watching only that namespace.
fn bed() -> &'static Bed {
    static BED: OnceLock<Bed> = OnceLock::new();
    BED.get_or_init(|| {
        let cluster = Cluster::shared_node();
        let node_ip = cluster.node_ip().expect("up-node exports SSW_NODE_IP");
        let sim = SimEnv::start_at(
            &scenario(
                RG,
                r#"          - {name: web, pageSize: 2, generate: {count: 5}}
          - {name: failover, generate: {count: 3}}
          - {name: upgrade, generate: {count: 4}}
"#,
            ),
            &format!("{node_ip}:0"),
        );
        let tag = unique_name("v1");
        build_and_load_image(cluster, &tag);
        Bed { cluster, sim, tag }
    })
}

/// `hack/image.sh build` (the Dockerfile with buildah; the first release build takes minutes),
/// then the archive into the node's containerd.
fn build_and_load_image(cluster: &Cluster, tag: &str) {
    let archive = cluster.dir().join(format!("image-{tag}.tar"));
    let mut cmd = Command::new(repo_root().join("hack/image.sh"));
    cmd.arg("build").arg(tag).arg(&archive);
    let out = run_command(cmd, None, Duration::from_secs(3600));
    assert!(
        out.status.success(),
        "{}",
        describe("hack/image.sh build", &out)
    );
    let mut cmd = Command::new(support::control_plane_script());
    cmd.arg("load-image").arg(cluster.dir()).arg(&archive);
    let out = run_command(cmd, None, support::COMMAND_TIMEOUT);
    assert!(
        out.status.success(),
        "{}",
        describe("control-plane.sh load-image", &out)
    );
    let _ = std::fs::remove_file(&archive);
}

/// A namespace enforcing the `restricted` Pod Security Standard, with the simulator's CA and
/// the service principal's Secret in it.
fn restricted_namespace(prefix: &str) -> String {
    let b = bed();
    let ns = unique_name(prefix);
    b.cluster.kubectl_apply_stdin(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    \
         pod-security.kubernetes.io/enforce: restricted\n    \
         pod-security.kubernetes.io/enforce-version: latest\n"
    ));
    let ca = b.sim.ca_file().display().to_string();
    b.cluster.kubectl_ok(&[
        "create",
        "configmap",
        "sim-ca",
        "-n",
        &ns,
        &format!("--from-file=ca.crt={ca}"),
    ]);
    b.cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "azure-sp",
        "-n",
        &ns,
        &format!("--from-literal=tenantId={TENANT}"),
        &format!("--from-literal=clientId={CLIENT}"),
        &format!("--from-literal=clientSecret={SECRET}"),
    ]);
    ns
}

/// `helm upgrade --install` of the chart as release `ssw` in `ns` with the bed's image, the
/// simulator as Azure, and `extra` `--set` values; waits for the Deployment to be available
/// (pods Ready through their own probes).
fn install(ns: &str, tag: &str, extra: &[&str]) {
    let b = bed();
    let node_ip = b.cluster.node_ip().expect("node ip");
    let api_port = b
        .cluster
        .api_url()
        .rsplit(':')
        .next()
        .expect("port in the API server URL");
    let sim = b.sim.url();
    let chart = repo_root().join("charts/scaleset-watch");
    let timeout = format!("{}s", POD_READY.as_secs());
    let mut sets = vec![
        format!("image.repository={IMAGE_REPO}"),
        format!("image.tag={tag}"),
        "azure.identity.mode=clientSecret".to_owned(),
        "azure.identity.existingSecret=azure-sp".to_owned(),
        format!("azure.armEndpoint={sim}"),
        format!("azure.authorityHost={sim}"),
        "azure.caBundle.configMap=sim-ca".to_owned(),
        format!("watchNamespace={ns}"),
        format!("leaderElection.leaseDurationSeconds={LEASE_SECONDS}"),
        // No kube-proxy on the test bed: the API server's forwarder on the node's address.
        "extraEnv[0].name=KUBERNETES_SERVICE_HOST".to_owned(),
        format!("extraEnv[0].value={node_ip}"),
        "extraEnv[1].name=KUBERNETES_SERVICE_PORT".to_owned(),
    ];
    sets.extend(extra.iter().map(|s| (*s).to_owned()));
    // An env value must stay a string; --set would make the port a number.
    let port = format!("extraEnv[1].value={api_port}");
    let mut args = vec![
        "upgrade",
        "--install",
        "ssw",
        chart.to_str().expect("utf-8 path"),
        "-n",
        ns,
        "--wait",
        "--timeout",
        &timeout,
    ];
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    args.extend(["--set-string", &port]);
    let out = b.cluster.helm(&args);
    assert!(
        out.status.success(),
        "{}\n--- pods ---\n{}\n--- events ---\n{}",
        describe("helm upgrade --install", &out),
        String::from_utf8_lossy(
            &b.cluster
                .kubectl(&["get", "pods", "-n", ns, "-o", "wide"])
                .stdout
        ),
        String::from_utf8_lossy(&b.cluster.kubectl(&["get", "events", "-n", ns]).stdout),
    );
}

const DEPLOYMENT: &str = "ssw-scaleset-watch";

/// The release's pods (JSON items), oldest first.
fn pods(ns: &str) -> Vec<Value> {
    let list = bed().cluster.kubectl_json(&[
        "get",
        "pods",
        "-n",
        ns,
        "-l",
        "app.kubernetes.io/instance=ssw",
        "--sort-by=.metadata.creationTimestamp",
    ]);
    list["items"].as_array().cloned().unwrap_or_default()
}

fn is_ready(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn lease_holder(ns: &str) -> Option<String> {
    let out = bed().cluster.kubectl(&[
        "get",
        "lease",
        DEPLOYMENT,
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    let holder = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !holder.is_empty()).then_some(holder)
}

fn apply_watch(ns: &str, name: &str, scale_set: &str) {
    bed()
        .cluster
        .kubectl_apply_stdin(&watch_yaml(ns, name, &[], RG, scale_set, ""));
}

#[test]
fn the_chart_runs_on_the_node_as_restricted_pods_and_its_watch_gets_status() {
    let b = bed();
    let ns = restricted_namespace("node-basic");
    // The namespace really enforces `restricted`: a privileged pod is refused.
    let privileged = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: privileged\n  namespace: {ns}\nspec:\n  \
         containers:\n  - name: c\n    image: {IMAGE_REPO}:{}\n    securityContext:\n      \
         privileged: true\n",
        b.tag
    );
    let out = b
        .cluster
        .kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &privileged);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("PodSecurity"),
        "{}",
        describe("a privileged pod in a restricted namespace", &out)
    );

    install(&ns, &b.tag, &[]);
    let pod = pods(&ns).pop().expect("one pod");
    assert!(is_ready(&pod), "{pod:#}");
    let name = pod["metadata"]["name"]
        .as_str()
        .expect("pod name")
        .to_owned();
    let status = &pod["status"]["containerStatuses"][0];
    assert_eq!(
        status["image"],
        format!("{IMAGE_REPO}:{}", b.tag),
        "{status:#}"
    );
    assert_eq!(status["restartCount"], 0, "{status:#}");
    // The ServiceAccount token came from the kubelet (a projected volume), not a Secret.
    let volumes = pod["spec"]["volumes"].to_string();
    assert!(volumes.contains("serviceAccountToken"), "{volumes}");

    apply_watch(&ns, "web", "web");
    let obj = wait_condition(
        b.cluster,
        &ns,
        "web",
        "Ready",
        "True",
        None,
        Duration::from_secs(60),
    );
    assert_eq!(obj["status"]["summary"], "5/5", "{:#}", obj["status"]);

    // kubectl logs goes API server -> kubelet on the node's address -> containerd.
    let logs = b.cluster.kubectl_ok(&["logs", "-n", &ns, &name]);
    assert!(logs.contains("controller running"), "{logs}");

    // Within its memory limit at this scale: never OOM-killed, and the kubelet's own
    // measurement of the container is below the chart's limit.
    let summary: Value = serde_json::from_str(&b.cluster.kubectl_ok(&[
        "get",
        "--raw",
        "/api/v1/nodes/ssw-node/proxy/stats/summary",
    ]))
    .expect("stats summary JSON");
    let working_set = summary["pods"]
        .as_array()
        .and_then(|pods| pods.iter().find(|p| p["podRef"]["name"] == name.as_str()))
        .and_then(|p| p["containers"][0]["memory"]["workingSetBytes"].as_u64())
        .expect("the pod's memory in the kubelet's summary");
    let limit = 256 * 1024 * 1024;
    assert!(working_set < limit, "working set {working_set} >= {limit}");
    let pod = b.cluster.kubectl_json(&["get", "pod", &name, "-n", &ns]);
    assert_eq!(pod["status"]["containerStatuses"][0]["restartCount"], 0);
}

#[test]
fn deleting_the_leader_pod_hands_over_to_the_standby_within_the_lease_duration() {
    let b = bed();
    let ns = restricted_namespace("node-failover");
    install(&ns, &b.tag, &["replicaCount=2"]);
    apply_watch(&ns, "failover", "failover");
    wait_condition(
        b.cluster,
        &ns,
        "failover",
        "Healthy",
        "True",
        None,
        Duration::from_secs(60),
    );
    let before = pods(&ns);
    assert_eq!(before.len(), 2, "two replicas");
    assert!(
        before.iter().all(is_ready),
        "both pods Ready (the standby too)"
    );
    let leader = lease_holder(&ns).expect("a leader");
    let standby = before
        .iter()
        .map(|p| p["metadata"]["name"].as_str().expect("name").to_owned())
        .find(|n| *n != leader)
        .expect("a standby pod");

    b.cluster
        .kubectl_ok(&["delete", "pod", &leader, "-n", &ns, "--wait=false"]);
    let deleted = Instant::now();
    // The standby retries every lease/3; the leader releases the Lease on SIGTERM, and even
    // without that the Lease expires after LEASE_SECONDS.
    let new_leader = wait_for_value(Duration::from_secs(LEASE_SECONDS), || {
        lease_holder(&ns).filter(|h| *h != leader)
    })
    .unwrap_or_else(|| panic!("no new leader {LEASE_SECONDS}s after deleting {leader}"));
    eprintln!(
        "{new_leader} took over {:?} after the delete",
        deleted.elapsed()
    );
    assert_eq!(new_leader, standby, "the warm standby takes over");

    // The new leader polls: a change in Azure reaches the status, once.
    let r = b.sim.scale_set(RG, "failover");
    b.sim.put_instance(&r, "{id: 1, appHealth: unhealthy}");
    wait_condition(
        b.cluster,
        &ns,
        "failover",
        "Healthy",
        "False",
        None,
        Duration::from_secs(40),
    );
    assert_eventually(Duration::from_secs(15), "an Unhealthy event", || {
        events_about(b.cluster, &ns, "failover")
            .iter()
            .any(|e| e["reason"] == "Unhealthy")
    });
    // Let the old leader's grace period pass: no second writer adds a duplicate event.
    std::thread::sleep(Duration::from_secs(5));
    let unhealthy = events_about(b.cluster, &ns, "failover")
        .iter()
        .filter(|e| e["reason"] == "Unhealthy")
        .count();
    assert_eq!(unhealthy, 1, "one Unhealthy event, from one leader");
    b.sim.put_instance(&r, "{id: 1}");
}

#[test]
fn helm_upgrade_to_a_new_image_tag_rolls_and_keeps_status_and_events() {
    let b = bed();
    let ns = restricted_namespace("node-upgrade");
    install(&ns, &b.tag, &[]);
    apply_watch(&ns, "upgrade", "upgrade");
    let obj = wait_condition(
        b.cluster,
        &ns,
        "upgrade",
        "Ready",
        "True",
        None,
        Duration::from_secs(60),
    );
    let summary = obj["status"]["summary"].clone();
    assert_eq!(summary, "4/4");
    let events_before = events_about(b.cluster, &ns, "upgrade").len();

    let tag2 = unique_name("v2");
    build_and_load_image(b.cluster, &tag2);
    install(&ns, &tag2, &[]);
    assert_eventually(POD_READY, "only pods of the new tag, Ready", || {
        let p = pods(&ns);
        !p.is_empty()
            && p.iter().all(|p| {
                is_ready(p) && p["spec"]["containers"][0]["image"] == format!("{IMAGE_REPO}:{tag2}")
            })
    });
    // The new pod polls (the status stays right through the roll) ...
    let rolled = Instant::now();
    let r = b.sim.scale_set(RG, "upgrade");
    let served = b.sim.list_pages(&r);
    assert_eventually(Duration::from_secs(30), "a poll by the new pod", || {
        b.sim.list_pages(&r) > served
    });
    let obj = support::controller::get_watch(b.cluster, &ns, "upgrade");
    assert_eq!(obj["status"]["summary"], summary, "{:#}", obj["status"]);
    // ... and a fleet that did not change gets no new events from the new pod.
    let events_after = events_about(b.cluster, &ns, "upgrade");
    assert_eq!(
        events_after.len(),
        events_before,
        "events after the upgrade ({:?} after the roll): {events_after:#?}",
        rolled.elapsed()
    );
}
