//! Responses not to be trusted: malformed or oversized bodies, redirects, nextLinks with user
//! info, and endless pages are refused, and nothing reaches another host.

use crate::{Env, fast_limits, fault, poll, reason, simulator};
use scaleset_watch::azure::arm::client::Limits;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A plain-HTTP listener on loopback that counts the connections it is offered (and drops
/// them): where a request sent in clear would arrive.
async fn plain_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, connections)
}

#[tokio::test]
async fn bad_responses_are_invalid_not_fatal() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    for (yaml, expect) in [
        ("{malformedJson: {}}", "invalid JSON"),
        (
            "{truncatedJson: {percent: 50}}",
            "invalid JSON: unexpected end of input",
        ),
        (
            "{foreignNextLink: {host: evil.example.com}, page: 1}",
            "refusing to send the token",
        ),
        ("{nextLinkLoop: {exact: true}, page: 2}", "loops back"),
        ("{oversizedBody: {megabytes: 40}}", "larger than"),
    ] {
        env.sim
            .set_faults(&env.sim_ref("faulty"), vec![fault(yaml)])
            .expect("fault set");
        let err = poll(&poller, "faulty").await.expect_err(yaml);
        assert_eq!(reason(&err), "InvalidResponse", "{yaml}: {err}");
        assert!(err.to_string().contains(expect), "{yaml}: {err}");
    }
}

#[tokio::test]
async fn redirects_from_arm_are_refused_and_nothing_reaches_the_other_host() {
    // The other host serves the same fleet over TLS the client trusts: a redirect followed
    // there would be listed and judged as the scale set.
    let decoy = simulator().await;
    let env = Env::start_trusting(&[decoy.ca_pem()]).await;
    let (plain_port, plain_connections) = plain_listener().await;
    let poller = env.poller(fast_limits());
    let elsewhere = decoy.base_url().to_owned();
    let in_clear = format!("http://127.0.0.1:{plain_port}");
    let cases = [
        (301, &elsewhere, ""),
        (302, &elsewhere, ""),
        (307, &elsewhere, ""),
        (308, &elsewhere, ""),
        (301, &in_clear, ""),
        (308, &in_clear, ""),
        (307, &elsewhere, ", page: 2"),
    ];
    for (status, to, page) in cases {
        env.set_faults(
            "faulty",
            &[&format!(
                "{{redirect: {{status: {status}, to: '{to}'}}{page}}}"
            )],
        );
        let err = poll(&poller, "faulty").await.expect_err("redirected");
        assert_eq!(reason(&err), "InvalidResponse", "{status} {to}: {err}");
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
        "nothing reached the other host"
    );
    assert_eq!(
        plain_connections.load(Ordering::SeqCst),
        0,
        "nothing was sent in clear"
    );
    let redirected = env
        .sim
        .request_stats()
        .recent
        .iter()
        .filter(|r| (300..400).contains(&r.status))
        .count();
    assert_eq!(redirected, cases.len(), "one redirect answered per poll");
}

#[tokio::test]
async fn a_next_link_with_user_info_is_not_followed() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    env.set_faults(
        "faulty",
        &["{nextLinkUserinfo: {userinfo: 'admin:hunter2'}, page: 1}"],
    );
    let err = poll(&poller, "faulty").await.expect_err("refused");
    assert_eq!(reason(&err), "InvalidResponse", "{err}");
    assert!(err.to_string().contains("user info"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert_eq!(env.list_requests("faulty"), 1, "page 2 was never asked for");
}

#[tokio::test]
async fn a_server_minting_skiptokens_for_ever_is_stopped_at_the_page_bound() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    env.set_faults("faulty", &["{endlessPages: {}}"]);
    let err = poll(&poller, "faulty").await.expect_err("endless");
    assert_eq!(reason(&err), "InvalidResponse", "{err}");
    assert!(err.to_string().contains("more than 200 pages"), "{err}");
    assert_eq!(
        env.list_requests("faulty"),
        200,
        "stopped at the documented bound"
    );
}

#[tokio::test]
async fn bytes_per_listing_are_capped() {
    let env = Env::start().await;
    // Each of the 3 pages carries 2 MiB more: every page fits a page's cap, all three do not
    // fit 5 MiB.
    env.set_faults("faulty", &["{oversizedBody: {megabytes: 2}}"]);
    let capped = env.poller(Limits {
        max_page_bytes: 3 << 20,
        max_poll_bytes: 5 << 20,
        ..fast_limits()
    });
    let err = poll(&capped, "faulty").await.expect_err("too much in all");
    assert_eq!(reason(&err), "InvalidResponse", "{err}");
    assert!(
        err.to_string().contains("larger than 5 MiB in all"),
        "{err}"
    );
    assert_eq!(env.list_requests("faulty"), 3);
    let roomy = env.poller(Limits {
        max_page_bytes: 3 << 20,
        max_poll_bytes: 8 << 20,
        ..fast_limits()
    });
    let pages = poll(&roomy, "faulty").await.expect("fits");
    assert_eq!(pages.instances().len(), 5);
}
