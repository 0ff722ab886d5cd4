//! The Helm chart (charts/scaleset-watch) against real helm, a real kube-apiserver and the
//! real kubectl: lint, schema, rendering of every documented mode, server-side dry-run of
//! every rendered manifest, install/upgrade/uninstall, and least-privilege RBAC checked with
//! a TokenRequest token of exactly the chart's ServiceAccount.
//!
//! One test binary (one control plane); one module per topic: `values`, `rendering`,
//! `install`, `rbac`, `harness` (tests/support itself) and `consistency` (the chart against
//! its README and the Dockerfile).

#[path = "../support/mod.rs"]
mod support;

mod consistency;
mod harness;
mod install;
mod rbac;
mod rendering;
mod values;

use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use support::{Cluster, describe, repo_root, run_command, tools};

const CLIENT_ID: &str = "5b5a2b8e-3f1c-4d7e-9a21-0c8f6b7d4e31";
const CRD_NAME: &str = "scalesetwatches.scalesetwatch.io";

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
