//! Least-privilege RBAC, checked with `kubectl auth can-i` and real requests as exactly the
//! chart's ServiceAccount (a TokenRequest token).

use crate::support::{Cluster, describe, unique_name, wait_for};
use crate::{CLIENT_ID, chart, cluster, stderr, stdout};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long RBAC changes may take to reach the API server's authorizer cache.
const RBAC_PROPAGATION: Duration = Duration::from_secs(30);

/// `kubectl auth can-i` with a given kubeconfig: true for yes, false for no, panics otherwise.
fn can_i(cluster: &Cluster, kubeconfig: &Path, args: &[&str]) -> bool {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let out = cluster.kubectl_as(kubeconfig, &all);
    match (out.status.code(), stdout(&out).trim()) {
        (Some(0), "yes") => true,
        (Some(1), "no") => false,
        _ => panic!("{}", describe(&format!("kubectl {}", all.join(" ")), &out)),
    }
}

struct Installed {
    release: String,
    ns: String,
    fullname: String,
    kubeconfig: PathBuf,
}

/// Installs the chart into a fresh namespace and returns a kubeconfig holding a TokenRequest
/// token of exactly the chart's ServiceAccount.
fn install(cluster: &Cluster, extra: &[&str]) -> Installed {
    let release = unique_name("rbac");
    let ns = unique_name("ssw-rbac");
    let fullname = format!("{release}-scaleset-watch");
    let set_client = format!("azure.identity.clientId={CLIENT_ID}");
    let mut args = vec![
        "install",
        &*release,
        "-n",
        &*ns,
        "--create-namespace",
        "--set",
        &*set_client,
        "--set",
        "crds.enabled=false",
    ];
    let chart = chart();
    args.insert(2, &chart);
    args.extend_from_slice(extra);
    cluster.helm_ok(&args);
    let kubeconfig = cluster.service_account_kubeconfig(&ns, &fullname, None);
    let whoami = cluster.kubectl_as(
        &kubeconfig,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(
        stdout(&whoami),
        format!("system:serviceaccount:{ns}:{fullname}"),
        "{}",
        describe("kubectl auth whoami", &whoami)
    );
    Installed {
        release,
        ns,
        fullname,
        kubeconfig,
    }
}

fn uninstall(cluster: &Cluster, i: &Installed) {
    cluster.helm_ok(&["uninstall", &i.release, "-n", &i.ns]);
}

#[track_caller]
fn assert_yes(cluster: &Cluster, kc: &Path, args: &[&str]) {
    // RBAC objects reach the authorizer's cache asynchronously: poll (bounded).
    assert!(
        wait_for(RBAC_PROPAGATION, || can_i(cluster, kc, args)),
        "the controller's ServiceAccount must be allowed to: {}",
        args.join(" ")
    );
}

#[track_caller]
fn assert_no(cluster: &Cluster, kc: &Path, args: &[&str]) {
    assert!(
        !can_i(cluster, kc, args),
        "the controller's ServiceAccount must NOT be allowed to: {}",
        args.join(" ")
    );
}

/// Checks each line `yes|no VERB RESOURCE [FLAGS...]` of `table` with `kubectl auth can-i` as
/// the controller's ServiceAccount, in order.
#[track_caller]
fn assert_access(cluster: &Cluster, kc: &Path, table: &str) {
    for line in table.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut words = line.split_whitespace();
        let expected = words.next();
        let args: Vec<&str> = words.collect();
        match expected {
            Some("yes") => assert_yes(cluster, kc, &args),
            Some("no") => assert_no(cluster, kc, &args),
            _ => panic!("an access line starts with yes or no: {line}"),
        }
    }
}

#[test]
fn rbac_is_least_privilege_cluster_wide() {
    let cluster = cluster();
    let i = install(cluster, &[]);
    let kc = i.kubeconfig.as_path();
    let ns = &i.ns;
    let other = cluster.create_namespace("ssw-other");
    let lease = format!("leases.coordination.k8s.io/{}", i.fullname);

    assert_access(
        cluster,
        kc,
        &format!(
            "
            yes list scalesetwatches.scalesetwatch.io --all-namespaces
            yes watch scalesetwatches.scalesetwatch.io --all-namespaces
            yes get scalesetwatches.scalesetwatch.io -n {other}
            yes patch scalesetwatches.scalesetwatch.io --subresource=status -n {other}
            yes update scalesetwatches.scalesetwatch.io --subresource=status -n {other}
            yes create events.events.k8s.io -n {other}
            yes patch events.events.k8s.io -n {other}
            yes create events -n {other}
            yes get secrets -n {other}
            yes create leases.coordination.k8s.io -n {ns}
            yes get {lease} -n {ns}
            yes update {lease} -n {ns}
            no  list secrets --all-namespaces
            no  list secrets -n {other}
            no  watch secrets -n {other}
            no  update scalesetwatches.scalesetwatch.io -n {other}
            no  patch scalesetwatches.scalesetwatch.io -n {other}
            no  delete scalesetwatches.scalesetwatch.io -n {other}
            no  create scalesetwatches.scalesetwatch.io -n {other}
            no  create pods -n {ns}
            no  list pods --all-namespaces
            no  get configmaps -n {ns}
            no  delete events.events.k8s.io -n {other}
            no  create leases.coordination.k8s.io -n {other}
            no  get {lease} -n {other}
            no  update leases.coordination.k8s.io/someone-elses-lease -n {ns}
            no  delete {lease} -n {ns}
            no  list leases.coordination.k8s.io -n {ns}
            no  create clusterroles.rbac.authorization.k8s.io
            "
        ),
    );

    // Real requests agree with the access reviews.
    let out = cluster.kubectl_as(kc, &["get", "ssw", "--all-namespaces"]);
    assert!(
        out.status.success(),
        "{}",
        describe("get ssw -A as the controller", &out)
    );
    let out = cluster.kubectl_as(kc, &["get", "secrets", "--all-namespaces"]);
    assert!(
        !out.status.success() && stderr(&out).contains("Forbidden"),
        "{}",
        describe("get secrets -A", &out)
    );
    uninstall(cluster, &i);
}

#[test]
fn rbac_without_secret_credentials_cannot_read_secrets() {
    let cluster = cluster();
    let i = install(cluster, &["--set", "secretCredentials.enabled=false"]);
    let kc = i.kubeconfig.as_path();
    let ns = &i.ns;
    let other = cluster.create_namespace("ssw-other");
    assert_access(
        cluster,
        kc,
        &format!(
            "
            yes list scalesetwatches.scalesetwatch.io --all-namespaces
            yes patch scalesetwatches.scalesetwatch.io --subresource=status -n {other}
            yes create events.events.k8s.io -n {other}
            yes create leases.coordination.k8s.io -n {ns}
            no  get secrets -n {other}
            no  get secrets -n {ns}
            "
        ),
    );
    let deploy = cluster.kubectl_json(&["get", "-n", &i.ns, &format!("deployment/{}", i.fullname)]);
    let env = deploy["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        env.contains(
            &serde_json::json!({"name": "SSW_ALLOW_SECRET_CREDENTIALS", "value": "false"})
        )
    );
    uninstall(cluster, &i);
}

#[test]
fn rbac_with_watch_namespace_is_namespaced() {
    let cluster = cluster();
    let watched = cluster.create_namespace("ssw-watched");
    let set_ns = format!("watchNamespace={watched}");
    let i = install(cluster, &["--set", &set_ns]);
    let kc = i.kubeconfig.as_path();
    let ns = &i.ns;
    let other = cluster.create_namespace("ssw-other");
    assert_access(
        cluster,
        kc,
        &format!(
            "
            yes list scalesetwatches.scalesetwatch.io -n {watched}
            yes watch scalesetwatches.scalesetwatch.io -n {watched}
            yes patch scalesetwatches.scalesetwatch.io --subresource=status -n {watched}
            yes create events.events.k8s.io -n {watched}
            yes get secrets -n {watched}
            yes create leases.coordination.k8s.io -n {ns}
            no  list scalesetwatches.scalesetwatch.io --all-namespaces
            no  list scalesetwatches.scalesetwatch.io -n {other}
            no  get secrets -n {other}
            no  get secrets -n {ns}
            no  create events.events.k8s.io -n {other}
            "
        ),
    );
    let out = cluster.kubectl(&["get", &format!("clusterrole/{}", i.fullname)]);
    assert!(
        !out.status.success(),
        "no ClusterRole in watchNamespace mode"
    );
    uninstall(cluster, &i);
}
