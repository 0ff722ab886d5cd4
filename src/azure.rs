//! Azure clouds, the HTTP client shared by ARM and Entra ID calls, and token credentials.

use crate::crd::Cloud;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{
    AsyncRawResponse, ClientOptions, ExponentialRetryOptions, HttpClient, Request, RetryOptions,
    Transport,
};
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Where a cloud's ARM and Entra ID live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudEndpoints {
    pub arm: Url,
    pub authority: Url,
    /// The OAuth scope of an ARM token.
    pub scope: String,
}

/// Overrides that point the controller at a stand-in for Azure (the simulator).
#[derive(Clone, Debug, Default)]
pub struct EndpointOverrides {
    pub arm: Option<Url>,
    pub authority: Option<Url>,
}

impl EndpointOverrides {
    /// The overrides given on the command line, refused unless each is a plain https URL: the
    /// bearer token (ARM) or the client secret (authority) would otherwise travel in clear.
    pub fn new(arm: Option<Url>, authority: Option<Url>) -> Result<Self, AzureSetupError> {
        let flags = [
            ("--arm-endpoint (SSW_ARM_ENDPOINT)", &arm),
            ("--authority-host (AZURE_AUTHORITY_HOST)", &authority),
        ];
        for (flag, url) in flags {
            let Some(url) = url else { continue };
            if url.scheme() != "https" {
                return Err(AzureSetupError::InsecureEndpoint {
                    flag,
                    url: url.origin().ascii_serialization(),
                });
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(AzureSetupError::EndpointUserInfo { flag });
            }
        }
        Ok(Self { arm, authority })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AzureSetupError {
    #[error("cannot read CA bundle {path}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("CA bundle {path} holds no usable PEM certificate: {source}")]
    CaPem {
        path: String,
        source: reqwest::Error,
    },
    #[error("CA bundle {path} holds no PEM certificate")]
    CaEmpty { path: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("cannot set up Azure credentials: {0}")]
    Credential(azure_core::Error),
    #[error("{flag} must be an https:// URL, not {url}: tokens and secrets never travel in clear")]
    InsecureEndpoint { flag: &'static str, url: String },
    #[error("{flag} must not carry user info (user:password@)")]
    EndpointUserInfo { flag: &'static str },
}

pub fn endpoints(cloud: Cloud, overrides: &EndpointOverrides) -> CloudEndpoints {
    let (arm, authority, scope) = match cloud {
        Cloud::AzurePublic => (
            "https://management.azure.com/",
            "https://login.microsoftonline.com/",
            "https://management.core.windows.net/.default",
        ),
        Cloud::AzureChina => (
            "https://management.chinacloudapi.cn/",
            "https://login.chinacloudapi.cn/",
            "https://management.core.chinacloudapi.cn/.default",
        ),
        Cloud::AzureUSGovernment => (
            "https://management.usgovcloudapi.net/",
            "https://login.microsoftonline.us/",
            "https://management.core.usgovcloudapi.net/.default",
        ),
    };
    let parse = |s: &str| Url::parse(s).unwrap_or_else(|_| unreachable!("constant URL {s}"));
    CloudEndpoints {
        arm: overrides.arm.clone().unwrap_or_else(|| parse(arm)),
        authority: overrides
            .authority
            .clone()
            .unwrap_or_else(|| parse(authority)),
        scope: scope.to_owned(),
    }
}

/// The one HTTP client for ARM and Entra ID. It trusts the system roots plus an optional extra
/// CA bundle; there is deliberately no way to turn verification off. It follows no redirect:
/// a followed redirect would carry the client secret (a re-POSTed token request) or the bearer
/// token to wherever the answer points, or judge another host's page as the scale set.
pub fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, AzureSetupError> {
    // reqwest is built without a default crypto provider; kube already links ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("scaleset-watch/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| AzureSetupError::CaFile {
            path: path.display().to_string(),
            source,
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
            AzureSetupError::CaPem {
                path: path.display().to_string(),
                source,
            }
        })?;
        if certs.is_empty() {
            return Err(AzureSetupError::CaEmpty {
                path: path.display().to_string(),
            });
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(AzureSetupError::Client)
}

fn client_options(http: &reqwest::Client, authority: &Url) -> ClientOptions {
    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = authority.as_str().trim_end_matches('/').to_owned();
    ClientOptions {
        transport: Some(Transport::new(Arc::new(EntraTransport(http.clone())))),
        cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
        // The SDK's default retries a failing token request for a minute; the controller polls
        // again on its own schedule, so a few quick retries are enough.
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: azure_core::time::Duration::milliseconds(200),
            max_retries: 3,
            max_total_elapsed: azure_core::time::Duration::seconds(10),
            max_delay: azure_core::time::Duration::seconds(2),
        }),
        ..Default::default()
    }
}

/// The credentials' HTTP transport, which reads every answer of the sign-in service as hostile
/// before azure_identity sees it:
/// - a redirect is an error (the client never follows one, so the secret stays where it was
///   sent);
/// - a body is read up to [`MAX_TOKEN_ANSWER_BYTES`];
/// - `Retry-After` is dropped: the SDK's retry policy sleeps for whatever it says, so a
///   hostile value could hold a poll forever; the policy's own backoff is short and bounded;
/// - a success must carry a non-empty `access_token` and an `expires_in` (if any) within
///   [`MAX_TOKEN_LIFETIME_SECS`]: azure_identity 1.0 takes `{}` as a token (which would be
///   cached, and sent to ARM as an empty bearer) and adds `expires_in` to the clock unchecked,
///   which panics for an absurd value;
/// - azure_identity 1.0 reads Entra's error body with borrowed strings, and Entra ends the
///   lines of `error_description` with CRLF: such a body does not parse, and the error loses its
///   HTTP status and AADSTS text, so an outage of the sign-in service would read as a refused
///   secret. Error bodies are handed on with the line breaks in their strings turned into
///   spaces; an error body that is not JSON at all (a gateway's page) becomes an error that
///   keeps the status.
#[derive(Debug)]
struct EntraTransport(reqwest::Client);

/// A token answer is a few KiB; an error page not much more.
const MAX_TOKEN_ANSWER_BYTES: usize = 1 << 20;
/// Entra's tokens live at most a day; a week leaves room for any managed identity endpoint.
const MAX_TOKEN_LIFETIME_SECS: i64 = 7 * 24 * 3600;

fn sign_in_error(kind: azure_core::error::ErrorKind, message: String) -> azure_core::Error {
    azure_core::Error::with_message(kind, message)
}

#[async_trait::async_trait]
impl HttpClient for EntraTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        use azure_core::error::ErrorKind;
        let response = self.0.execute_request(request).await?;
        let (status, mut headers, body) = response.deconstruct();
        if status.is_redirection() {
            let to = headers
                .get_optional_str(&azure_core::http::headers::HeaderName::from_static(
                    "location",
                ))
                .and_then(|l| Url::parse(l).ok())
                .map(|l| format!(" to {}", l.origin().ascii_serialization()))
                .unwrap_or_default();
            return Err(sign_in_error(
                ErrorKind::HttpResponse {
                    status,
                    error_code: None,
                    raw_response: None,
                },
                format!(
                    "the sign-in service answered HTTP {status}, a redirect{to}; redirects are refused, so that the credentials are sent nowhere else"
                ),
            ));
        }
        let body = collect_capped(body, MAX_TOKEN_ANSWER_BYTES)
            .await?
            .ok_or_else(|| {
                sign_in_error(
                    ErrorKind::DataConversion,
                    format!(
                        "the sign-in service answered HTTP {status} with more than {} KiB",
                        MAX_TOKEN_ANSWER_BYTES >> 10
                    ),
                )
            })?;
        for name in ["retry-after", "retry-after-ms", "x-ms-retry-after-ms"] {
            headers.remove(azure_core::http::headers::HeaderName::from_static(name));
        }
        if status.is_success() {
            check_token_answer(&body)
                .map_err(|why| sign_in_error(ErrorKind::Credential, why.into()))?;
            return Ok(AsyncRawResponse::from_bytes(status, headers, body));
        }
        match unfold_line_breaks(&body) {
            Some(body) => Ok(AsyncRawResponse::from_bytes(status, headers, body)),
            None => Err(sign_in_error(
                ErrorKind::HttpResponse {
                    status,
                    error_code: None,
                    raw_response: None,
                },
                format!("the sign-in service answered HTTP {status} without a JSON body"),
            )),
        }
    }
}

/// The body, or `None` when it is longer than `max`.
async fn collect_capped(
    mut body: azure_core::http::AsyncResponseBody,
    max: usize,
) -> azure_core::Result<Option<Vec<u8>>> {
    use futures::StreamExt;
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if out.len().saturating_add(chunk.len()) > max {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}

/// Why a successful token answer cannot be used, if it cannot. (azure_identity would read `[]`
/// as well as `{}` as an empty token.)
fn check_token_answer(body: &[u8]) -> Result<(), &'static str> {
    let Ok(serde_json::Value::Object(answer)) = serde_json::from_slice(body) else {
        return Err("the sign-in service answered with something other than a JSON object");
    };
    match answer.get("access_token") {
        Some(serde_json::Value::String(t)) if !t.is_empty() => {}
        _ => return Err("the sign-in service answered without an access token"),
    }
    // Entra sends a number; managed identity endpoints send a string.
    let lifetime = match answer.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => return Ok(()),
    };
    if lifetime.is_some_and(|s| !(0..=MAX_TOKEN_LIFETIME_SECS).contains(&s)) {
        return Err("the sign-in service answered with a token lifetime (expires_in) out of range");
    }
    Ok(())
}

/// The JSON `body` with CR and LF in its strings replaced by spaces; `None` if it is not JSON.
fn unfold_line_breaks(body: &[u8]) -> Option<Vec<u8>> {
    fn unfold(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) if s.contains(['\r', '\n']) => {
                *s = s
                    .split(['\r', '\n'])
                    .filter(|line| !line.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(unfold),
            serde_json::Value::Object(fields) => fields.values_mut().for_each(unfold),
            _ => {}
        }
    }
    let mut json = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    unfold(&mut json);
    serde_json::to_vec(&json).ok()
}

/// A service principal's client secret, as read from a Secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientSecret {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecret")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

pub fn client_secret_credential(
    http: &reqwest::Client,
    authority: &Url,
    secret: &ClientSecret,
) -> Result<Arc<dyn TokenCredential>, AzureSetupError> {
    let cred = ClientSecretCredential::new(
        &secret.tenant_id,
        secret.client_id.clone(),
        Secret::new(secret.client_secret.clone()),
        Some(ClientSecretCredentialOptions {
            client_options: client_options(http, authority),
        }),
    )
    .map_err(AzureSetupError::Credential)?;
    Ok(cred)
}

/// The controller's own identity, chosen from its environment the way the AKS webhooks and
/// Azure SDKs expect: workload identity when a federated token file is mounted, a client
/// secret when one is in the environment, else managed identity.
pub fn ambient_credential(
    http: &reqwest::Client,
    authority: &Url,
) -> Result<Arc<dyn TokenCredential>, AzureSetupError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if env("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        let options = WorkloadIdentityCredentialOptions {
            credential_options: azure_identity::ClientAssertionCredentialOptions {
                client_options: client_options(http, authority),
            },
            ..Default::default()
        };
        return Ok(
            WorkloadIdentityCredential::new(Some(options)).map_err(AzureSetupError::Credential)?
        );
    }
    if let (Some(tenant_id), Some(client_id), Some(client_secret)) = (
        env("AZURE_TENANT_ID"),
        env("AZURE_CLIENT_ID"),
        env("AZURE_CLIENT_SECRET"),
    ) {
        return client_secret_credential(
            http,
            authority,
            &ClientSecret {
                tenant_id,
                client_id,
                client_secret,
            },
        );
    }
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: env("AZURE_CLIENT_ID").map(UserAssignedId::ClientId),
        client_options: client_options(http, authority),
    };
    Ok(ManagedIdentityCredential::new(Some(options)).map_err(AzureSetupError::Credential)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_error_bodies_lose_their_line_breaks_and_nothing_else() {
        // (A body that is not JSON is turned into an error by the transport.)
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Bad.\r\nTrace ID: t\r\n","error_codes":[7000215],"nested":["a\nb"]}"#;
        let unfolded: serde_json::Value =
            serde_json::from_slice(&unfold_line_breaks(body).expect("JSON")).expect("still JSON");
        assert_eq!(
            unfolded,
            serde_json::json!({
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Bad. Trace ID: t",
                "error_codes": [7000215],
                "nested": ["a b"]
            })
        );
        assert_eq!(unfold_line_breaks(b"<html>503</html>"), None);
    }

    #[test]
    fn each_cloud_has_its_own_arm_authority_and_scope() {
        let none = EndpointOverrides::default();
        let public = endpoints(Cloud::AzurePublic, &none);
        assert_eq!(public.arm.as_str(), "https://management.azure.com/");
        assert_eq!(
            public.authority.as_str(),
            "https://login.microsoftonline.com/"
        );
        assert_eq!(public.scope, "https://management.core.windows.net/.default");
        let china = endpoints(Cloud::AzureChina, &none);
        assert_eq!(china.arm.as_str(), "https://management.chinacloudapi.cn/");
        assert_eq!(china.authority.as_str(), "https://login.chinacloudapi.cn/");
        assert_eq!(
            china.scope,
            "https://management.core.chinacloudapi.cn/.default"
        );
        let gov = endpoints(Cloud::AzureUSGovernment, &none);
        assert_eq!(gov.arm.as_str(), "https://management.usgovcloudapi.net/");
        assert_eq!(gov.authority.as_str(), "https://login.microsoftonline.us/");
        assert_eq!(
            gov.scope,
            "https://management.core.usgovcloudapi.net/.default"
        );
    }

    #[test]
    fn overrides_replace_endpoints_but_keep_the_clouds_scope() {
        let sim = Url::parse("https://127.0.0.1:8443/").expect("url");
        let overrides = EndpointOverrides {
            arm: Some(sim.clone()),
            authority: Some(sim.clone()),
        };
        let china = endpoints(Cloud::AzureChina, &overrides);
        assert_eq!(china.arm, sim);
        assert_eq!(china.authority, sim);
        assert_eq!(
            china.scope,
            "https://management.core.chinacloudapi.cn/.default"
        );
    }

    #[test]
    fn a_missing_or_empty_ca_bundle_is_a_clear_error() {
        let err = http_client(Some(Path::new("/nonexistent/ca.pem"))).expect_err("missing file");
        assert!(
            err.to_string()
                .contains("cannot read CA bundle /nonexistent/ca.pem"),
            "{err}"
        );
        let dir = tempfile::tempdir().expect("dir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").expect("write");
        let err = http_client(Some(&empty)).expect_err("no certificate in it");
        assert!(err.to_string().contains("empty.pem"), "{err}");
    }

    #[test]
    fn only_https_endpoints_are_accepted() {
        let url = |s: &str| Some(Url::parse(s).expect("url"));
        assert!(
            EndpointOverrides::new(
                url("https://127.0.0.1:8443/"),
                url("https://login.example/")
            )
            .is_ok()
        );
        assert!(EndpointOverrides::new(None, None).is_ok());
        let err = EndpointOverrides::new(url("http://127.0.0.1:8443/"), None).expect_err("http");
        assert!(
            err.to_string()
                .starts_with("--arm-endpoint (SSW_ARM_ENDPOINT) must be an https:// URL, not http://127.0.0.1:8443"),
            "{err}"
        );
        let err = EndpointOverrides::new(None, url("http://login.example/")).expect_err("http");
        assert!(err.to_string().contains("--authority-host"), "{err}");
        let err = EndpointOverrides::new(url("https://u:hunter2@arm.example/"), None)
            .expect_err("user info");
        assert!(err.to_string().contains("user info"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = EndpointOverrides::new(url("http://u:hunter2@arm.example/"), None)
            .expect_err("http with user info");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn token_answers_without_a_usable_token_are_refused() {
        for bad in [
            &br#"{}"#[..],
            br#"[]"#,
            br#""token""#,
            br#"not json"#,
            br#"{"token_type":"Bearer","expires_in":3599,"access_token":""}"#,
            br#"{"token_type":"Bearer","expires_in":3599,"access_token":null}"#,
            br#"{"token_type":"Bearer","expires_in":9223372036854775807,"access_token":"t"}"#,
            br#"{"token_type":"Bearer","expires_in":-9223372036854775808,"access_token":"t"}"#,
            br#"{"access_token":"t","expires_in":"99999999999"}"#,
        ] {
            assert!(
                check_token_answer(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        for good in [
            &br#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"t"}"#[..],
            // Managed identity endpoints send strings.
            br#"{"access_token":"t","expires_in":"86399","expires_on":"1700000000","token_type":"Bearer","resource":"r"}"#,
            br#"{"access_token":"t"}"#,
        ] {
            assert_eq!(
                check_token_answer(good),
                Ok(()),
                "{}",
                String::from_utf8_lossy(good)
            );
        }
    }

    #[test]
    fn client_secret_debug_output_hides_the_secret() {
        let s = ClientSecret {
            tenant_id: "t".into(),
            client_id: "c".into(),
            client_secret: "hunter2".into(),
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
