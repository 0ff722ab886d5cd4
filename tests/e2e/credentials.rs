//! Credentials: a watch's own service principal in a Secret (missing, wrong, then right), and
//! who may use the controller's own identity.

use crate::support::assert_eventually;
use crate::support::controller::{Controller, condition, install_chart, watch_yaml};
use crate::{OWN_CONTROLLER_LABEL, env, events, support, wait_condition};
use std::time::Duration;

#[test]
fn secret_credentials_wrong_missing_and_right() {
    let e = env();
    let ns = e.cluster.create_namespace("secret");
    let spec = "  credentials:\n    secretRef:\n      name: azure-sp";
    e.cluster
        .kubectl_apply_stdin(&watch_yaml(&ns, "sp", &[], "rg-e2e", "secret", spec));
    let obj = wait_condition(
        &ns,
        "sp",
        "Ready",
        "False",
        Some("CredentialsNotFound"),
        Duration::from_secs(30),
    );
    assert!(
        condition(&obj, "Ready").expect("Ready")["message"]
            .as_str()
            .unwrap_or_default()
            .contains("azure-sp")
    );
    assert_eq!(
        condition(&obj, "Healthy").expect("Healthy")["status"],
        "Unknown"
    );

    let wrong = "this-is-the-wrong-secret";
    e.cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "azure-sp",
        "-n",
        &ns,
        "--from-literal=tenantId=0d3f2a1b-5c6e-4f70-8a9b-1c2d3e4f5a6b",
        "--from-literal=clientId=8e1b2c3d-4a5f-4b6c-9d7e-0f1a2b3c4d5e",
        &format!("--from-literal=clientSecret={wrong}"),
    ]);
    let obj = wait_condition(
        &ns,
        "sp",
        "Ready",
        "False",
        Some("AuthenticationFailed"),
        Duration::from_secs(60),
    );
    let dump = serde_json::to_string(&obj).expect("json");
    assert!(!dump.contains(wrong), "the secret leaked into the status");
    assert_eventually(Duration::from_secs(10), "a PollFailed event", || {
        events(&ns, "sp")
            .iter()
            .any(|ev| ev["reason"] == "PollFailed" && ev["type"] == "Warning")
    });
    let all_events = serde_json::to_string(&events(&ns, "sp")).expect("json");
    assert!(!all_events.contains(wrong), "the secret leaked into events");
    assert!(
        !e._controller.logs().contains(wrong),
        "the secret leaked into logs"
    );
    assert!(
        e._controller.get("/healthz").is_some(),
        "the controller is still up"
    );

    let patch = format!(
        r#"{{"stringData":{{"clientSecret":"{}"}}}}"#,
        support::controller::SECRET
    );
    e.cluster.kubectl_ok(&[
        "patch", "secret", "azure-sp", "-n", &ns, "--type", "merge", "-p", &patch,
    ]);
    let obj = wait_condition(
        &ns,
        "sp",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(90),
    );
    assert_eq!(obj["status"]["summary"], "2/2");
}

#[test]
fn the_controllers_own_identity_serves_only_the_namespaces_and_subscriptions_allowed() {
    const OTHER_SUB: &str = "00000000-0000-0000-0000-0000000000bb";
    let e = env();
    let allowed = e.cluster.create_namespace("ambient-ok");
    let denied = e.cluster.create_namespace("ambient-no");
    let (sa_ns, sa) = install_chart(e.cluster);
    let kubeconfig = e.cluster.service_account_kubeconfig(sa_ns, sa, None);
    let selector = format!("{OWN_CONTROLLER_LABEL}=ambient");
    let _controller = Controller::start(
        e.cluster,
        &kubeconfig,
        &e.sim,
        &[
            ("SSW_LABEL_SELECTOR", &selector),
            ("SSW_AMBIENT_NAMESPACES", &allowed),
            ("SSW_AMBIENT_SUBSCRIPTIONS", support::controller::SUB),
        ],
        &[],
    );
    let label = [(OWN_CONTROLLER_LABEL, "ambient")];
    let apply = |ns: &str, name: &str, scale_set: &str, extra: &str| {
        e.cluster
            .kubectl_apply_stdin(&watch_yaml(ns, name, &label, "rg-e2e", scale_set, extra));
    };
    apply(&denied, "w", "ambient-denied", "");
    apply(&allowed, "w", "ambient-allowed", "");
    let other_sub = watch_yaml(
        &allowed,
        "other-sub",
        &label,
        "rg-e2e",
        "ambient-allowed",
        "",
    )
    .replace(support::controller::SUB, OTHER_SUB);
    e.cluster.kubectl_apply_stdin(&other_sub);

    let obj = wait_condition(
        &denied,
        "w",
        "Ready",
        "False",
        Some("CredentialsNotAllowed"),
        Duration::from_secs(30),
    );
    let message = condition(&obj, "Ready").expect("Ready")["message"].to_string();
    assert!(
        message.contains(&format!("namespace {denied}")) && message.contains("spec.credentials"),
        "{message}"
    );
    assert_eq!(
        condition(&obj, "Healthy").expect("Healthy")["status"],
        "Unknown"
    );
    let obj = wait_condition(
        &allowed,
        "other-sub",
        "Ready",
        "False",
        Some("CredentialsNotAllowed"),
        Duration::from_secs(30),
    );
    assert!(
        condition(&obj, "Ready").expect("Ready")["message"]
            .to_string()
            .contains(OTHER_SUB)
    );
    wait_condition(
        &allowed,
        "w",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(30),
    );

    // A watch in the denied namespace that brings its own service principal is served.
    e.cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "own-sp",
        "-n",
        &denied,
        &format!("--from-literal=tenantId={}", support::controller::TENANT),
        &format!("--from-literal=clientId={}", support::controller::CLIENT),
        &format!(
            "--from-literal=clientSecret={}",
            support::controller::SECRET
        ),
    ]);
    apply(
        &denied,
        "own",
        "ambient-secret",
        "  credentials:\n    secretRef:\n      name: own-sp",
    );
    wait_condition(
        &denied,
        "own",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(30),
    );

    // Refused before any request: ARM never heard of the denied scale set or subscription.
    let stats = e.sim.stats();
    let denied_counters = stats.scale_set(&e.sim.scale_set("rg-e2e", "ambient-denied"));
    assert_eq!(denied_counters.list_pages.count, 0, "{denied_counters:?}");
    assert_eq!(denied_counters.first_pages, 0);
    assert!(
        !stats
            .recent
            .iter()
            .any(|r| r.path.contains("ambient-denied") || r.path.contains(OTHER_SUB)),
        "{:#?}",
        stats.recent
    );
}
