//! Armed faults and throttling: Retry-After windows, server errors, broken and
//! truncated bodies, hanging requests, enforced budgets and subscription-wide throttles.

use crate::common::*;

#[tokio::test]
async fn throttling_holds_until_retry_after_passes() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.list_url("workers", API);
    env.fault_workers(&["{throttle: {retryAfterSeconds: 30}, count: 1}"]);

    let resp = env.get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "30");
    let remaining = resp.headers()["x-ms-ratelimit-remaining-resource"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        remaining.contains("Microsoft.Compute/GetVMScaleSetVM3Min;0"),
        "{remaining}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "OperationNotAllowed");
    assert_eq!(
        body["error"]["message"],
        "The server rejected the request because too many requests have been received for this subscription."
    );
    assert_eq!(body["error"]["details"][0]["target"], "GetVMScaleSetVM3Min");

    // The fault fired once, but its Retry-After window still holds.
    let resp = env.get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 429);
    let again: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&again), "{again}");
    assert_eq!(
        env.sim.request_stats().scale_set(&env.workers()).throttled,
        2
    );

    // Other scale sets are not affected.
    assert_eq!(
        env.get(&env.list_url("web", API), Some(&token))
            .await
            .status(),
        200
    );
    env.sim.clear_faults(&env.workers()).unwrap();
    assert_eq!(env.get(&url, Some(&token)).await.status(), 200);
}

#[tokio::test]
async fn throttle_windows_expire() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.list_url("workers", API);
    env.fault_workers(&["{throttle: {retryAfterSeconds: 1}, count: 1}"]);
    assert_eq!(env.get(&url, Some(&token)).await.status(), 429);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(env.get(&url, Some(&token)).await.status(), 200);
}

#[tokio::test]
async fn server_errors_fire_for_their_count() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.list_url("workers", API);
    env.fault_workers(&[
        "{serverError: {status: 500}, count: 1}",
        "{serverError: {status: 503, retryAfterSeconds: 4}, count: 1}",
    ]);
    let (status, body) = env.get_json(&url, &token).await;
    assert_eq!((status, error_code(&body)), (500, "InternalServerError"));
    let resp = env.get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "4");
    assert_eq!(
        error_code(&resp.json::<Value>().await.unwrap()),
        "ServiceUnavailable"
    );
    assert_eq!(env.get(&url, Some(&token)).await.status(), 200);
    assert!(
        env.sim.state().faults(&env.workers()).unwrap().is_empty(),
        "spent faults are removed"
    );
    assert_eq!(env.sim.request_stats().scale_set(&env.workers()).faulted, 2);
}

#[tokio::test]
async fn faults_can_target_one_page() {
    let env = Env::start().await;
    let token = env.bearer().await;
    env.fault_workers(&["{serverError: {status: 500}, page: 2}"]);
    let (status, first) = env.get_json(&env.list_url("workers", API), &token).await;
    assert_eq!(status, 200);
    let next = first["nextLink"].as_str().unwrap();
    let (status, body) = env.get_json(next, &token).await;
    assert_eq!((status, error_code(&body)), (500, "InternalServerError"));
    // Unlimited count: page 2 keeps failing, page 1 keeps working.
    assert_eq!(env.get(next, Some(&token)).await.status(), 500);
    assert_eq!(
        env.get(&env.list_url("workers", API), Some(&token))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn broken_bodies_do_not_parse() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.list_url("workers", API);

    env.fault_workers(&["{malformedJson: {}, count: 1}"]);
    let resp = env.get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("{\"value\":["), "{}", &text[..40]);
    assert!(serde_json::from_str::<Value>(&text).is_err());

    env.fault_workers(&["{truncatedJson: {percent: 60}, count: 1}"]);
    let text = env.get(&url, Some(&token)).await.text().await.unwrap();
    assert!(text.starts_with("{\"value\":[{"));
    let err = serde_json::from_str::<Value>(&text).unwrap_err();
    assert!(err.is_eof(), "cut mid-body: {err}");

    env.fault_workers(&["{oversizedBody: {megabytes: 3}, count: 1}"]);
    let text = env.get(&url, Some(&token)).await.text().await.unwrap();
    assert!(text.len() > 3 * 1024 * 1024);
    let body: Value = serde_json::from_str(&text).expect("oversized but valid");
    assert_eq!(body["value"].as_array().unwrap().len(), 5);

    let (status, _) = env.get_json(&url, &token).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn timeouts_hang_past_the_client_deadline() {
    let env = Env::start().await;
    let token = env.bearer().await;
    env.fault_workers(&["{timeout: {seconds: 5}, count: 1}"]);
    let started = std::time::Instant::now();
    let err = env
        .http
        .get(env.list_url("workers", API))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("the request hangs");
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        env.sim
            .request_stats()
            .scale_set(&env.workers())
            .list_pages
            .count,
        1
    );
}

#[tokio::test]
async fn shutdown_is_not_held_up_by_hanging_requests() {
    let env = Env::start().await;
    let token = env.bearer().await;
    env.fault_workers(&["{timeout: {seconds: 120}}"]);
    let request = env
        .http
        .get(env.list_url("workers", API))
        .bearer_auth(&token)
        .send();
    let pending = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    env.sim.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    // The hanging request is answered (504) or cut; either way it ends.
    let _ = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("request ends");
}

#[tokio::test]
async fn enforced_budgets_throttle_eager_clients() {
    let yaml = format!(
        "rateLimits: {{enforce: true, scaleSetVm3Min: 3, subscriptionReads: 1000}}\n{}",
        scenario_yaml()
    );
    let env = Env::start_with(&yaml).await;
    let token = env.bearer().await;
    let url = env.list_url("web", API);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let resp = env.get(&url, Some(&token)).await;
        assert_eq!(resp.status(), 200);
        remaining.push(
            resp.headers()["x-ms-ratelimit-remaining-resource"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert!(
        remaining[2].starts_with("Microsoft.Compute/GetVMScaleSetVM3Min;0,"),
        "{remaining:?}"
    );
    let resp = env.get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=180).contains(&wait), "{wait}");

    let yaml = format!(
        "rateLimits: {{enforce: true, subscriptionReads: 2, subscriptionReadsPerSecond: 1}}\n{}",
        scenario_yaml()
    );
    let env = Env::start_with(&yaml).await;
    let token = env.bearer().await;
    let url = env.list_url("web", API);
    assert_eq!(env.get(&url, Some(&token)).await.status(), 200);
    assert_eq!(env.get(&url, Some(&token)).await.status(), 200);
    let (status, body) = env.get_json(&url, &token).await;
    assert_eq!(
        (status, error_code(&body)),
        (429, "SubscriptionRequestsThrottled")
    );
}

#[tokio::test]
async fn throttles_can_be_subscription_wide_and_say_anything() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.list_url("workers", API);
    env.fault_workers(&[
        "{throttle: {retryAfterSeconds: 30, scope: subscription}, count: 1}",
        "{throttle: {retryAfterSeconds: 18446744073709551615, retryAfterHeader: 'Fri, 31 Dec 9999 23:59:59 GMT'}, count: 1}",
    ]);
    let resp = env.get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "30");
    assert_eq!(
        resp.headers()["x-ms-ratelimit-remaining-subscription-reads"],
        "0"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "SubscriptionRequestsThrottled");
    // No window is kept for a subscription throttle: the next fault fires. A Retry-After
    // beyond any clock does not upset the simulator.
    let resp = env.get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(
        resp.headers()["retry-after"],
        "Fri, 31 Dec 9999 23:59:59 GMT"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "OperationNotAllowed");
    let resp = env.get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 429, "its window holds");
}
