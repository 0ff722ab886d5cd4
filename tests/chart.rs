//! The Helm chart (charts/scaleset-watch) against real helm, a real kube-apiserver and the
//! real kubectl: lint, schema, rendering of every documented mode, server-side dry-run of
//! every rendered manifest, install/upgrade/uninstall, and least-privilege RBAC checked with
//! a TokenRequest token of exactly the chart's ServiceAccount.

mod support;

use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;
use support::{Cluster, describe, repo_root, run_command, tools, unique_name, wait_for};

const CLIENT_ID: &str = "5b5a2b8e-3f1c-4d7e-9a21-0c8f6b7d4e31";
const CRD_NAME: &str = "scalesetwatches.scalesetwatch.io";
/// How long RBAC changes may take to reach the API server's authorizer cache.
const RBAC_PROPAGATION: Duration = Duration::from_secs(30);

fn chart_dir() -> PathBuf {
    repo_root().join("charts/scaleset-watch")
}

fn chart() -> String {
    chart_dir().display().to_string()
}

fn ci_values(file: &str) -> String {
    chart_dir().join("ci").join(file).display().to_string()
}

/// Every documented mode: (name, helm value arguments). Each `ci/*-values.yaml` is one mode.
fn modes() -> Vec<(&'static str, Vec<String>)> {
    let f = |file: &str| vec!["-f".to_owned(), ci_values(file)];
    vec![
        (
            "default",
            vec![
                "--set".into(),
                format!("azure.identity.clientId={CLIENT_ID}"),
            ],
        ),
        ("workload-identity", f("workload-identity-values.yaml")),
        ("client-secret", f("client-secret-values.yaml")),
        ("managed-identity", f("managed-identity-values.yaml")),
        ("watch-namespace", f("watch-namespace-values.yaml")),
        ("ha", f("ha-values.yaml")),
    ]
}

/// helm without a cluster (lint, template), with private cache/config directories.
fn helm_local(args: &[&str]) -> Output {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chart-helm-home");
    let mut cmd = Command::new(&tools().helm);
    cmd.args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("KUBECONFIG");
    run_command(cmd, None, support::COMMAND_TIMEOUT)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `helm template <release> <chart> -n <ns> <values...>`: the rendered YAML.
#[track_caller]
fn template_yaml(release: &str, ns: &str, values: &[String]) -> String {
    let chart = chart();
    let mut args = vec!["template", release, &chart, "-n", ns];
    args.extend(values.iter().map(String::as_str));
    let out = helm_local(&args);
    assert!(out.status.success(), "{}", describe("helm template", &out));
    stdout(&out)
}

fn parse_docs(yaml: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).expect("rendered YAML parses"))
        .filter(|v| !v.is_null())
        .collect()
}

#[track_caller]
fn render(release: &str, ns: &str, values: &[String]) -> Vec<Value> {
    parse_docs(&template_yaml(release, ns, values))
}

fn mode_values(name: &str) -> Vec<String> {
    modes()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no mode {name}"))
        .1
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_owned())
        .collect();
    k.sort();
    k
}

#[track_caller]
fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind}, got {}",
        found.len()
    );
    found[0]
}

fn container(docs: &[Value]) -> &Value {
    &one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
}

/// The container's env as name -> entry.
fn env_of(docs: &[Value]) -> serde_json::Map<String, Value> {
    container(docs)["env"]
        .as_array()
        .expect("env list")
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
        .collect()
}

fn env_value(docs: &[Value], name: &str) -> Option<String> {
    env_of(docs)
        .get(name)
        .and_then(|e| e["value"].as_str().map(str::to_owned))
}

/// Rules of a (Cluster)Role as (apiGroup, resource, verbs) triples.
fn rules(role: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for rule in role["rules"].as_array().unwrap() {
        let strs = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default()
        };
        for g in strs(&rule["apiGroups"]) {
            for r in strs(&rule["resources"]) {
                out.push((g.clone(), r, strs(&rule["verbs"])));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Static checks (helm only)
// ---------------------------------------------------------------------------------------

/// The chart's CRD template renders exactly the generated CRD, plus the chart's labels and
/// (by default) the keep policy; `crds.enabled=false` leaves it out.
#[test]
fn chart_crd_template_renders_the_repo_crd() {
    let out = run_command(
        {
            let mut c = Command::new(repo_root().join("hack/sync-chart-crd.sh"));
            c.arg("--check");
            c
        },
        None,
        support::COMMAND_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "{}",
        describe("hack/sync-chart-crd.sh --check", &out)
    );
    let repo: Value = yaml_serde::from_str(
        &std::fs::read_to_string(repo_root().join("crds/scalesetwatches.yaml")).unwrap(),
    )
    .unwrap();
    let crd_of = |values: &[String]| -> Option<Value> {
        render("ssw", "scaleset-watch", values)
            .into_iter()
            .find(|d| d["kind"] == "CustomResourceDefinition")
    };
    let defaults = mode_values("default");
    let mut crd = crd_of(&defaults).expect("the CRD is rendered by default");
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
        "helm uninstall must not delete every ScaleSetWatch"
    );
    assert_eq!(
        crd["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );
    let metadata = crd["metadata"].as_object_mut().unwrap();
    metadata.remove("labels");
    metadata.remove("annotations");
    assert!(
        crd == repo,
        "the rendered CRD differs from crds/scalesetwatches.yaml"
    );

    let with = |extra: &str| -> Vec<String> {
        let mut v = defaults.clone();
        v.extend(["--set".to_owned(), extra.to_owned()]);
        v
    };
    let unkept = crd_of(&with("crds.keep=false")).expect("rendered");
    assert!(
        unkept["metadata"]["annotations"].is_null(),
        "{:#}",
        unkept["metadata"]
    );
    assert!(crd_of(&with("crds.enabled=false")).is_none());
}

#[test]
fn every_ci_values_file_is_a_tested_mode() {
    let covered: Vec<String> = modes().into_iter().flat_map(|(_, v)| v).collect();
    for entry in std::fs::read_dir(chart_dir().join("ci")).unwrap() {
        let path = entry.unwrap().path().display().to_string();
        assert!(
            covered.contains(&path),
            "{path} is not exercised by tests/chart.rs modes()"
        );
    }
}

#[test]
fn helm_lint_strict_is_clean_for_every_mode() {
    let mut all = vec![("plain values.yaml", vec![])];
    all.extend(modes());
    for (name, values) in all {
        let mut args = vec!["lint", "--strict"];
        let chart = chart();
        args.push(&chart);
        args.extend(values.iter().map(String::as_str));
        let out = helm_local(&args);
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            out.status.success(),
            "{name}: {}",
            describe("helm lint --strict", &out)
        );
        assert!(
            text.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{name}: {text}"
        );
        assert!(
            !text.contains("[WARNING]") && !text.contains("[ERROR]"),
            "{name}: {text}"
        );
    }
}

#[test]
fn workload_identity_requires_a_client_id() {
    let out = helm_local(&["template", "ssw", &chart()]);
    assert!(
        !out.status.success(),
        "rendering without azure.identity.clientId must fail"
    );
    assert!(
        stderr(&out)
            .contains("azure.identity.clientId is required when azure.identity.mode=workload"),
        "{}",
        describe("helm template", &out)
    );
}

#[test]
fn client_secret_mode_requires_an_existing_secret() {
    let out = helm_local(&[
        "template",
        "ssw",
        &chart(),
        "--set",
        "azure.identity.mode=clientSecret",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "azure.identity.existingSecret is required when azure.identity.mode=clientSecret"
        ),
        "{}",
        describe("helm template", &out)
    );
}

#[test]
fn more_than_one_replica_requires_leader_election() {
    let out = helm_local(&[
        "template",
        "ssw",
        &chart(),
        "--set",
        &format!("azure.identity.clientId={CLIENT_ID}"),
        "--set",
        "replicaCount=2",
        "--set",
        "leaderElection.enabled=false",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("replicaCount > 1 requires leaderElection.enabled=true"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn values_schema_rejects_bad_values_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--set", "azure.cloud=AzureMars"],
            "at '/azure/cloud': value must be one of 'AzurePublic', 'AzureChina', 'AzureUSGovernment'",
        ),
        (
            &["--set", "azure.identity.mode=podIdentity"],
            "at '/azure/identity/mode': value must be one of 'workload', 'clientSecret', 'managed'",
        ),
        (
            &["--set", "replicas=2"],
            "additional properties 'replicas' not allowed",
        ),
        (
            &["--set", "azure.identity.clientID=x"],
            "at '/azure/identity': additional properties 'clientID' not allowed",
        ),
        (
            &["--set", "azure.identity.clientId=not-a-uuid"],
            "at '/azure/identity/clientId': 'not-a-uuid' does not match pattern",
        ),
        (
            &["--set", "log.level=verbose"],
            "at '/log/level': value must be one of 'error', 'warn', 'info', 'debug', 'trace'",
        ),
        (
            &["--set", "log.format=xml"],
            "at '/log/format': value must be one of 'json', 'text'",
        ),
        (
            &["--set-string", "replicaCount=two"],
            "at '/replicaCount': got string, want integer",
        ),
        (
            &["--set-string", "secretCredentials.enabled=yes"],
            "at '/secretCredentials/enabled': got string, want boolean",
        ),
        (&["--set", "watchNamespace=Bad_NS"], "at '/watchNamespace'"),
        (
            &["--set", "azure.armEndpoint=http://insecure.example"],
            "at '/azure/armEndpoint'",
        ),
        (
            &["--set", "polling.statusHeartbeat=5 minutes"],
            "at '/polling/statusHeartbeat'",
        ),
        (
            &["--set", "polling.maxConcurrentFetchesPerSubscription=0"],
            "at '/polling/maxConcurrentFetchesPerSubscription'",
        ),
        (
            &["--set", "ambientCredentials.namespaces={team_a}"],
            "at '/ambientCredentials/namespaces/0': 'team_a' does not match pattern",
        ),
        (
            &["--set", "ambientCredentials.subscriptions={my-sub}"],
            "at '/ambientCredentials/subscriptions/0': 'my-sub' does not match pattern",
        ),
        (
            &["--set", "ambientCredentials.namespaces=team-a"],
            "at '/ambientCredentials/namespaces': got string, want array",
        ),
    ];
    for (args, message) in cases {
        let chart = chart();
        let mut all = vec![
            "template",
            "ssw",
            &chart,
            "--set",
            "azure.identity.clientId=5b5a2b8e-3f1c-4d7e-9a21-0c8f6b7d4e31",
        ];
        all.extend_from_slice(args);
        let out = helm_local(&all);
        assert!(!out.status.success(), "{args:?} must be rejected");
        let err = stderr(&out);
        assert!(
            err.contains("values don't meet the specifications of the schema"),
            "{args:?}: {err}"
        );
        assert!(
            err.contains(message),
            "{args:?}: expected {message:?} in:\n{err}"
        );
    }
}

/// Checks shared by every mode.
#[track_caller]
fn assert_common(name: &str, release: &str, ns: &str, docs: &[Value]) {
    let fullname = format!("{release}-scaleset-watch");
    for d in docs {
        let labels = &d["metadata"]["labels"];
        for l in [
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/component",
            "app.kubernetes.io/part-of",
            "app.kubernetes.io/managed-by",
            "helm.sh/chart",
        ] {
            assert!(
                labels[l].is_string(),
                "{name}: {} {} lacks label {l}",
                d["kind"],
                d["metadata"]["name"]
            );
        }
        if !matches!(
            d["kind"].as_str(),
            Some("ClusterRole" | "ClusterRoleBinding" | "CustomResourceDefinition")
        ) {
            assert!(
                d["metadata"]["namespace"].is_string(),
                "{name}: {} has no namespace",
                d["kind"]
            );
        }
    }
    let deploy = one(docs, "Deployment");
    assert_eq!(deploy["metadata"]["name"], fullname.as_str());
    let pod = &deploy["spec"]["template"]["spec"];
    let c = container(docs);
    let app_version = chart_app_version();
    assert_eq!(
        c["image"],
        format!("ghcr.io/scaleset-watch/scaleset-watch:{app_version}").as_str(),
        "{name}"
    );
    assert_eq!(c["args"], serde_json::json!(["run"]), "{name}");
    assert_eq!(
        c["ports"],
        serde_json::json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        serde_json::json!({"path": "/healthz", "port": "http"})
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        serde_json::json!({"path": "/readyz", "port": "http"})
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], 65532);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(
        c["resources"]["requests"]["cpu"].is_string()
            && c["resources"]["limits"]["memory"].is_string()
    );
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["serviceAccountName"], fullname.as_str());
    let env = env_of(docs);
    assert_eq!(
        env_value(docs, "SSW_HTTP_ADDR").as_deref(),
        Some("0.0.0.0:8080")
    );
    assert_eq!(env_value(docs, "SSW_LEADER_ELECT").as_deref(), Some("true"));
    assert_eq!(
        env_value(docs, "SSW_LEASE_NAME").as_deref(),
        Some(fullname.as_str())
    );
    assert_eq!(
        env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(
        env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    for k in [
        "SSW_LOG_FORMAT",
        "SSW_LOG_LEVEL",
        "SSW_CLOUD",
        "SSW_ALLOW_SECRET_CREDENTIALS",
    ] {
        assert!(env_value(docs, k).is_some(), "{name}: env {k} missing");
    }
    let svc = one(docs, "Service");
    assert_eq!(
        svc["spec"]["ports"],
        serde_json::json!([{"name": "http-metrics", "port": 8080, "targetPort": "http", "protocol": "TCP"}])
    );
    assert_eq!(
        svc["spec"]["selector"],
        deploy["spec"]["selector"]["matchLabels"]
    );
    // Leader election: a Role in the release namespace, only for leases.
    let le = docs
        .iter()
        .find(|d| {
            d["kind"] == "Role"
                && d["metadata"]["name"] == format!("{fullname}-leader-election").as_str()
        })
        .unwrap_or_else(|| panic!("{name}: no leader-election Role"));
    assert_eq!(le["metadata"]["namespace"], ns);
    for (g, r, verbs) in rules(le) {
        assert_eq!((g.as_str(), r.as_str()), ("coordination.k8s.io", "leases"));
        assert!(
            verbs
                .iter()
                .all(|v| ["get", "create", "update"].contains(&v.as_str())),
            "{verbs:?}"
        );
    }
    let sa = one(docs, "ServiceAccount");
    assert_eq!(sa["metadata"]["name"], fullname.as_str());
}

fn chart_app_version() -> String {
    let text = std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap();
    let v: Value = yaml_serde::from_str(&text).unwrap();
    v["appVersion"].as_str().unwrap().to_owned()
}

#[test]
fn renders_default_values_workload_identity() {
    for mode in ["default", "workload-identity"] {
        let docs = render("ssw", "scaleset-watch", &mode_values(mode));
        assert_common(mode, "ssw", "scaleset-watch", &docs);
        assert_eq!(
            kinds(&docs),
            [
                "ClusterRole",
                "ClusterRoleBinding",
                "CustomResourceDefinition",
                "Deployment",
                "Role",
                "RoleBinding",
                "Service",
                "ServiceAccount"
            ],
            "{mode}: optional objects (PDB, NetworkPolicy, ServiceMonitor) are off by default"
        );
        let sa = one(&docs, "ServiceAccount");
        assert_eq!(
            sa["metadata"]["annotations"]["azure.workload.identity/client-id"],
            CLIENT_ID
        );
        let pod_labels = &one(&docs, "Deployment")["spec"]["template"]["metadata"]["labels"];
        assert_eq!(pod_labels["azure.workload.identity/use"], "true");
        assert_eq!(env_value(&docs, "SSW_LOG_FORMAT").as_deref(), Some("json"));
        assert_eq!(env_value(&docs, "SSW_LOG_LEVEL").as_deref(), Some("info"));
        assert_eq!(
            env_value(&docs, "SSW_CLOUD").as_deref(),
            Some("AzurePublic")
        );
        assert_eq!(
            env_value(&docs, "SSW_ALLOW_SECRET_CREDENTIALS").as_deref(),
            Some("true")
        );
        assert_eq!(
            env_value(&docs, "SSW_STATUS_HEARTBEAT").as_deref(),
            Some("5m")
        );
        assert_eq!(
            env_value(&docs, "SSW_MAX_CONCURRENT_FETCHES_PER_SUBSCRIPTION").as_deref(),
            Some("4")
        );
        assert_eq!(
            env_value(&docs, "SSW_AMBIENT_NAMESPACES").as_deref(),
            Some("scaleset-watch"),
            "{mode}: only the release namespace may use the controller's identity by default"
        );
        let env = env_of(&docs);
        for absent in [
            "AZURE_CLIENT_SECRET",
            "AZURE_CLIENT_ID",
            "SSW_NAMESPACE",
            "SSW_LABEL_SELECTOR",
            "SSW_CA_FILE",
            "SSW_AMBIENT_SUBSCRIPTIONS",
        ] {
            assert!(!env.contains_key(absent), "{mode}: unexpected env {absent}");
        }
        let cr = one(&docs, "ClusterRole");
        let mut got = rules(cr);
        got.sort();
        let expect = |g: &str, r: &str, v: &[&str]| {
            (
                g.to_owned(),
                r.to_owned(),
                v.iter().map(|s| s.to_string()).collect(),
            )
        };
        let mut want = vec![
            expect(
                "scalesetwatch.io",
                "scalesetwatches",
                &["get", "list", "watch"],
            ),
            expect(
                "scalesetwatch.io",
                "scalesetwatches/status",
                &["get", "patch", "update"],
            ),
            expect("events.k8s.io", "events", &["create", "patch"]),
            expect("", "events", &["create", "patch"]),
            expect("", "secrets", &["get"]),
        ];
        want.sort();
        assert_eq!(got, want, "{mode}: ClusterRole rules");
    }
    let docs = render("ssw", "scaleset-watch", &mode_values("workload-identity"));
    assert_eq!(
        one(&docs, "ServiceAccount")["metadata"]["annotations"]["azure.workload.identity/tenant-id"],
        "72f988bf-86f1-41af-91ab-2d7cd011db47"
    );
}

#[test]
fn renders_client_secret_mode() {
    let docs = render("ssw", "scaleset-watch", &mode_values("client-secret"));
    assert_common("client-secret", "ssw", "scaleset-watch", &docs);
    let env = env_of(&docs);
    for (var, key) in [
        ("AZURE_TENANT_ID", "AZURE_TENANT_ID"),
        ("AZURE_CLIENT_ID", "AZURE_CLIENT_ID"),
        ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_SECRET"),
    ] {
        assert_eq!(
            env[var]["valueFrom"]["secretKeyRef"],
            serde_json::json!({"name": "scaleset-watch-azure", "key": key}),
            "{var}"
        );
    }
    assert!(one(&docs, "ServiceAccount")["metadata"]["annotations"].is_null());
    let pod_labels = &one(&docs, "Deployment")["spec"]["template"]["metadata"]["labels"];
    assert!(pod_labels["azure.workload.identity/use"].is_null());
    // Default secret keys.
    let docs = render(
        "ssw",
        "scaleset-watch",
        &[
            "--set".into(),
            "azure.identity.mode=clientSecret".into(),
            "--set".into(),
            "azure.identity.existingSecret=sp".into(),
        ],
    );
    assert_eq!(
        env_of(&docs)["AZURE_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["key"],
        "clientSecret"
    );
    assert_eq!(
        env_of(&docs)["AZURE_TENANT_ID"]["valueFrom"]["secretKeyRef"]["key"],
        "tenantId"
    );
}

#[test]
fn renders_managed_identity_mode_with_ca_bundle() {
    let docs = render("ssw", "scaleset-watch", &mode_values("managed-identity"));
    assert_common("managed-identity", "ssw", "scaleset-watch", &docs);
    assert_eq!(
        env_value(&docs, "AZURE_CLIENT_ID").as_deref(),
        Some("0d9c5c0c-8c5e-4f4a-b3d2-6e2a1f0c9b77")
    );
    assert!(!env_of(&docs).contains_key("AZURE_CLIENT_SECRET"));
    assert_eq!(
        env_value(&docs, "SSW_CLOUD").as_deref(),
        Some("AzureUSGovernment")
    );
    assert_eq!(
        env_value(&docs, "SSW_CA_FILE").as_deref(),
        Some("/etc/scaleset-watch/ca/ca.crt")
    );
    let pod = &one(&docs, "Deployment")["spec"]["template"]["spec"];
    let vol = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "ca-bundle")
        .expect("ca-bundle volume");
    assert_eq!(vol["configMap"]["name"], "corporate-ca");
    assert_eq!(
        vol["configMap"]["items"],
        serde_json::json!([{"key": "bundle.pem", "path": "ca.crt"}])
    );
    let mount = container(&docs)["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "ca-bundle")
        .expect("ca-bundle mount")
        .clone();
    assert_eq!(mount["readOnly"], true);
    assert_eq!(mount["mountPath"], "/etc/scaleset-watch/ca");
    assert!(one(&docs, "Deployment")["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"].is_null());
    // System-assigned identity: no client ID at all.
    let docs = render(
        "ssw",
        "scaleset-watch",
        &["--set".into(), "azure.identity.mode=managed".into()],
    );
    assert!(!env_of(&docs).contains_key("AZURE_CLIENT_ID"));
}

#[test]
fn renders_watch_namespace_mode() {
    let docs = render("ssw", "scaleset-watch", &mode_values("watch-namespace"));
    assert_common("watch-namespace", "ssw", "scaleset-watch", &docs);
    let k = kinds(&docs);
    assert!(
        !k.iter().any(|k| k.starts_with("Cluster")),
        "watchNamespace must not create cluster-wide RBAC: {k:?}"
    );
    let role = docs
        .iter()
        .find(|d| d["kind"] == "Role" && d["metadata"]["name"] == "ssw-scaleset-watch")
        .expect("namespaced Role");
    assert_eq!(role["metadata"]["namespace"], "scaleset-watch-tenant");
    assert!(
        !rules(role).iter().any(|(_, r, _)| r == "secrets"),
        "secretCredentials.enabled=false"
    );
    let rb = docs
        .iter()
        .find(|d| d["kind"] == "RoleBinding" && d["metadata"]["name"] == "ssw-scaleset-watch")
        .expect("namespaced RoleBinding");
    assert_eq!(rb["metadata"]["namespace"], "scaleset-watch-tenant");
    assert_eq!(rb["roleRef"]["kind"], "Role");
    assert_eq!(
        rb["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": "ssw-scaleset-watch", "namespace": "scaleset-watch"}])
    );
    assert_eq!(
        env_value(&docs, "SSW_NAMESPACE").as_deref(),
        Some("scaleset-watch-tenant")
    );
    assert_eq!(
        env_value(&docs, "SSW_LABEL_SELECTOR").as_deref(),
        Some("team=infra")
    );
    assert_eq!(
        env_value(&docs, "SSW_AMBIENT_NAMESPACES").as_deref(),
        Some("scaleset-watch-tenant"),
        "the watched namespace, not the release namespace, may use the controller's identity"
    );
    assert_eq!(
        env_value(&docs, "SSW_ALLOW_SECRET_CREDENTIALS").as_deref(),
        Some("false")
    );
}

#[test]
fn renders_ambient_credential_controls_into_the_environment() {
    let with = |sets: &[&str]| {
        let mut values = mode_values("default");
        for set in sets {
            values.extend(["--set".to_owned(), (*set).to_owned()]);
        }
        render("ssw", "ops", &values)
    };
    let docs = with(&[
        "ambientCredentials.namespaces={team-a,team-b}",
        "ambientCredentials.subscriptions={00000000-0000-0000-0000-0000000000aa,00000000-0000-0000-0000-0000000000bb}",
    ]);
    assert_eq!(
        env_value(&docs, "SSW_AMBIENT_NAMESPACES").as_deref(),
        Some("team-a,team-b"),
        "an explicit list replaces the default"
    );
    assert_eq!(
        env_value(&docs, "SSW_AMBIENT_SUBSCRIPTIONS").as_deref(),
        Some("00000000-0000-0000-0000-0000000000aa,00000000-0000-0000-0000-0000000000bb")
    );
    let docs = with(&["ambientCredentials.namespaces={*}"]);
    assert_eq!(
        env_value(&docs, "SSW_AMBIENT_NAMESPACES").as_deref(),
        Some("*")
    );
    let docs = with(&["ambientCredentials.enabled=false"]);
    assert_eq!(
        env_value(&docs, "SSW_AMBIENT_NAMESPACES").as_deref(),
        Some(""),
        "disabled: no namespace may use the controller's identity"
    );
    let docs = with(&[]);
    assert_eq!(
        env_value(&docs, "SSW_AMBIENT_NAMESPACES").as_deref(),
        Some("ops"),
        "the release namespace"
    );
}

#[test]
fn renders_ha_mode_with_pdb_network_policy_and_service_monitor() {
    let docs = render("ssw", "scaleset-watch", &mode_values("ha"));
    assert_common("ha", "ssw", "scaleset-watch", &docs);
    assert_eq!(one(&docs, "Deployment")["spec"]["replicas"], 2);
    let pdb = one(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let np = one(&docs, "NetworkPolicy");
    assert_eq!(
        np["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    let ingress = np["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 1);
    assert_eq!(
        ingress[0]["ports"],
        serde_json::json!([{"port": "http", "protocol": "TCP"}])
    );
    assert!(
        ingress[0]["from"].as_array().is_some_and(|f| !f.is_empty()),
        "ingress must be restricted to a selector"
    );
    let egress_ports: Vec<i64> = np["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["port"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(egress_ports, [53, 53, 443, 6443, 443]);
    let sm = one(&docs, "ServiceMonitor");
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "http-metrics");
    assert_eq!(sm["metadata"]["labels"]["release"], "kube-prometheus-stack");
    // The per-watch series' own `namespace` label wins over the target's (no
    // `exported_namespace`).
    assert_eq!(sm["spec"]["endpoints"][0]["honorLabels"], true);
    let pr = one(&docs, "PrometheusRule");
    assert_eq!(pr["metadata"]["labels"]["release"], "kube-prometheus-stack");
    assert_eq!(
        env_value(&docs, "SSW_ARM_ENDPOINT").as_deref(),
        Some("https://management.chinacloudapi.cn/")
    );
    assert_eq!(
        env_value(&docs, "AZURE_AUTHORITY_HOST").as_deref(),
        Some("https://login.chinacloudapi.cn/")
    );
    assert_eq!(env_value(&docs, "SSW_LOG_FORMAT").as_deref(), Some("text"));
}

/// promtool, built (once, then cached; about 10 minutes) by `hack/control-plane.sh promtool`.
fn promtool() -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script = support::control_plane_script();
        // No timeout, as for the control plane's build: the first one is long.
        let status = Command::new(&script)
            .arg("promtool")
            .stdin(std::process::Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            status.success(),
            "{} promtool failed: {status}",
            script.display()
        );
    });
    let path = tools()
        .env
        .iter()
        .find(|(k, _)| k == "PROMTOOL_BIN")
        .map(|(_, v)| PathBuf::from(v))
        .expect("control-plane.sh env prints PROMTOOL_BIN");
    assert!(
        path.is_file(),
        "PROMTOOL_BIN {} does not exist",
        path.display()
    );
    path
}

#[test]
fn prometheus_rules_pass_promtool_check_and_unit_tests() {
    let mut values = mode_values("default");
    values.extend(
        [
            "metrics.prometheusRule.enabled=true",
            "metrics.prometheusRule.alertLabels.team=platform",
        ]
        .iter()
        .flat_map(|v| ["--set".to_owned(), (*v).to_owned()]),
    );
    let docs = render("ssw", "scaleset-watch", &values);
    let rule = one(&docs, "PrometheusRule");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    let alerts: Vec<&str> = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["alert"].as_str().expect("every rule is an alert"))
        .collect();
    assert_eq!(
        alerts,
        [
            "ScaleSetWatchUnhealthy",
            "ScaleSetWatchPollFailing",
            "ScaleSetWatchArmThrottled",
            "ScaleSetWatchArmSubscriptionReadsLow",
            "ScaleSetWatchArmScaleSetReadsLow",
            "ScaleSetWatchControllerAbsent",
        ]
    );
    // Every alert has a runbook entry in the chart README, where its runbook_url points.
    let readme = std::fs::read_to_string(chart_dir().join("README.md")).expect("chart README");
    for (alert, r) in alerts
        .iter()
        .zip(rule["spec"]["groups"][0]["rules"].as_array().unwrap())
    {
        assert!(
            readme.contains(&format!("\n#### {alert}\n")),
            "no runbook for {alert}"
        );
        let url = r["annotations"]["runbook_url"]
            .as_str()
            .expect("runbook_url");
        assert!(
            url.ends_with(&format!("README.md#{}", alert.to_lowercase())),
            "{url}"
        );
    }

    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("dir");
    let rules = serde_json::json!({"groups": rule["spec"]["groups"]});
    std::fs::write(
        dir.path().join("rules.yaml"),
        yaml_serde::to_string(&rules).expect("YAML"),
    )
    .expect("write rules");
    std::fs::copy(
        repo_root().join("tests/fixtures/prometheus-rules-test.yaml"),
        dir.path().join("rules-test.yaml"),
    )
    .expect("copy the unit tests");
    let promtool = |args: &[&str]| {
        let mut cmd = Command::new(promtool());
        cmd.args(args).current_dir(dir.path());
        run_command(cmd, None, support::COMMAND_TIMEOUT)
    };
    let out = promtool(&["check", "rules", "rules.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        describe("promtool check rules", &out)
    );
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("SUCCESS: 6 rules found"), "{text}");
    // promtool's linter finds nothing either (it exits 0 on findings unless told otherwise).
    let out = promtool(&["check", "rules", "--lint-fatal", "rules.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        describe("promtool check rules --lint-fatal", &out)
    );
    let out = promtool(&["test", "rules", "rules-test.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        describe("promtool test rules", &out)
    );
    assert!(
        stdout(&out).contains("SUCCESS"),
        "{}",
        describe("promtool test rules", &out)
    );
}

#[test]
fn prometheus_rule_is_off_by_default_and_its_values_are_checked() {
    let docs = render("ssw", "scaleset-watch", &mode_values("default"));
    assert!(!docs.iter().any(|d| d["kind"] == "PrometheusRule"));
    let chart = chart();
    for (args, message) in [
        (
            ["--set", "metrics.prometheusRule.unhealthy.for=15 minutes"],
            "at '/metrics/prometheusRule/unhealthy/for'",
        ),
        (
            [
                "--set",
                "metrics.prometheusRule.readBudgetLow.resourceReads=-1",
            ],
            "at '/metrics/prometheusRule/readBudgetLow/resourceReads'",
        ),
        (
            ["--set", "metrics.prometheusRule.job=a\"b"],
            "at '/metrics/prometheusRule/job'",
        ),
    ] {
        let mut all = vec![
            "template",
            "ssw",
            &chart,
            "--set",
            "azure.identity.clientId=5b5a2b8e-3f1c-4d7e-9a21-0c8f6b7d4e31",
        ];
        all.extend_from_slice(&args);
        let out = helm_local(&all);
        assert!(!out.status.success(), "{args:?} must be rejected");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
}

// ---------------------------------------------------------------------------------------
// Against the real API server
// ---------------------------------------------------------------------------------------

/// The shared cluster with the chart's CRD applied (once) and established.
fn cluster() -> &'static Cluster {
    static READY: OnceLock<()> = OnceLock::new();
    let cluster = Cluster::shared();
    READY.get_or_init(|| {
        let crd = repo_root()
            .join("crds/scalesetwatches.yaml")
            .display()
            .to_string();
        cluster.kubectl_ok(&["apply", "--server-side", "-f", &crd]);
        cluster.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            &format!("crd/{CRD_NAME}"),
            "--timeout=60s",
        ]);
    });
    cluster
}

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

// ---------------------------------------------------------------------------------------
// The harness itself (tests/support)
// ---------------------------------------------------------------------------------------

/// Decodes the (unverified) claims of a JWT.
fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT has a payload");
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut bytes = Vec::new();
    for c in payload.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => continue,
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            bytes.push((bits >> nbits) as u8);
        }
    }
    serde_json::from_slice(&bytes).expect("JWT payload is JSON")
}

#[test]
fn harness_parses_control_plane_exports() {
    let vars = support::parse_exports(
        "export A='x y' B='z'\nexport PATH='/opt/bin':\"$HOME\"\n# comment\nexport EMPTY=''\n",
    );
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(
        vars,
        [
            ("A".to_owned(), "x y".to_owned()),
            ("B".to_owned(), "z".to_owned()),
            ("PATH".to_owned(), format!("/opt/bin:{home}")),
            ("EMPTY".to_owned(), String::new()),
        ]
    );
    let name = unique_name("Some_Prefix.With.Dots");
    assert!(name.starts_with("some-prefix-with-dots-"), "{name}");
    assert_ne!(unique_name("x"), unique_name("x"));
    assert!(unique_name(&"a".repeat(100)).len() <= 63);
}

#[test]
fn harness_private_cluster_tokens_and_teardown() {
    let cluster = Cluster::start();
    let dir = cluster.dir().to_path_buf();
    let pids: Vec<u32> = ["etcd.pid", "kube-apiserver.pid"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(dir.join(f))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(cluster.api_url().starts_with("https://127.0.0.1:"));
    assert!(cluster.ca_file().is_file());
    let whoami = cluster.kubectl_ok(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(whoami, "ssw-admin");

    let ns = cluster.create_namespace("harness");
    cluster.create_service_account(&ns, "robot");
    let token = cluster.service_account_token(
        &ns,
        "robot",
        Some("api://AzureADTokenExchange"),
        Duration::from_secs(3600),
    );
    let claims = jwt_claims(&token);
    assert_eq!(
        claims["aud"],
        serde_json::json!(["api://AzureADTokenExchange"])
    );
    assert_eq!(
        claims["sub"],
        format!("system:serviceaccount:{ns}:robot").as_str()
    );
    assert_eq!(claims["iss"], cluster.api_url());
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 3600);

    let kc = cluster.service_account_kubeconfig(&ns, "robot", None);
    let out = cluster.kubectl_as(
        &kc,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(
        stdout(&out),
        format!("system:serviceaccount:{ns}:robot"),
        "{}",
        describe("whoami", &out)
    );
    let out = cluster.kubectl_as(&kc, &["get", "namespaces"]);
    assert!(
        stderr(&out).contains("Forbidden"),
        "{}",
        describe("get namespaces as robot", &out)
    );

    drop(cluster);
    let alive = |pid: &u32| Path::new(&format!("/proc/{pid}")).exists();
    assert!(
        wait_for(Duration::from_secs(10), || !pids.iter().any(alive)),
        "control plane still running"
    );
    assert!(
        wait_for(Duration::from_secs(10), || !dir.exists()),
        "{} not removed",
        dir.display()
    );
}

#[test]
fn readme_documents_every_value_and_the_crd_upgrade() {
    let readme = std::fs::read_to_string(chart_dir().join("README.md")).unwrap();
    let values: Value =
        yaml_serde::from_str(&std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap())
            .unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("values.schema.json")).unwrap(),
    )
    .unwrap();
    fn walk(path: &str, v: &Value, schema: &Value, readme: &str, missing: &mut Vec<String>) {
        if !path.is_empty() && readme.contains(&format!("`{path}`")) {
            return;
        }
        match v {
            Value::Object(map) if path.is_empty() || schema["additionalProperties"] == false => {
                for (k, child) in map {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(&p, child, &schema["properties"][k], readme, missing);
                }
            }
            _ => missing.push(path.to_owned()),
        }
    }
    let mut missing = Vec::new();
    walk("", &values, &schema, &readme, &mut missing);
    assert!(
        missing.is_empty(),
        "values missing from the README values table: {missing:?}"
    );
    for text in [
        "helm upgrade",
        "crds.enabled",
        "helm.sh/resource-policy: keep",
        "meta.helm.sh/release-name",
    ] {
        assert!(readme.contains(text), "the CRD section must mention {text}");
    }
}

#[test]
fn dockerfile_matches_the_chart() {
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let values: Value =
        yaml_serde::from_str(&std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap())
            .unwrap();
    let uid = values["securityContext"]["runAsUser"].as_i64().unwrap();
    assert_eq!(uid, 65532);
    assert!(
        dockerfile.contains(&format!("USER {uid}:{uid}")),
        "image must run as the chart's runAsUser"
    );
    assert!(dockerfile.contains(r#"ENTRYPOINT ["/scaleset-watch"]"#));
    assert!(dockerfile.contains(r#"CMD ["run"]"#));
    // One final stage for registry builds and the test bed's buildah builds: an empty base
    // (no registry here to pull one from), so the binary must be static.
    let final_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
    assert!(final_stage.starts_with("scratch\n"), "{final_stage}");
    assert!(dockerfile.contains("hack/build-static.sh"));
    let build = std::fs::read_to_string(repo_root().join("hack/build-static.sh")).unwrap();
    assert!(
        build.contains("unknown-linux-musl"),
        "static binary for an empty base"
    );
    let ignore = std::fs::read_to_string(repo_root().join(".dockerignore")).unwrap();
    for path in ["Cargo.toml", "Cargo.lock", "src/"] {
        assert!(
            ignore.contains(&format!("!{path}")),
            ".dockerignore must let {path} in"
        );
    }
}
