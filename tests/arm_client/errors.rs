//! ARM's errors and the Ready reasons they map to: what is retried and what is not, a hanging
//! ARM, and a certificate that is not trusted.

use crate::{CLIENT, Env, OUTSIDER, fast_limits, fault, poll, poll_as, principal, reason, target};
use scaleset_watch::api::Cloud;
use scaleset_watch::azure;
use scaleset_watch::azure::arm::client::{ArmClient, Limits};
use scaleset_watch::azure::poller::Poller;
use std::time::Duration;

#[tokio::test]
async fn arm_errors_map_to_ready_reasons() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    let wrong_secret = poll_as(&poller, "workers", CLIENT, "wrong")
        .await
        .expect_err("wrong secret fails");
    assert_eq!(
        reason(&wrong_secret),
        "AuthenticationFailed",
        "{wrong_secret}"
    );
    assert!(
        !wrong_secret.to_string().contains("wrong"),
        "the secret must not leak: {wrong_secret}"
    );
    // Entra's own words, although its error_description has CRLF line breaks (as the
    // simulator's has, like Entra's) that azure_identity cannot read on its own.
    let message = wrong_secret.to_string();
    assert!(
        message.contains("AADSTS7000215: Invalid client secret provided.")
            && message.contains(" Trace ID: ")
            && !message.contains("invalid type"),
        "{message}"
    );

    let outsider = poll_as(&poller, "workers", OUTSIDER, "outsider")
        .await
        .expect_err("no access");
    assert_eq!(reason(&outsider), "Forbidden", "{outsider}");
    assert!(
        outsider.to_string().contains("AuthorizationFailed"),
        "{outsider}"
    );

    let missing = poll(&poller, "nope").await.expect_err("unknown scale set");
    assert_eq!(reason(&missing), "ScaleSetNotFound", "{missing}");
    assert!(
        missing.to_string().contains("ResourceNotFound"),
        "{missing}"
    );

    let mut bad_version = target("workers");
    bad_version.api_version = "1999-01-01".into();
    let bad = poller
        .fetch_once(
            Cloud::AzurePublic,
            &bad_version,
            &principal(CLIENT, "right"),
        )
        .await
        .expect_err("bad api-version");
    assert_eq!(reason(&bad), "InvalidRequest", "{bad}");
}

#[tokio::test]
async fn server_errors_are_retried_and_client_errors_are_not() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    env.sim
        .set_faults(
            &env.sim_ref("faulty"),
            vec![fault("{serverError: {status: 503}, count: 2}")],
        )
        .expect("fault set");
    let snapshot = poll(&poller, "faulty").await.expect("retries get through");
    assert_eq!(snapshot.instances().len(), 5);
    assert_eq!(env.list_requests("faulty"), 5, "2 failed + 3 pages");

    env.sim
        .set_faults(
            &env.sim_ref("faulty"),
            vec![fault("{serverError: {status: 500}}")],
        )
        .expect("fault set");
    let before = env.list_requests("faulty");
    let err = poll(&poller, "faulty").await.expect_err("persistent 500");
    assert_eq!(reason(&err), "AzureUnavailable");
    assert_eq!(
        env.list_requests("faulty") - before,
        u64::from(Limits::default().attempts)
    );

    // A 404 is final: one request, no retry.
    let sent = env.sim.request_stats().total;
    let _ = poll(&poller, "nope").await.expect_err("404");
    let tokens = 0; // the credential's token is cached, so only the list call is sent
    assert_eq!(env.sim.request_stats().total - sent, 1 + tokens);
}

#[tokio::test]
async fn a_hanging_arm_times_out_as_unavailable() {
    let env = Env::start().await;
    let limits = Limits {
        attempts: 2,
        request_timeout: Duration::from_millis(500),
        ..fast_limits()
    };
    let poller = env.poller(limits);
    env.sim
        .set_faults(
            &env.sim_ref("faulty"),
            vec![fault("{timeout: {seconds: 5}}")],
        )
        .expect("fault set");
    let err = poll(&poller, "faulty").await.expect_err("times out");
    assert_eq!(reason(&err), "AzureUnavailable", "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn untrusted_certificate_is_refused() {
    let env = Env::start().await;
    let http = azure::http_client(None).expect("client");
    let poller = Poller::new(
        ArmClient::new(http.clone(), fast_limits()),
        http,
        env.overrides.clone(),
    );
    let err = poll(&poller, "workers")
        .await
        .expect_err("self-signed CA is not trusted by default");
    // The token request fails first, in the transport: nothing was said of the credentials.
    assert_eq!(reason(&err), "AzureUnavailable", "{err}");
    assert!(err.to_string().contains("sign-in service"), "{err}");
    assert_eq!(env.list_requests("workers"), 0);
}
