//! Workload-identity assertions: service-account JWTs verified against JWKS
//! from the scenario, a file, or an API server.

use crate::common::*;

/// A service-account token as the kubelet would project it.
pub(crate) fn service_account_jwt(overrides: Value) -> String {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let mut claims = json!({
        "iss": ISSUER,
        "sub": SA_SUBJECT,
        "aud": ["api://AzureADTokenExchange"],
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    });
    for (k, v) in overrides.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("test-key".into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(SA_KEY_PEM.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

async fn assertion_token(env: &Env, assertion: &str) -> (u16, Value) {
    let resp = env
        .token_response(
            TENANT,
            &[
                ("client_assertion", assertion),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_id", CLIENT),
                ("grant_type", "client_credentials"),
                ("scope", ARM_SCOPE),
            ],
        )
        .await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn workload_identity_assertions_are_verified() {
    let env = Env::start().await;
    let (status, body) = assertion_token(&env, &service_account_jwt(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(
        env.get(&env.list_url("web", API), Some(token))
            .await
            .status(),
        200
    );

    let now = jsonwebtoken::get_current_timestamp() as i64;
    let cases = [
        (
            json!({"sub": "system:serviceaccount:default:other"}),
            700213,
        ),
        (json!({"aud": ["api://SomethingElse"]}), 700212),
        (json!({"iss": "https://issuer.example.com"}), 700211),
        (
            json!({"exp": now - 600, "iat": now - 4200, "nbf": now - 4200}),
            700024,
        ),
    ];
    for (overrides, code) in cases {
        let (status, body) = assertion_token(&env, &service_account_jwt(overrides.clone())).await;
        assert_eq!(status, 401, "{overrides}: {body}");
        assert_eq!(body["error"], "invalid_client");
        assert_eq!(body["error_codes"][0], code, "{overrides}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("No matching federated identity record found")
                || code == 700024
        );
    }

    // Same header and signature, another subject: the signature no longer fits.
    let good = service_account_jwt(json!({}));
    let parts: Vec<&str> = good.split('.').collect();
    let forged_claims = base64_url(&json!({"iss": ISSUER, "sub": SA_SUBJECT, "aud": "api://AzureADTokenExchange", "exp": now + 7200}).to_string());
    let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
    let (status, body) = assertion_token(&env, &forged).await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (401, Some(700027)),
        "{body}"
    );

    let (status, body) = assertion_token(&env, "not-a-jwt").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// A stand-in for the Kubernetes API server's `/openid/v1/jwks`: HTTPS with
/// its own CA, requiring a bearer token.
async fn serve_jwks(dir: &std::path::Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    use axum::http::HeaderMap;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use std::sync::Arc;

    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/openid/v1/jwks", listener.local_addr().unwrap());
    let router = axum::Router::new().route(
        "/openid/v1/jwks",
        axum::routing::get(|headers: HeaderMap| async move {
            if headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some("Bearer sa-reader")
            {
                (axum::http::StatusCode::OK, axum::Json(jwks()))
            } else {
                (
                    axum::http::StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"kind": "Status"})),
                )
            }
        }),
    );
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let service = hyper_util::service::TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                }
            });
        }
    });
    let ca_file = dir.join("apiserver-ca.crt");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let token_file = dir.join("reader-token");
    std::fs::write(&token_file, "sa-reader\n").unwrap();
    (url, ca_file, token_file)
}

#[tokio::test]
async fn jwks_can_come_from_an_api_server_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (url, ca_file, token_file) = serve_jwks(dir.path()).await;
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks().to_string()).unwrap();
    let yaml = scenario_yaml().replace(
        &format!("    jwks: {}\n", jwks()),
        &format!(
            "    jwksUrl: {url}\n    jwksCaFile: {}\n    jwksTokenFile: {}\n  - issuer: https://file-issuer.example.com\n    subject: {SA_SUBJECT}\n    tenantId: {TENANT}\n    clientId: {CLIENT}\n    jwksFile: {}\n",
            ca_file.display(),
            token_file.display(),
            jwks_file.display()
        ),
    );
    assert!(yaml.contains("jwksUrl"), "the replacement applied");
    let env = Env::start_with(&yaml).await;
    let (status, body) = assertion_token(&env, &service_account_jwt(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = assertion_token(
        &env,
        &service_account_jwt(json!({"iss": "https://file-issuer.example.com"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Without the reader token the API server refuses, and so does Entra.
    std::fs::write(&token_file, "wrong").unwrap();
    let (status, body) = assertion_token(&env, &service_account_jwt(json!({}))).await;
    assert_eq!(status, 401);
    assert!(
        body["error_description"].as_str().unwrap().contains("401"),
        "{body}"
    );
}
