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

use serde_json::{Value, json};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::controller::{
    CLIENT, SECRET, SUB, SimEnv, TENANT, events_about, scenario, wait_condition, watch_yaml,
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
        // Several releases share this cluster, so none of them owns the CRD (crds.enabled
        // is false in values()); tests/chart/install.rs covers the CRD's life under Helm.
        cluster.apply_crd();
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

/// Creates namespace `ns`, enforcing the `restricted` Pod Security Standard, with `sim`'s CA
/// and the service principal's Secret in it.
fn restricted_namespace(ns: &str, sim: &SimEnv) {
    let b = bed();
    b.cluster.kubectl_apply_stdin(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    \
         pod-security.kubernetes.io/enforce: restricted\n    \
         pod-security.kubernetes.io/enforce-version: latest\n"
    ));
    let ca = sim.ca_file().display().to_string();
    b.cluster.kubectl_ok(&[
        "create",
        "configmap",
        "sim-ca",
        "-n",
        ns,
        &format!("--from-file=ca.crt={ca}"),
    ]);
    b.cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "azure-sp",
        "-n",
        ns,
        &format!("--from-literal=tenantId={TENANT}"),
        &format!("--from-literal=clientId={CLIENT}"),
        &format!("--from-literal=clientSecret={SECRET}"),
    ]);
}

/// Values for release `ssw` in `ns`: the image `tag`, `sim` as Azure, `identity` as
/// `azure.identity`, and the API server at the node's address (no kube-proxy on the test bed:
/// KUBERNETES_SERVICE_HOST/PORT name the forwarder there). `extra_env` is appended to
/// extraEnv.
fn values(ns: &str, sim: &SimEnv, tag: &str, identity: Value, extra_env: Value) -> Value {
    let cluster = bed().cluster;
    let node_ip = cluster.node_ip().expect("node ip");
    let api_port = cluster
        .api_url()
        .rsplit(':')
        .next()
        .expect("port in the API server URL");
    let mut env = json!([
        {"name": "KUBERNETES_SERVICE_HOST", "value": node_ip},
        {"name": "KUBERNETES_SERVICE_PORT", "value": api_port},
    ]);
    if let (Some(env), Some(extra)) = (env.as_array_mut(), extra_env.as_array()) {
        env.extend(extra.iter().cloned());
    }
    json!({
        "image": {"repository": IMAGE_REPO, "tag": tag},
        "azure": {
            "armEndpoint": sim.url(),
            "authorityHost": sim.url(),
            "caBundle": {"configMap": "sim-ca"},
            "identity": identity,
        },
        "watchNamespace": ns,
        "crds": {"enabled": false},
        "leaderElection": {"leaseDurationSeconds": LEASE_SECONDS},
        "extraEnv": env,
    })
}

/// The service principal of the bed's simulator, from the namespace's Secret.
fn client_secret() -> Value {
    json!({"mode": "clientSecret", "existingSecret": "azure-sp"})
}

/// `helm upgrade --install` of the chart as release `ssw` in `ns` with `values` (a file) and
/// `sets`; waits for the Deployment to be available (pods Ready through their own probes).
fn install(ns: &str, values: &Value, sets: &[&str]) {
    let b = bed();
    let file = b
        .cluster
        .dir()
        .join(format!("{}.values.json", unique_name(ns)));
    // JSON is YAML.
    std::fs::write(&file, values.to_string()).expect("write values");
    let chart = repo_root().join("charts/scaleset-watch");
    let timeout = format!("{}s", POD_READY.as_secs());
    let mut args = vec![
        "upgrade",
        "--install",
        "ssw",
        chart.to_str().expect("utf-8 path"),
        "-n",
        ns,
        "-f",
        file.to_str().expect("utf-8 path"),
        "--wait",
        "--timeout",
        &timeout,
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
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
    let ns = unique_name("node-basic");
    restricted_namespace(&ns, &b.sim);
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

    install(
        &ns,
        &values(&ns, &b.sim, &b.tag, client_secret(), json!([])),
        &[],
    );
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
fn deleting_the_leader_pod_hands_over_within_the_lease_duration() {
    let b = bed();
    let ns = unique_name("node-failover");
    restricted_namespace(&ns, &b.sim);
    let v = values(&ns, &b.sim, &b.tag, client_secret(), json!([]));
    install(&ns, &v, &["replicaCount=2"]);
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
    // The standby, or the ReplicaSet's replacement pod when it starts before the standby's
    // next retry (both are this release's pods; the deleted one is not).
    assert!(
        pods(&ns)
            .iter()
            .any(|p| p["metadata"]["name"] == new_leader.as_str()),
        "{new_leader} is not a pod of the release"
    );

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
    let ns = unique_name("node-upgrade");
    restricted_namespace(&ns, &b.sim);
    install(
        &ns,
        &values(&ns, &b.sim, &b.tag, client_secret(), json!([])),
        &[],
    );
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
    install(
        &ns,
        &values(&ns, &b.sim, &tag2, client_secret(), json!([])),
        &[],
    );
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

#[test]
fn workload_identity_exchanges_the_kubelet_projected_token_checked_against_the_jwks() {
    const WI_CLIENT: &str = "6a1c0d2e-8b3f-4e5a-9c7d-2f4e6a8b0c1d";
    const AUDIENCE: &str = "api://AzureADTokenExchange";
    let b = bed();
    let api = b.cluster.api_url();
    let node_ip = b.cluster.node_ip().expect("node ip");
    // The namespace name is needed for the federated credential's subject, before the
    // simulator (and so the namespace's CA ConfigMap) exists.
    let ns = unique_name("node-wi");
    let subject = format!("system:serviceaccount:{ns}:{DEPLOYMENT}");
    // An application with no client secret: a token can only come from federation.
    let sim = SimEnv::start_at(
        &format!(
            r#"
servicePrincipals:
  - tenantId: {TENANT}
    clientId: {WI_CLIENT}
    subscriptions: [{SUB}]
federatedIdentities:
  - issuer: {api}
    subject: {subject}
    audience: {AUDIENCE}
    tenantId: {TENANT}
    clientId: {WI_CLIENT}
    jwksUrl: {api}/openid/v1/jwks
    jwksCaFile: {ca}
subscriptions:
  - id: {SUB}
    tenantId: {TENANT}
    resourceGroups:
      - name: {RG}
        scaleSets:
          - {{name: wi, generate: {{count: 3}}}}
"#,
            ca = b.cluster.ca_file().display(),
        ),
        &format!("{node_ip}:0"),
    );
    restricted_namespace(&ns, &sim);
    // What the Azure Workload Identity webhook injects (there is no webhook here): the
    // kubelet projects a token for the Entra audience, and the environment names it.
    let mut v = values(
        &ns,
        &sim,
        &b.tag,
        json!({"mode": "workload", "clientId": WI_CLIENT, "tenantId": TENANT}),
        json!([
            {"name": "AZURE_CLIENT_ID", "value": WI_CLIENT},
            {"name": "AZURE_TENANT_ID", "value": TENANT},
            {"name": "AZURE_FEDERATED_TOKEN_FILE",
             "value": "/var/run/secrets/azure/tokens/azure-identity-token"},
        ]),
    );
    v["extraVolumes"] = json!([{
        "name": "azure-identity-token",
        "projected": {"sources": [{"serviceAccountToken": {
            "path": "azure-identity-token", "audience": AUDIENCE, "expirationSeconds": 3600
        }}]}
    }]);
    v["extraVolumeMounts"] = json!([{
        "name": "azure-identity-token",
        "mountPath": "/var/run/secrets/azure/tokens",
        "readOnly": true
    }]);
    install(&ns, &v, &[]);
    apply_watch(&ns, "wi", "wi");
    let obj = wait_condition(
        b.cluster,
        &ns,
        "wi",
        "Ready",
        "True",
        None,
        Duration::from_secs(60),
    );
    assert_eq!(obj["status"]["summary"], "3/3", "{:#}", obj["status"]);
    let tokens = sim.stats().tokens;
    assert!(tokens.issued >= 1, "{tokens:?}");
}
