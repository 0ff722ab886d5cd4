//! The chart's values, with helm only: every `ci/*-values.yaml` is a tested mode, `helm lint
//! --strict` is clean, and wrong or missing values are refused with a clear message.

use crate::support::describe;
use crate::{CLIENT_ID, chart, chart_dir, helm_local, modes, stderr, stdout};

#[test]
fn every_ci_values_file_is_a_tested_mode() {
    let covered: Vec<String> = modes().into_iter().flat_map(|(_, v)| v).collect();
    for entry in std::fs::read_dir(chart_dir().join("ci")).unwrap() {
        let path = entry.unwrap().path().display().to_string();
        assert!(
            covered.contains(&path),
            "{path} is not exercised by tests/chart/main.rs modes()"
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
