//! Azure clouds, the HTTP client shared by ARM and Entra ID calls, and token credentials.

use crate::crd::Cloud;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{
    AsyncRawResponse, ClientOptions, ExponentialRetryOptions, HttpClient, Request, RetryOptions,
    Transport,
};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientSecretCredential,
    ClientSecretCredentialOptions, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
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

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A client secret from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET`.
fn environment_secret() -> Option<ClientSecret> {
    Some(ClientSecret {
        tenant_id: env_var("AZURE_TENANT_ID")?,
        client_id: env_var("AZURE_CLIENT_ID")?,
        client_secret: env_var("AZURE_CLIENT_SECRET")?,
    })
}

/// Workload identity, when a federated token file is named (`AZURE_FEDERATED_TOKEN_FILE`).
fn workload_identity_credential(
    http: &reqwest::Client,
    authority: &Url,
) -> Option<Result<Arc<dyn TokenCredential>, AzureSetupError>> {
    env_var("AZURE_FEDERATED_TOKEN_FILE")?;
    let options = WorkloadIdentityCredentialOptions {
        credential_options: azure_identity::ClientAssertionCredentialOptions {
            client_options: client_options(http, authority),
        },
        ..Default::default()
    };
    Some(
        WorkloadIdentityCredential::new(Some(options))
            .map(|c| c as Arc<dyn TokenCredential>)
            .map_err(AzureSetupError::Credential),
    )
}

/// The controller's own identity, chosen from its environment the way the AKS webhooks and
/// Azure SDKs expect: workload identity when a federated token file is mounted, a client
/// secret when one is in the environment, else managed identity.
pub fn ambient_credential(
    http: &reqwest::Client,
    authority: &Url,
) -> Result<Arc<dyn TokenCredential>, AzureSetupError> {
    if let Some(credential) = workload_identity_credential(http, authority) {
        return credential;
    }
    if let Some(secret) = environment_secret() {
        return client_secret_credential(http, authority, &secret);
    }
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: env_var("AZURE_CLIENT_ID").map(UserAssignedId::ClientId),
        client_options: client_options(http, authority),
    };
    Ok(ManagedIdentityCredential::new(Some(options)).map_err(AzureSetupError::Credential)?)
}

/// The identity of a person at a terminal (`check`): a client secret in the environment, else
/// workload identity, else whoever is signed in to the Azure CLI (`az login`), as `az` users
/// expect. Managed identity is not tried: a laptop has none, and asking for it means waiting
/// for an endpoint that is not there (on an Azure VM, `az login --identity` serves it).
pub fn command_line_credential(
    http: &reqwest::Client,
    authority: &Url,
) -> Result<Arc<dyn TokenCredential>, AzureSetupError> {
    if let Some(secret) = environment_secret() {
        return client_secret_credential(http, authority, &secret);
    }
    if let Some(credential) = workload_identity_credential(http, authority) {
        return credential;
    }
    let cli = AzureCliCredential::new(Some(AzureCliCredentialOptions {
        executor: Some(Arc::new(BoundedProcess {
            timeout: AZ_TIMEOUT,
        })),
        ..Default::default()
    }))
    .map_err(AzureSetupError::Credential)?;
    Ok(Arc::new(CachedCliToken {
        cli,
        cached: tokio::sync::Mutex::new(None),
    }))
}

/// How long `az account get-access-token` may take: it answers from its cache in about a
/// second, and refreshing with Entra takes a few more.
const AZ_TIMEOUT: Duration = Duration::from_secs(60);
/// `az`'s JSON answer is a few KiB; its error text not much more.
const MAX_AZ_OUTPUT_BYTES: u64 = 1 << 20;

/// Runs `az` for azure_identity's CLI credential, bounded: no stdin (so it cannot wait for an
/// answer), at most [`MAX_AZ_OUTPUT_BYTES`] read from each of stdout and stderr, killed after
/// `timeout` (azure_identity's own runner waits and reads without limit).
#[derive(Debug)]
struct BoundedProcess {
    timeout: Duration,
}

#[async_trait::async_trait]
impl azure_identity::Executor for BoundedProcess {
    async fn run(
        &self,
        program: &std::ffi::OsStr,
        args: &[&std::ffi::OsStr],
    ) -> std::io::Result<std::process::Output> {
        use tokio::io::AsyncReadExt;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(std::io::Error::other("az's output is not piped"));
        };
        let read = |pipe: Box<dyn tokio::io::AsyncRead + Send + Unpin>| async move {
            let mut buf = Vec::new();
            pipe.take(MAX_AZ_OUTPUT_BYTES).read_to_end(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        let run = async {
            let (stdout, stderr, status) =
                tokio::join!(read(Box::new(stdout)), read(Box::new(stderr)), child.wait());
            Ok(std::process::Output {
                status: status?,
                stdout: stdout?,
                stderr: stderr?,
            })
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(output) => output,
            // Dropping the child kills it.
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("az did not answer within {} s", self.timeout.as_secs_f32()),
            )),
        }
    }
}

/// azure_identity's CLI credential runs `az` for every token; a listing asks for one per page.
/// This keeps the token until five minutes before it expires.
struct CachedCliToken {
    cli: Arc<AzureCliCredential>,
    cached: tokio::sync::Mutex<Option<(String, azure_core::credentials::AccessToken)>>,
}

impl std::fmt::Debug for CachedCliToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedCliToken").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenCredential for CachedCliToken {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        let key = scopes.join(" ");
        let mut cached = self.cached.lock().await;
        let fresh_until =
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::minutes(5);
        if let Some((scope, token)) = cached.as_ref()
            && *scope == key
            && token.expires_on > fresh_until
        {
            return Ok(token.clone());
        }
        let token = self.cli.get_token(scopes, options).await.map_err(|e| {
            azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                format!(
                    "{e} (with no AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE in the environment, check signs in as the Azure CLI's account: run az login)"
                ),
            )
        })?;
        *cached = Some((key, token.clone()));
        Ok(token)
    }
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

    #[tokio::test]
    async fn az_is_killed_when_it_hangs_and_its_output_is_capped() {
        use azure_identity::Executor;
        use std::ffi::OsStr;
        let run = |timeout: Duration, script: &'static str| async move {
            BoundedProcess { timeout }
                .run(
                    OsStr::new("/bin/sh"),
                    &[OsStr::new("-c"), OsStr::new(script)],
                )
                .await
        };
        let err = run(Duration::from_millis(200), "sleep 30")
            .await
            .expect_err("hangs");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().contains("az did not answer"), "{err}");
        // Reading stops at the cap; the writer then gets a broken pipe and ends.
        let out = run(
            Duration::from_secs(30),
            "head -c 3000000 /dev/zero; head -c 3000000 /dev/zero >&2; exit 3",
        )
        .await
        .expect("runs");
        assert_eq!(out.stdout.len() as u64, MAX_AZ_OUTPUT_BYTES);
        assert_eq!(out.stderr.len() as u64, MAX_AZ_OUTPUT_BYTES);
        assert!(!out.status.success());
        let out = run(Duration::from_secs(30), "read x; echo \"[$x]\"")
            .await
            .expect("runs");
        assert_eq!(
            out.stdout, b"[]\n",
            "stdin is empty: az cannot wait for an answer"
        );
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
