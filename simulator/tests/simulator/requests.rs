//! How ARM requests are routed and refused: case-insensitive paths, 401 and 403, ARM
//! error codes for what is missing, api-version checks, and HTTP/1.1 beside HTTP/2.

use crate::common::*;

#[tokio::test]
async fn paths_and_names_are_case_insensitive() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.url(&format!(
        "/subscriptions/{SUB}/resourcegroups/RG-TEST/providers/microsoft.compute/virtualmachinescalesets/WEB/virtualmachines?$expand=instanceView&api-version={API}"
    ));
    let (status, body) = env.get_json(&url, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 3);
    assert_eq!(
        body["value"][0]["properties"]["instanceView"]["vmHealth"]["status"]["code"],
        "HealthState/healthy"
    );
    assert_eq!(body["value"][0]["zones"], json!(["1"]));
}

#[tokio::test]
async fn authentication_failures_are_401() {
    let env = Env::start().await;
    let url = env.list_url("workers", API);

    let resp = env.get(&url, None).await;
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer authorization_uri="),
        "{challenge}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "AuthenticationFailed");

    let resp = env.get(&url, Some("bogus")).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "InvalidAuthenticationToken");

    let token = env.bearer().await;
    assert_eq!(env.get(&url, Some(&token)).await.status(), 200);
    env.sim.expire_tokens();
    let (status, body) = env.get_json(&url, &token).await;
    assert_eq!(status, 401);
    assert_eq!(error_code(&body), "ExpiredAuthenticationToken");

    let token = env.bearer().await;
    let foreign = env.url(&format!(
        "/subscriptions/{FOREIGN_SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/workers/virtualMachines?api-version={API}"
    ));
    let (status, body) = env.get_json(&foreign, &token).await;
    assert_eq!(status, 401);
    assert_eq!(error_code(&body), "InvalidAuthenticationTokenTenant");
}

#[tokio::test]
async fn a_principal_without_the_subscription_gets_403() {
    let env = Env::start().await;
    let token = env.bearer_for(OUTSIDER, "other-secret").await;
    let (status, body) = env.get_json(&env.list_url("workers", API), &token).await;
    assert_eq!(status, 403);
    assert_eq!(error_code(&body), "AuthorizationFailed");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(OUTSIDER), "{message}");
    assert!(
        message.contains("'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read'"),
        "{message}"
    );
}

#[tokio::test]
async fn missing_things_are_404_with_arm_codes() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let base = |sub: &str, rg: &str, vmss: &str| {
        env.url(&format!(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{vmss}/virtualMachines?api-version={API}"
        ))
    };
    let (status, body) = env
        .get_json(
            &base("00000000-dead-4000-8000-000000000000", RG, "workers"),
            &token,
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, "SubscriptionNotFound"));
    let (status, body) = env.get_json(&base(SUB, "rg-nope", "workers"), &token).await;
    assert_eq!((status, error_code(&body)), (404, "ResourceGroupNotFound"));
    let (status, body) = env.get_json(&base(SUB, RG, "nope"), &token).await;
    assert_eq!((status, error_code(&body)), (404, "ResourceNotFound"));
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with(&format!("The Resource 'Microsoft.Compute/virtualMachineScaleSets/nope' under resource group '{RG}' was not found.")));
}

#[tokio::test]
async fn api_version_is_required_and_checked() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.list_url("workers", API);
    let without = url.replace(&format!("&api-version={API}"), "");
    let (status, body) = env.get_json(&without, &token).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "MissingApiVersionParameter")
    );
    let (status, body) = env.get_json(&url.replace(API, "2099-01-01"), &token).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "InvalidApiVersionParameter")
    );
    for v in [
        "2017-03-30",
        "2024-11-01",
        "2025-04-01",
        "2025-11-01",
        "2026-03-01",
    ] {
        assert_eq!(
            env.get(&url.replace(API, v), Some(&token)).await.status(),
            200,
            "{v}"
        );
    }
}

#[tokio::test]
async fn http2_and_http1_are_both_served() {
    let env = Env::start().await;
    let resp = env.http.get(env.url("/_sim/healthz")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http1 = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(env.sim.ca_pem().as_bytes()).unwrap()])
        .http1_only()
        .build()
        .unwrap();
    let resp = http1.get(env.url("/_sim/healthz")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    assert_eq!(resp.text().await.unwrap(), "ok");
    // The certificate names every loopback spelling.
    let localhost = env.sim.base_url().replace("127.0.0.1", "localhost");
    assert_eq!(
        http1
            .get(format!("{localhost}/_sim/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
