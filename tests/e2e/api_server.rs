//! What the API server accepts and gets written: invalid specs are refused, an unchanged status
//! is not rewritten, and a status never lands on another object of the same name.

use crate::support::controller::watch_yaml;
use crate::{OWN_CONTROLLER_LABEL, env, get, ready_watch};
use std::time::Duration;

#[test]
fn invalid_specs_are_refused_by_the_api_server_with_clear_messages() {
    let e = env();
    let ns = e.cluster.create_namespace("invalid");
    const UUID: &str = "00000000-0000-0000-0000-000000000000";
    // (the field that is wrong, the spec around it, what the API server must say)
    let cases: &[(&str, &str)] = &[
        (
            "subscriptionId: not-a-uuid\nresourceGroup: rg\nscaleSetName: web",
            "spec.subscriptionId",
        ),
        (
            "resourceGroup: rg.\nscaleSetName: web",
            "spec.resourceGroup",
        ),
        (
            "resourceGroup: \"\"\nscaleSetName: web",
            "spec.resourceGroup",
        ),
        ("resourceGroup: rg\nscaleSetName: -web", "spec.scaleSetName"),
        (
            "resourceGroup: rg\nscaleSetName: web\ninterval: 5s",
            "interval must be at least 10s",
        ),
        (
            "resourceGroup: rg\nscaleSetName: web\ninterval: often",
            "spec.interval",
        ),
        (
            "resourceGroup: rg\nscaleSetName: web\nhealth: {minHealthyPercent: 101}",
            "spec.health.minHealthyPercent",
        ),
        (
            "resourceGroup: rg\nscaleSetName: web\nhealth: {unknownAfterFailedIntervals: 0}",
            "spec.health.unknownAfterFailedIntervals",
        ),
        (
            "resourceGroup: rg\nscaleSetName: web\ncloud: AzureMars",
            "\"AzurePublic\", \"AzureChina\", \"AzureUSGovernment\"",
        ),
        (
            "resourceGroup: rg\nscaleSetName: web\nhealth: {expectedPowerStates: [sleeping]}",
            "spec.health.expectedPowerStates[0]",
        ),
        (
            "resourceGroup: rg\nscaleSetName: web\napiVersion: latest",
            "spec.apiVersion",
        ),
        ("resourceGroup: rg", "spec.scaleSetName: Required value"),
        (
            "resourceGroup: rg\nscaleSetName: web\ncredentials: {secretRef: {name: ../x}}",
            "spec.credentials.secretRef.name",
        ),
        (
            "resourceGroup: rg\nscaleSetName: web\ncredentials: {secretRef: {name: Azure_SP}}",
            "spec.credentials.secretRef.name",
        ),
    ];
    for (i, (spec, expected)) in cases.iter().enumerate() {
        let spec = if spec.starts_with("subscriptionId") {
            spec.to_string()
        } else {
            format!("subscriptionId: {UUID}\n{spec}")
        };
        let body: String = spec.lines().map(|l| format!("  {l}\n")).collect();
        let yaml = format!(
            "apiVersion: scalesetwatch.io/v1alpha1\nkind: ScaleSetWatch\nmetadata:\n  name: bad-{i}\n  namespace: {ns}\nspec:\n{body}"
        );
        let out = e.cluster.kubectl_stdin(&["apply", "-f", "-"], &yaml);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted:\n{yaml}");
        assert!(
            stderr.contains(expected),
            "case {i}: expected {expected:?} in:\n{stderr}\nfor:\n{yaml}"
        );
    }
    // The schema documents itself.
    let explained = e
        .cluster
        .kubectl_ok(&["explain", "scalesetwatch.spec.health"]);
    // kubectl wraps lines; compare with single spaces.
    let explained = explained.split_whitespace().collect::<Vec<_>>().join(" ");
    for words in [
        "minHealthyPercent",
        "at least this percentage of its instances is healthy",
        "expectedPowerStates",
        "requireVmAgent",
        "unknownAfterFailedIntervals",
        "never passes on old data",
        "appHealthGracePeriod",
        "default grace period of VMSS automatic instance repairs",
        "outdatedModel",
        "Ignore (not counted), Report (default",
    ] {
        assert!(
            explained.contains(words),
            "{words:?} missing from:\n{explained}"
        );
    }
    let listed = e
        .cluster
        .kubectl_ok(&["get", "ssw", "-n", &ns, "-o", "name"]);
    assert!(
        listed.trim().is_empty(),
        "nothing invalid was stored: {listed}"
    );
}

#[test]
fn a_steady_fleet_does_not_rewrite_its_status_every_poll() {
    let e = env();
    let (ns, r) = ready_watch("steady", "st", "steady");
    let version = get(&ns, "st")["metadata"]["resourceVersion"].clone();
    let before = e.sim.fetches(&r);
    std::thread::sleep(Duration::from_secs(25));
    assert!(e.sim.fetches(&r) - before >= 2, "it kept polling");
    let after = get(&ns, "st");
    assert_eq!(
        after["metadata"]["resourceVersion"], version,
        "status was rewritten without change"
    );
}

#[test]
fn a_status_computed_for_a_deleted_watch_never_lands_on_its_successor() {
    use kube::api::{Api, DeleteParams, PostParams};
    use scaleset_watch::api::{ScaleSetWatch, ScaleSetWatchStatus};
    use scaleset_watch::controller::reconcile::{StatusWrite, patch_status};

    let e = env();
    let ns = e.cluster.create_namespace("uid");
    // No controller reconciles it: only this test writes its status.
    let yaml = watch_yaml(
        &ns,
        "w",
        &[(OWN_CONTROLLER_LABEL, "none")],
        "rg-e2e",
        "steady",
        "",
    );
    e.cluster.kubectl_apply_stdin(&yaml);
    let status = |summary: &str| ScaleSetWatchStatus {
        summary: Some(summary.into()),
        observed_generation: Some(1),
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(e.cluster.kubeconfig()).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("config");
        let api: Api<ScaleSetWatch> =
            Api::namespaced(kube::Client::try_from(config).expect("client"), &ns);
        let old = api.get("w").await.expect("get");
        assert_eq!(
            patch_status(&api, &old, &status("first"))
                .await
                .expect("patch"),
            StatusWrite::Written
        );

        // Deleted and created again while a poll of the old one was running.
        api.delete("w", &DeleteParams::default())
            .await
            .expect("delete");
        let mut again = ScaleSetWatch::new("w", old.spec.clone());
        again.metadata.labels = old.metadata.labels.clone();
        let new = api
            .create(&PostParams::default(), &again)
            .await
            .expect("create");
        assert_ne!(new.metadata.uid, old.metadata.uid);

        assert_eq!(
            patch_status(&api, &old, &status("computed-for-the-old-object"))
                .await
                .expect("a replaced object is not an error"),
            StatusWrite::Gone
        );
        let stored = api.get("w").await.expect("get");
        assert!(stored.status.is_none(), "{:?}", stored.status);

        // The new object's own status is written, and replaces the whole status.
        let mut full = status("for-the-new-object");
        full.unhealthy_instances_omitted = 3;
        assert_eq!(
            patch_status(&api, &new, &full).await.expect("patch"),
            StatusWrite::Written
        );
        assert_eq!(
            patch_status(&api, &new, &status("for-the-new-object"))
                .await
                .expect("patch"),
            StatusWrite::Written
        );
        let stored = api.get("w").await.expect("get");
        assert_eq!(stored.status, Some(status("for-the-new-object")));

        // Deleted for good: dropped, not an error.
        api.delete("w", &DeleteParams::default())
            .await
            .expect("delete");
        assert_eq!(
            patch_status(&api, &new, &status("late"))
                .await
                .expect("no error"),
            StatusWrite::Gone
        );
    });
}
