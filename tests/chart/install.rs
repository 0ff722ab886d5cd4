//! The rendered chart against the real API server: server-side dry-run of every mode,
//! install / upgrade / uninstall, and the CRD's own life cycle under Helm.

use crate::support::{Cluster, describe, run_command, unique_name};
use crate::{
    CLIENT_ID, CRD_NAME, chart, chart_dir, cluster, modes, render, stderr, stdout, support,
};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A namespace that enforces and warns on the `restricted` Pod Security Standard.
fn restricted_namespace(cluster: &Cluster, prefix: &str) -> String {
    let ns = cluster.create_namespace(prefix);
    cluster.kubectl_ok(&[
        "label",
        "namespace",
        &ns,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
        "pod-security.kubernetes.io/audit=restricted",
    ]);
    ns
}

#[test]
fn every_rendered_manifest_passes_server_side_dry_run() {
    let cluster = cluster();
    for (mode, mut values) in modes() {
        let release = unique_name("dry");
        let ns = restricted_namespace(cluster, &format!("dry-{mode}"));
        if mode == "watch-namespace" {
            let watch = cluster.create_namespace("dry-watched");
            values.extend(["--set".into(), format!("watchNamespace={watch}")]);
        }
        let docs = render(&release, &ns, &values);
        // The Prometheus Operator's CRDs are not installed here.
        let (monitors, docs): (Vec<Value>, Vec<Value>) = docs.into_iter().partition(|d| {
            d["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("monitoring.coreos.com/"))
        });
        // The CRD exists already (applied server-side by cluster()), so it is checked the
        // same way: a client-side apply would warn about the missing last-applied annotation.
        let (crds, applicable): (Vec<Value>, Vec<Value>) = docs
            .into_iter()
            .partition(|d| d["kind"] == "CustomResourceDefinition");
        assert_eq!(crds.len(), 1, "{mode}");
        let out = cluster.kubectl_stdin(
            &["apply", "--server-side", "--dry-run=server", "-f", "-"],
            &crds[0].to_string(),
        );
        assert!(
            out.status.success(),
            "{mode}: {}",
            describe("kubectl apply --server-side --dry-run=server (CRD)", &out)
        );
        assert_eq!(monitors.len(), 2 * usize::from(mode == "ha"), "{mode}");
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": applicable});
        let out =
            cluster.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &list.to_string());
        assert!(
            out.status.success(),
            "{mode}: {}",
            describe("kubectl apply --dry-run=server", &out)
        );
        let text = stdout(&out);
        assert_eq!(
            text.matches("(server dry run)").count(),
            applicable.len(),
            "{mode}: every object must be accepted:\n{text}"
        );
        let err = stderr(&out);
        assert!(
            !err.contains("PodSecurity"),
            "{mode}: violates the restricted Pod Security Standard:\n{err}"
        );
        assert!(
            !err.to_lowercase().contains("warning"),
            "{mode}: API server warnings:\n{err}"
        );
    }
}

#[test]
fn helm_install_upgrade_and_uninstall() {
    let cluster = cluster();
    let release = unique_name("ssw");
    let ns = unique_name("scaleset-watch");
    let fullname = format!("{release}-scaleset-watch");
    let set_client = format!("azure.identity.clientId={CLIENT_ID}");
    let out = cluster.helm_ok(&[
        "install",
        &release,
        &chart(),
        "-n",
        &ns,
        "--create-namespace",
        "--set",
        &set_client,
        // The shared cluster's CRD belongs to no release (see cluster()); the CRD's own life
        // cycle under Helm is tested on a private cluster.
        "--set",
        "crds.enabled=false",
    ]);
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert!(
        out.contains("kubectl get ssw -A"),
        "NOTES.txt must show how to list ScaleSetWatches:\n{out}"
    );
    for obj in [
        format!("deployment/{fullname}"),
        format!("serviceaccount/{fullname}"),
        format!("service/{fullname}-metrics"),
        format!("role/{fullname}-leader-election"),
        format!("rolebinding/{fullname}-leader-election"),
    ] {
        cluster.kubectl_ok(&["get", "-n", &ns, &obj]);
    }
    cluster.kubectl_ok(&[
        "get",
        &format!("clusterrole/{fullname}"),
        &format!("clusterrolebinding/{fullname}"),
    ]);
    cluster.kubectl_ok(&["get", "crd", CRD_NAME]);
    // The CRD's short name works for users (NOTES.txt).
    cluster.kubectl_ok(&["get", "ssw", "-A"]);

    // Upgrade to two replicas (leader election makes that safe); pods never start here.
    cluster.helm_ok(&[
        "upgrade",
        &release,
        &chart(),
        "-n",
        &ns,
        "--reuse-values",
        "--set",
        "replicaCount=2",
    ]);
    let deploy = cluster.kubectl_json(&["get", "-n", &ns, &format!("deployment/{fullname}")]);
    assert_eq!(deploy["spec"]["replicas"], 2);
    let status = cluster.helm_ok(&["status", &release, "-n", &ns]);
    assert!(status.contains("REVISION: 2"), "{status}");

    cluster.helm_ok(&["uninstall", &release, "-n", &ns]);
    let out = cluster.kubectl(&["get", "-n", &ns, &format!("deployment/{fullname}")]);
    assert!(
        !out.status.success() && stderr(&out).contains("NotFound"),
        "{}",
        describe("get deployment", &out)
    );
    let out = cluster.kubectl(&["get", &format!("clusterrole/{fullname}")]);
    assert!(
        !out.status.success() && stderr(&out).contains("NotFound"),
        "{}",
        describe("get clusterrole", &out)
    );
    let list = cluster.helm_ok(&["list", "-n", &ns, "-q"]);
    assert!(!list.contains(&release), "{list}");
}

/// With `crds.enabled` (the default) the release owns the CRD: `helm install` creates it,
/// `helm upgrade` to a chart whose CRD has a new field serves that field, and `helm
/// uninstall` keeps the CRD and every ScaleSetWatch. On a private control plane, as it
/// changes the cluster-wide CRD.
#[test]
fn helm_installs_upgrades_and_keeps_the_crd() {
    let cluster = Cluster::start();
    let ns = "ssw-crd";
    let set_client = format!("azure.identity.clientId={CLIENT_ID}");
    let helm = |verb: &str, chart: &str| {
        cluster.helm_ok(&[
            verb,
            "ssw",
            chart,
            "-n",
            ns,
            "--create-namespace",
            "--set",
            &set_client,
        ])
    };
    helm("install", &chart());
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        &format!("crd/{CRD_NAME}"),
        "--timeout=60s",
    ]);
    let crd = cluster.kubectl_json(&["get", "crd", CRD_NAME]);
    assert_eq!(
        crd["metadata"]["annotations"]["meta.helm.sh/release-name"],
        "ssw"
    );
    let watch = |extra: &str| {
        format!(
            "apiVersion: scalesetwatch.io/v1alpha1\nkind: ScaleSetWatch\nmetadata:\n  name: web\n  namespace: {ns}\nspec:\n  subscriptionId: 00000000-0000-0000-0000-0000000000aa\n  resourceGroup: rg\n  scaleSetName: web\n{extra}"
        )
    };
    let apply = |yaml: &str| cluster.kubectl_stdin(&["apply", "-f", "-"], yaml);
    let future = watch("  futureField: served\n");
    let out = apply(&future);
    assert!(
        !out.status.success() && stderr(&out).contains("futureField"),
        "this chart's CRD has no futureField: {}",
        describe("kubectl apply", &out)
    );
    assert!(apply(&watch("")).status.success());

    // The next chart version: the same CRD with one more spec field.
    let next = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_name("chart-next"));
    let out = run_command(
        {
            let mut c = Command::new("cp");
            c.arg("-r").arg(chart_dir()).arg(&next);
            c
        },
        None,
        support::COMMAND_TIMEOUT,
    );
    assert!(out.status.success(), "{}", describe("cp -r", &out));
    let template = next.join("templates/crd.yaml");
    let text = std::fs::read_to_string(&template).unwrap();
    let at = text
        .lines()
        .find(|l| l.trim() == "scaleSetName:")
        .expect("the spec's scaleSetName property");
    let indent = &at[..at.len() - at.trim_start().len()];
    let field = format!(
        "{indent}futureField:\n{indent}  description: A field a later chart version adds.\n{indent}  type: string\n{at}"
    );
    std::fs::write(&template, text.replacen(at, &field, 1)).unwrap();
    helm("upgrade", &next.display().to_string());
    support::assert_eventually(
        Duration::from_secs(30),
        "the upgraded CRD serves futureField",
        || apply(&future).status.success(),
    );
    let obj = cluster.kubectl_json(&["get", "ssw", "web", "-n", ns]);
    assert_eq!(obj["spec"]["futureField"], "served");

    cluster.helm_ok(&["uninstall", "ssw", "-n", ns]);
    cluster.kubectl_ok(&["get", "crd", CRD_NAME]);
    let obj = cluster.kubectl_json(&["get", "ssw", "web", "-n", ns]);
    assert_eq!(obj["spec"]["futureField"], "served", "kept with the CRD");
}
