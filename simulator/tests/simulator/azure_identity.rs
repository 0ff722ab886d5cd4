//! The `azure_identity` credentials the controller uses, against the simulator.

use crate::common::*;
use crate::workload_identity::service_account_jwt;

fn azure_options(sim: &SimulatorHandle) -> azure_core::http::ClientOptions {
    use std::sync::Arc;
    let mut cloud = azure_core::cloud::CustomConfiguration::default();
    cloud.authority_host = sim.base_url().to_owned();
    azure_core::http::ClientOptions {
        transport: Some(azure_core::http::Transport::new(Arc::new(http_client(
            sim.ca_pem(),
        )))),
        cloud: Some(Arc::new(azure_core::cloud::CloudConfiguration::Custom(
            cloud,
        ))),
        ..Default::default()
    }
}

#[tokio::test]
async fn azure_identity_credentials_work_against_the_simulator() {
    use azure_core::credentials::TokenCredential;
    use azure_identity::{
        ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
        WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
    };
    let env = Env::start().await;

    let credential = ClientSecretCredential::new(
        TENANT,
        CLIENT.to_owned(),
        SECRET.to_owned().into(),
        Some(ClientSecretCredentialOptions {
            client_options: azure_options(&env.sim),
        }),
    )
    .unwrap();
    let token = credential
        .get_token(&[ARM_SCOPE], None)
        .await
        .expect("client secret token");
    let resp = env
        .get(&env.list_url("workers", API), Some(token.token.secret()))
        .await;
    assert_eq!(resp.status(), 200);

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("azure-identity-token");
    std::fs::write(&token_file, service_account_jwt(json!({}))).unwrap();
    let credential = WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
        credential_options: ClientAssertionCredentialOptions {
            client_options: azure_options(&env.sim),
        },
        client_id: Some(CLIENT.to_owned()),
        tenant_id: Some(TENANT.to_owned()),
        token_file_path: Some(token_file),
    }))
    .unwrap();
    let token = credential
        .get_token(&[ARM_SCOPE], None)
        .await
        .expect("workload identity token");
    assert_eq!(
        env.get(&env.list_url("workers", API), Some(token.token.secret()))
            .await
            .status(),
        200
    );
}

/// azure_identity 1.0 deserializes `error_description` as a borrowed `&str`,
/// so Entra's CRLF trailer turns an AADSTS error into a JSON error that
/// still quotes the text; without line breaks it reports the HTTP error
/// with its AADSTS code.
#[tokio::test]
async fn azure_identity_sees_entra_errors() {
    use azure_core::credentials::TokenCredential;
    use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};

    for line_breaks in [true, false] {
        let yaml = format!(
            "tokens: {{errorDescriptionLineBreaks: {line_breaks}}}\n{}",
            scenario_yaml()
        );
        let env = Env::start_with(&yaml).await;
        let credential = ClientSecretCredential::new(
            TENANT,
            CLIENT.to_owned(),
            "wrong".to_owned().into(),
            Some(ClientSecretCredentialOptions {
                client_options: azure_options(&env.sim),
            }),
        )
        .unwrap();
        let err = credential
            .get_token(&[ARM_SCOPE], None)
            .await
            .expect_err("wrong secret");
        let text = format!("{err:?} {err}");
        assert!(
            text.contains("AADSTS7000215"),
            "line breaks {line_breaks}: {text}"
        );
        let http_error = std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<azure_core::Error>())
            .is_some_and(|e| {
                matches!(
                    e.kind(),
                    azure_core::error::ErrorKind::HttpResponse { error_code: Some(code), .. } if code == "7000215"
                )
            });
        // Pins azure_identity 1.0's behaviour: if this starts failing for
        // `line_breaks == true`, the crate learnt to read Entra's real
        // bodies and the controller can rely on the HTTP error kind.
        assert_eq!(http_error, !line_breaks, "line breaks {line_breaks}: {err}");
    }
}
