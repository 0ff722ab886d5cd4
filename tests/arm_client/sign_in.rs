//! The sign-in service (the simulated Entra ID): an outage is `AzureUnavailable`, not a failed
//! authentication, however long it asks to wait; a redirect or an answer without a usable
//! token is refused, and ARM gets no request.

use crate::{CLIENT, Env, fast_limits, poll, poll_as, reason, simulator};
use scaleset_watch::azure::EndpointOverrides;
use scaleset_watch::azure::arm::client::ArmClient;
use scaleset_watch::azure::poller::Poller;
use ssw_simulator::{OutageBody, RedirectFault, TokenFaultKind, TokenOutage};
use std::time::Duration;

#[tokio::test]
async fn a_sign_in_outage_is_azure_unavailable_not_an_authentication_failure() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    for (status, body) in [
        (503, OutageBody::Entra),
        (429, OutageBody::Entra),
        (502, OutageBody::Html),
    ] {
        let outage = TokenOutage {
            status,
            body,
            retry_after: None,
        };
        env.sim.set_token_outage(Some(outage)).expect("outage set");
        let err = poll(&poller, "workers").await.expect_err("no token");
        assert_eq!(reason(&err), "AzureUnavailable", "{status} {body:?}: {err}");
        assert!(err.to_string().contains("sign-in service"), "{err}");
    }
    assert_eq!(
        env.list_requests("workers"),
        0,
        "no ARM call without a token"
    );

    // Nothing listens here: the sign-in service cannot be reached at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let unreachable = Poller::new(
        ArmClient::new(env.http.clone(), fast_limits()),
        env.http.clone(),
        EndpointOverrides {
            authority: Some(url::Url::parse(&format!("https://127.0.0.1:{port}")).expect("url")),
            ..env.overrides.clone()
        },
    );
    let err = poll(&unreachable, "workers").await.expect_err("no token");
    assert_eq!(reason(&err), "AzureUnavailable", "{err}");

    env.sim.set_token_outage(None).expect("outage over");
    poll(&poller, "workers").await.expect("signs in again");
    // A refused secret during all this is still the user's to fix.
    let wrong = poll_as(&poller, "workers", CLIENT, "wrong")
        .await
        .expect_err("wrong secret");
    assert_eq!(reason(&wrong), "AuthenticationFailed", "{wrong}");
}

#[tokio::test]
async fn a_redirecting_token_endpoint_never_gets_the_secret_again() {
    let decoy = simulator().await;
    let env = Env::start_trusting(&[decoy.ca_pem()]).await;
    let poller = env.poller(fast_limits());
    for status in [307, 308, 302] {
        env.sim
            .set_token_fault(Some(
                TokenFaultKind::Redirect(RedirectFault {
                    status,
                    to: decoy.base_url().to_owned(),
                })
                .into(),
            ))
            .expect("fault set");
        let err = poll(&poller, "workers").await.expect_err("no token");
        assert_eq!(reason(&err), "AuthenticationFailed", "{status}: {err}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("HTTP {status}"))
                && message.contains("redirects are refused"),
            "{message}"
        );
    }
    assert_eq!(
        decoy.request_stats().total,
        0,
        "the form with the client secret went nowhere else"
    );
    assert_eq!(env.sim.request_stats().tokens.count, 3, "one POST per poll");
    assert_eq!(
        env.list_requests("workers"),
        0,
        "no ARM call without a token"
    );
    env.sim.set_token_fault(None).expect("fault over");
    poll(&poller, "workers").await.expect("signs in again");
}

#[tokio::test]
async fn a_token_answer_without_a_usable_token_is_refused_before_arm() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    for answer in [
        serde_json::json!({}),
        serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "access_token": ""}),
        // azure_identity adds this to the clock unchecked.
        serde_json::json!({"token_type": "Bearer", "expires_in": i64::MAX, "access_token": "t"}),
    ] {
        env.sim
            .set_token_fault(Some(TokenFaultKind::Answer(answer.clone()).into()))
            .expect("fault set");
        let err = poll(&poller, "workers").await.expect_err("no usable token");
        assert_eq!(reason(&err), "AuthenticationFailed", "{answer}: {err}");
        assert!(
            err.to_string().contains("the sign-in service answered"),
            "{answer}: {err}"
        );
    }
    let stats = env.sim.request_stats();
    assert_eq!(stats.total, stats.tokens.count, "ARM saw no request at all");
    // Nothing unusable was cached: once the sign-in service behaves, polls work.
    env.sim.set_token_fault(None).expect("fault over");
    poll(&poller, "workers").await.expect("signs in again");
}

#[tokio::test]
async fn a_sign_in_outage_asking_to_wait_a_day_does_not_hold_the_poll() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    env.sim
        .set_token_outage(Some(TokenOutage {
            status: 503,
            body: OutageBody::Entra,
            retry_after: Some("86400".into()),
        }))
        .expect("outage set");
    // The SDK's retry policy would sleep for a day before its next attempt; the poll must
    // end with the outage, not hang (the bound only guards against that hang).
    let err = tokio::time::timeout(Duration::from_secs(120), poll(&poller, "workers"))
        .await
        .expect("the poll ends")
        .expect_err("no token");
    assert_eq!(reason(&err), "AzureUnavailable", "{err}");
    let tokens = env.sim.request_stats().tokens.count;
    assert!(
        (2..=4).contains(&tokens),
        "the SDK's few quick retries, no more: {tokens}"
    );
}
