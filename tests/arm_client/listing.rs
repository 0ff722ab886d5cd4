//! Listing and judging a scale set: every page, an instance counted once, Flexible sets through
//! their VMs, the model view, and one scheduled fetch shared by the watches of a scale set.

use crate::{CLIENT, Env, OUTSIDER, fast_limits, fault, poll, principal, reason, target};
use scaleset_watch::api::{Cloud, HealthPolicy};
use scaleset_watch::health::assess;
use std::time::Duration;

#[tokio::test]
async fn lists_every_page_and_judges_the_fleet() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    let snapshot = poll(&poller, "workers").await.expect("poll succeeds");
    assert_eq!(snapshot.instances().len(), 12);
    assert_eq!(
        env.list_requests("workers"),
        3,
        "12 instances at 5 a page are 3 pages"
    );
    let fleet = assess(&snapshot, &HealthPolicy::default());
    assert_eq!(fleet.counts.total, 12);
    assert_eq!(fleet.counts.healthy, 10);
    assert_eq!(fleet.counts.disks_failed, 1);
    assert_eq!(fleet.counts.deallocated, 1);
    let ids: Vec<&str> = fleet
        .unhealthy
        .iter()
        .map(|u| u.instance_id.as_str())
        .collect();
    assert_eq!(ids, vec!["3", "7"]);
    assert_eq!(
        fleet.unhealthy[0].reasons,
        vec!["disk os failed: disk gone".to_string()]
    );
}

#[tokio::test]
async fn an_instance_listed_on_two_pages_counts_once() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    // Every page repeats one instance: page 1 its own first, later pages the one before's last.
    env.sim
        .set_faults(
            &env.sim_ref("workers"),
            vec![fault("{duplicateInstance: {}}")],
        )
        .expect("fault set");
    let snapshot = poll(&poller, "workers").await.expect("poll succeeds");
    assert_eq!(snapshot.instances().len(), 12);
    let fleet = assess(&snapshot, &HealthPolicy::default());
    assert_eq!(fleet.counts.total, 12);
    assert_eq!(fleet.counts.healthy, 10);
    assert_eq!(fleet.counts.disks_failed, 1);
    assert_eq!(env.list_requests("workers"), 3);
}

#[tokio::test]
async fn watches_of_the_same_scale_set_share_its_scheduled_fetch() {
    use futures::StreamExt;
    use scaleset_watch::azure::poller::WatchId;
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    let mut triggers = poller.take_triggers().expect("triggers");
    // The CRD's shortest interval, so that the first fetch comes within 5s.
    let interval = Duration::from_secs(10);
    let creds = principal(CLIENT, "right");
    let watch = |name: &str| WatchId {
        namespace: "ns".into(),
        name: name.into(),
    };
    let (a, b, outsider) = (watch("a"), watch("b"), watch("outsider"));
    let (lower, upper) = (target("workers"), target("WORKERS"));
    assert!(
        poller
            .subscribe(&a, Cloud::AzurePublic, &lower, &creds, interval)
            .is_none()
    );
    assert!(
        poller
            .subscribe(&b, Cloud::AzurePublic, &upper, &creds, interval)
            .is_none()
    );
    // Other credentials never see a result fetched with someone else's.
    let theirs = principal(OUTSIDER, "outsider");
    assert!(
        poller
            .subscribe(&outsider, Cloud::AzurePublic, &lower, &theirs, interval)
            .is_none()
    );
    assert_eq!(poller.scheduled_sets(), 2, "one set per credentials");
    let mut told = Vec::new();
    while told.len() < 3 {
        let w = tokio::time::timeout(Duration::from_secs(20), triggers.next())
            .await
            .expect("each watch is told within its first interval")
            .expect("open");
        told.push(w.name);
    }
    told.sort();
    assert_eq!(told, ["a", "b", "outsider"]);
    assert_eq!(
        env.list_requests("workers"),
        3 + 1,
        "one fetch of 3 pages for both, one refused page for the outsider"
    );
    let ours = poller
        .subscribe(&a, Cloud::AzurePublic, &lower, &creds, interval)
        .expect("fetched");
    let snapshot = ours.result.expect("listed");
    assert_eq!(snapshot.instances().len(), 12);
    let seen_by_b = poller
        .subscribe(&b, Cloud::AzurePublic, &upper, &creds, interval)
        .expect("fetched");
    assert_eq!(seen_by_b.seq, ours.seq, "the same fetch");
    let refused = poller
        .subscribe(&outsider, Cloud::AzurePublic, &lower, &theirs, interval)
        .expect("fetched")
        .result
        .expect_err("the outsider has no access");
    assert_eq!(reason(&refused), "Forbidden");
    assert_eq!(
        env.list_requests("workers"),
        4,
        "reading a result fetches nothing"
    );
    poller.stop();
}

#[tokio::test]
async fn flexible_scale_sets_are_listed_through_their_vms() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    for api_version in ["2025-11-01", "2024-11-01"] {
        let mut flex = target("flex");
        flex.api_version = api_version.into();
        let snapshot = poller
            .fetch_once(Cloud::AzurePublic, &flex, &principal(CLIENT, "right"))
            .await
            .unwrap_or_else(|e| panic!("{api_version}: {e}"));
        assert_eq!(snapshot.instances().len(), 3, "{api_version}");
        let fleet = assess(&snapshot, &HealthPolicy::default());
        assert_eq!(
            fleet.counts.no_instance_view, 0,
            "{api_version}: instance views were fetched"
        );
        assert_eq!(fleet.counts.healthy, 2, "{api_version}");
        assert_eq!(
            fleet.orchestration_mode,
            scaleset_watch::api::OrchestrationMode::Flexible,
            "{api_version}"
        );
        assert_eq!(fleet.counts.vm_agent_not_ready, 1, "{api_version}");
        assert_eq!(
            fleet.unhealthy[0].instance_id, "flex_1",
            "{api_version}: the VM's name"
        );
    }
}

/// The same instance states in a Uniform and a Flexible set judge alike, from the model view
/// each lists (the Flexible one through its VMs); only what Flexible VMs do not have
/// (latestModelApplied, protection policies) differs. A watch without the model view gets a
/// fetch of its own, trimmed by `$select`.
#[tokio::test]
async fn uniform_and_flexible_twins_judge_alike_with_the_model_view() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    let mut judged = Vec::new();
    for vmss in ["twin-uniform", "twin-flex"] {
        let mut t = target(vmss);
        t.api_version = "2025-11-01".into();
        t.model_view = true;
        let snapshot = poller
            .fetch_once(Cloud::AzurePublic, &t, &principal(CLIENT, "right"))
            .await
            .unwrap_or_else(|e| panic!("{vmss}: {e}"));
        judged.push(assess(&snapshot, &HealthPolicy::default()));
    }
    let (uniform, flex) = (&judged[0], &judged[1]);
    let a = &uniform.counts.application_health;
    assert_eq!(
        (a.healthy, a.unhealthy, a.unknown, a.initializing),
        (3, 1, 1, 1),
        "the stopped VM still reports its last application health"
    );
    assert_eq!(a.not_reported, 0);
    // Unhealthy: the unhealthy app, the unknown one created long ago, the stopped VM; the
    // initializing one was created just now, within the grace period.
    assert_eq!(uniform.counts.unhealthy, 3);
    assert_eq!(uniform.counts.application_health_pending, 1);
    assert_eq!(uniform.counts.outdated_model, Some(1));
    assert_eq!(uniform.outdated, vec!["4"]);
    assert_eq!(uniform.counts.protected_from_scale_in, Some(1));
    let zones: Vec<(&str, u32)> = uniform
        .zones
        .iter()
        .map(|z| (z.zone.as_str(), z.total))
        .collect();
    assert_eq!(zones, vec![("1", 3), ("2", 3)]);

    let same = |f: &scaleset_watch::health::FleetHealth| {
        let c = &f.counts;
        (
            c.total,
            c.healthy,
            c.unhealthy,
            c.application_health.clone(),
            c.application_health_pending,
            f.zones.clone(),
            f.healthy_percent,
        )
    };
    assert_eq!(same(uniform), same(flex));
    use scaleset_watch::api::OrchestrationMode;
    assert_eq!(uniform.orchestration_mode, OrchestrationMode::Uniform);
    assert_eq!(flex.orchestration_mode, OrchestrationMode::Flexible);
    assert_eq!(
        flex.counts.outdated_model, None,
        "Flexible VMs have no scale set model"
    );
    assert_eq!(
        flex.counts.protected_from_scale_in, None,
        "nor protection policies: not 0, unknown"
    );

    // A watch of the same set without the model view cannot be served the full pages' fetch
    // (nor the other way round): the two are scheduled as two sets, and its fetch is trimmed.
    let mut full = target("twin-uniform");
    full.api_version = "2025-11-01".into();
    full.model_view = true;
    let mut trimmed = full.clone();
    trimmed.model_view = false;
    let watch = |name: &str| scaleset_watch::azure::poller::WatchId {
        namespace: "ns".into(),
        name: name.into(),
    };
    let creds = principal(CLIENT, "right");
    let interval = Duration::from_secs(600);
    poller.subscribe(&watch("full"), Cloud::AzurePublic, &full, &creds, interval);
    poller.subscribe(
        &watch("trimmed"),
        Cloud::AzurePublic,
        &trimmed,
        &creds,
        interval,
    );
    assert_eq!(poller.scheduled_sets(), 2, "one set per view");
    poller.stop();
    let before = env.list_requests("twin-uniform");
    let snapshot = poller
        .fetch_once(Cloud::AzurePublic, &trimmed, &creds)
        .await
        .expect("poll succeeds");
    assert_eq!(env.list_requests("twin-uniform"), before + 1);
    let f = assess(&snapshot, &HealthPolicy::default());
    assert_eq!(f.counts.outdated_model, None);
    assert!(f.zones.is_empty());
    assert_eq!(
        f.counts.application_health_pending, 2,
        "without timeCreated, unknown and initializing get no grace"
    );
}
