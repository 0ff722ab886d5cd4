//! Throttling: Retry-After is honoured (for at most ten minutes), only what Azure throttles
//! waits, and the traffic and the remaining read budgets are observed for metrics.

use crate::{CLIENT, Env, PEER, SUB, fast_limits, fault, poll, poll_as, poll_in, reason};
use scaleset_watch::azure::arm::client::{ArmClient, Limits};
use scaleset_watch::azure::poller::Poller;
use std::time::Duration;

#[tokio::test]
async fn throttling_honours_retry_after_and_fails_fast_until_it_passes() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    // Short enough to wait out inside the call.
    env.sim
        .set_faults(
            &env.sim_ref("faulty"),
            vec![fault("{throttle: {retryAfterSeconds: 1}, count: 1}")],
        )
        .expect("fault set");
    let started = std::time::Instant::now();
    poll(&poller, "faulty")
        .await
        .expect("waits out a 1s throttle");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "did not wait for Retry-After"
    );

    // Too long to wait: the poll fails with the delay, and the next poll is not even sent.
    env.sim
        .set_faults(
            &env.sim_ref("faulty"),
            vec![fault("{throttle: {retryAfterSeconds: 30}}")],
        )
        .expect("fault set");
    let err = poll(&poller, "faulty").await.expect_err("throttled");
    assert_eq!(reason(&err), "Throttled");
    let after = err.retry_after().expect("retry-after known");
    assert!(
        after > Duration::from_secs(25) && after <= Duration::from_secs(30),
        "{after:?}"
    );
    let sent = env.list_requests("faulty");
    let again = poll(&poller, "faulty")
        .await
        .expect_err("the throttled scale set is gated");
    assert_eq!(reason(&again), "Throttled");
    assert_eq!(
        env.list_requests("faulty"),
        sent,
        "nothing sent while the gate is closed"
    );
    // Compute throttled that scale set's reads, not the whole subscription: others go on.
    poll(&poller, "workers")
        .await
        .expect("another scale set is not gated");
}

#[tokio::test]
async fn arm_traffic_is_observed_for_metrics() {
    use scaleset_watch::azure::arm::client::RequestObserver;
    use scaleset_watch::controller::metrics::Metrics;
    let env = Env::start().await;
    let metrics = std::sync::Arc::new(Metrics::default());
    let poller = Poller::new(
        ArmClient::new(env.http.clone(), fast_limits())
            .with_observer(metrics.clone() as std::sync::Arc<dyn RequestObserver>),
        env.http.clone(),
        env.overrides.clone(),
    );
    poll(&poller, "workers").await.expect("poll");
    env.sim
        .set_faults(
            &env.sim_ref("faulty"),
            vec![fault("{throttle: {retryAfterSeconds: 30}}")],
        )
        .expect("fault set");
    let _ = poll(&poller, "faulty").await.expect_err("throttled");
    let text = metrics.encode().expect("encodes");
    assert!(
        text.contains(r#"scaleset_watch_arm_requests_total{code="200"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"scaleset_watch_arm_requests_total{code="429"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("scaleset_watch_arm_throttled_total 1"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            r#"scaleset_watch_arm_remaining_subscription_reads{{subscription="{SUB}"}}"#
        )),
        "{text}"
    );
    // Compute's per-scale-set budgets (the simulator's defaults: 400 per 3 and 2500 per 30
    // minutes), less the list requests made for the scale set.
    let listed = env.list_requests("workers");
    assert_eq!(listed, 3);
    for (policy, budget) in [("GetVMScaleSetVM3Min", 400), ("GetVMScaleSetVM30Min", 2500)] {
        let line = format!(
            r#"scaleset_watch_arm_remaining_resource_reads{{subscription="{SUB}",resource_group="rg",scale_set="workers",policy="Microsoft.Compute/{policy}"}} {}"#,
            budget - listed
        );
        assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
    }
}

#[tokio::test]
async fn any_retry_after_is_survived_and_honoured_for_at_most_ten_minutes() {
    let env = Env::start().await;
    let ten_minutes = Duration::from_secs(600);
    assert_eq!(Limits::default().max_retry_after, ten_minutes);
    for header in [
        "18446744073709551615",
        "99999999999999999999999999",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "31536000",
    ] {
        // A fresh client: no gate left closed by the previous case.
        let poller = env.poller(fast_limits());
        env.set_faults(
            "faulty",
            &[&format!(
                "{{throttle: {{retryAfterSeconds: 31536000, retryAfterHeader: '{header}'}}}}"
            )],
        );
        let err = poll(&poller, "faulty").await.expect_err(header);
        assert_eq!(reason(&err), "Throttled", "{header}: {err}");
        assert_eq!(err.retry_after(), Some(ten_minutes), "{header}: {err}");
        let sent = env.list_requests("faulty");
        let again = poll(&poller, "faulty").await.expect_err("gated");
        assert!(
            again.to_string().contains("ThrottledLocally"),
            "{header}: {again}"
        );
        let left = again.retry_after().expect("known");
        assert!(
            left <= ten_minutes && left > Duration::from_secs(590),
            "{header}: {left:?}"
        );
        assert_eq!(env.list_requests("faulty"), sent, "{header}");
    }
}

#[tokio::test]
async fn a_throttle_stops_only_what_azure_throttles() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    // Compute throttles reads of one scale set: rg/faulty, not rg-b/faulty.
    env.set_faults("faulty", &["{throttle: {retryAfterSeconds: 30}}"]);
    let err = poll(&poller, "faulty").await.expect_err("throttled");
    assert!(err.to_string().contains("OperationNotAllowed"), "{err}");
    let pages = poll_in(&poller, "rg-b", "faulty", CLIENT, "right")
        .await
        .expect("a scale set of the same name in another resource group is not throttled");
    assert_eq!(pages.instances().len(), 3);
    assert_eq!(env.list_requests_in("rg-b", "faulty"), 2);

    // ARM throttles one principal's reads of the whole subscription, not another's.
    env.set_faults(
        "workers",
        &["{throttle: {retryAfterSeconds: 30, scope: subscription}, count: 1}"],
    );
    let err = poll(&poller, "workers").await.expect_err("throttled");
    assert!(
        err.to_string().contains("SubscriptionRequestsThrottled"),
        "{err}"
    );
    let sent = env.sim.request_stats().total;
    let gated = poll_in(&poller, "rg-b", "faulty", CLIENT, "right")
        .await
        .expect_err("the whole subscription is throttled for this principal");
    assert!(gated.to_string().contains("ThrottledLocally"), "{gated}");
    assert_eq!(env.sim.request_stats().total, sent, "nothing was sent");
    let pages = poll_as(&poller, "workers", PEER, "peer")
        .await
        .expect("another principal has a budget of its own");
    assert_eq!(pages.instances().len(), 12);
}
