//! The Entra ID token endpoint: client secrets, Entra-shaped errors, sign-in outages, and
//! token faults (redirects, answers without a token).

use crate::common::*;

#[tokio::test]
async fn client_secret_yields_a_bearer_token() {
    let env = Env::start().await;
    let resp = env.secret_token(CLIENT, SECRET).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "JWT-shaped");
    let stats = env.sim.request_stats();
    assert_eq!(
        (
            stats.tokens.count,
            stats.tokens.issued,
            stats.tokens.rejected
        ),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn token_errors_look_like_entra() {
    let env = Env::start().await;
    let resp = env.secret_token(CLIENT, "wrong").await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([7000215]));
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with("AADSTS7000215: Invalid client secret provided."),
        "{description}"
    );
    assert!(
        description.contains("\r\nTrace ID: "),
        "Entra's CRLF trailer by default"
    );

    let resp = env
        .secret_token("cccccccc-0000-4000-8000-000000000009", SECRET)
        .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (body["error"].as_str(), body["error_codes"][0].as_u64()),
        (Some("unauthorized_client"), Some(700016))
    );

    let form = [
        ("client_id", CLIENT),
        ("client_secret", SECRET),
        ("grant_type", "client_credentials"),
        ("scope", ARM_SCOPE),
    ];
    let body: Value = env
        .token_response("unknown-tenant", &form)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["error_codes"][0], 90002);

    let mut graph = form;
    graph[3] = ("scope", "https://graph.microsoft.com/.default");
    let body: Value = env
        .token_response(TENANT, &graph)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (body["error"].as_str(), body["error_codes"][0].as_u64()),
        (Some("invalid_resource"), Some(500011))
    );

    let resp = env
        .token_response(
            TENANT,
            &[
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("scope", ARM_SCOPE),
            ],
        )
        .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error_codes"][0], 900144);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("'grant_type'")
    );

    let stats = env.sim.request_stats();
    assert_eq!((stats.tokens.issued, stats.tokens.rejected), (0, 5));
}

#[tokio::test]
async fn a_sign_in_outage_fails_every_token_request_until_it_ends() {
    let env = Env::start().await;
    let outage = env.url("/_sim/tokens/outage");
    for (body, status) in [("{status: 404}", 400), ("{}", 400), ("{status: 503}", 204)] {
        let resp = env.http.put(&outage).body(body).send().await.unwrap();
        assert_eq!(resp.status(), status, "{body}");
    }
    let resp = env.secret_token(CLIENT, SECRET).await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(body["error_codes"], json!([50000]));
    // A gateway in front of Entra answers with a page of its own.
    let resp = env
        .http
        .put(&outage)
        .body("{status: 502, body: html}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = env.secret_token(CLIENT, SECRET).await;
    assert_eq!(resp.status(), 502);
    assert!(resp.text().await.unwrap().starts_with("<html>"));
    assert_eq!(env.http.delete(&outage).send().await.unwrap().status(), 204);
    assert_eq!(env.secret_token(CLIENT, SECRET).await.status(), 200);

    let refused = Scenario::from_yaml(&format!(
        "tokens: {{outage: {{status: 302}}}}\n{}",
        scenario_yaml()
    ));
    assert!(
        refused
            .expect_err("302 is no outage")
            .to_string()
            .contains("tokens.outage.status must be 429 or 5xx"),
    );
}

#[tokio::test]
async fn the_token_endpoint_can_redirect_or_answer_without_a_token() {
    let env = Env::start().await;
    let client = no_redirects(env.sim.ca_pem());
    let fault_url = env.url("/_sim/tokens/fault");
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
            ("scope", ARM_SCOPE),
        ])
        .finish();
    let token_url = env.url(&format!("/{TENANT}/oauth2/v2.0/token"));
    let post = || {
        client
            .post(&token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.clone())
            .send()
    };

    let put = |body: &'static str| env.http.put(&fault_url).body(body).send();
    assert_eq!(
        put("{redirect: {status: 308, to: 'https://elsewhere.example:8443'}}")
            .await
            .unwrap()
            .status(),
        204
    );
    let resp = post().await.unwrap();
    assert_eq!(resp.status(), 308);
    assert_eq!(
        resp.headers()["location"],
        format!("https://elsewhere.example:8443/{TENANT}/oauth2/v2.0/token").as_str()
    );

    assert_eq!(put("{answer: {}}").await.unwrap().status(), 204);
    let resp = post().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({}));

    assert_eq!(
        put("{redirect: {status: 200, to: 'https://a.example'}}")
            .await
            .unwrap()
            .status(),
        400
    );
    let stats = env.sim.request_stats();
    assert_eq!(stats.tokens.count, 2);
    assert_eq!(
        stats.recent.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![308, 200]
    );
    assert_eq!(
        env.http.delete(&fault_url).send().await.unwrap().status(),
        204
    );
    assert_eq!(env.secret_token(CLIENT, SECRET).await.status(), 200);

    let from_scenario = Scenario::from_yaml(&format!(
        "tokens: {{fault: {{answer: {{access_token: ''}}}}}}\n{}",
        scenario_yaml()
    ))
    .expect("a token fault in the scenario");
    assert!(from_scenario.tokens.fault.is_some());
}
