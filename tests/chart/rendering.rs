//! What `helm template` renders for every documented mode (helm only): the CRD, the
//! Deployment and its environment, RBAC, the optional objects, and the PrometheusRule, which
//! promtool checks and unit-tests.

use crate::support::{describe, repo_root, run_command, tools};
use crate::{CLIENT_ID, chart, chart_dir, helm_local, modes, render, stderr, stdout, support};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

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
