//! The ARM client: lists a scale set's VM instance views, page by page, within Azure's budget.

use super::model;
use super::snapshot::ScaleSetSnapshot;
use azure_core::credentials::TokenCredential;
use rand::RngExt;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use url::Url;

/// The scale set to list, and how.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScaleSetRef {
    pub subscription_id: String,
    pub resource_group: String,
    pub scale_set_name: String,
    pub api_version: String,
}

impl ScaleSetRef {
    /// The first page's URL under `arm`.
    pub fn list_url(&self, arm: &Url) -> Result<Url, ArmError> {
        let mut url = self.resource_url(
            arm,
            &[
                "virtualMachineScaleSets",
                &self.scale_set_name,
                "virtualMachines",
            ],
        )?;
        url.query_pairs_mut()
            .append_pair("$expand", "instanceView")
            .append_pair("$select", "instanceView")
            .append_pair("api-version", &self.api_version);
        Ok(url)
    }

    /// A Flexible scale set's VMs are ordinary VMs of the resource group: this lists those that
    /// belong to the set, with instance views, the way cloud-provider-azure does.
    pub fn flexible_list_url(&self, arm: &Url) -> Result<Url, ArmError> {
        let mut url = self.resource_url(arm, &["virtualMachines"])?;
        let scale_set_id = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachineScaleSets/{}",
            self.subscription_id, self.resource_group, self.scale_set_name
        );
        url.query_pairs_mut()
            .append_pair(
                "$filter",
                &format!("'virtualMachineScaleSet/id' eq '{scale_set_id}'"),
            )
            .append_pair("$expand", "instanceView")
            .append_pair("api-version", &self.api_version);
        Ok(url)
    }

    fn resource_url(&self, arm: &Url, tail: &[&str]) -> Result<Url, ArmError> {
        let mut url = arm.clone();
        {
            let mut segments = url.path_segments_mut().map_err(|()| {
                ArmError::InvalidResponse(format!("ARM endpoint {arm} cannot be a base URL"))
            })?;
            segments.pop_if_empty().extend([
                "subscriptions",
                &self.subscription_id,
                "resourceGroups",
                &self.resource_group,
                "providers",
                "Microsoft.Compute",
            ]);
            segments.extend(tail);
        }
        Ok(url)
    }
}

/// A refused credential is the user's to fix; a sign-in service that cannot be reached or
/// answers 5xx/429 is not, and saying "authentication failed" then sends on-call to the wrong
/// place. azure_identity wraps the transport's or Entra's error in its own.
fn token_error(e: azure_core::Error) -> ArmError {
    use azure_core::error::ErrorKind;
    let transient = |kind: &ErrorKind| match kind {
        ErrorKind::HttpResponse { status, .. } => {
            status.is_server_error() || u16::from(*status) == 429
        }
        ErrorKind::Connection | ErrorKind::Io => true,
        _ => false,
    };
    if transient(e.kind())
        || e.downcast_ref::<azure_core::Error>()
            .is_some_and(|inner| transient(inner.kind()))
    {
        ArmError::IdentityUnavailable(e.to_string())
    } else {
        ArmError::Authentication(e.to_string())
    }
}

/// Why a list call failed. Messages carry ARM's own words but never a token or secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArmError {
    #[error("could not get an Azure access token: {0}")]
    Authentication(String),
    /// The identity platform did not answer or failed, whatever the credentials.
    #[error("the Microsoft Entra sign-in service could not be reached or failed: {0}")]
    IdentityUnavailable(String),
    #[error("ARM answered HTTP {status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("throttled by ARM ({code}); next request allowed in {}s", retry_after.as_secs())]
    Throttled { retry_after: Duration, code: String },
    #[error("ARM did not answer: {0}")]
    Unavailable(String),
    #[error("invalid response from ARM: {0}")]
    InvalidResponse(String),
}

impl ArmError {
    /// The `Ready` condition reason for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Authentication(_) => "AuthenticationFailed",
            Self::Api { status: 401, .. } => "AuthenticationFailed",
            Self::Api { status: 403, .. } => "Forbidden",
            Self::Api { status: 404, .. } => "ScaleSetNotFound",
            Self::Api { status, .. } if *status >= 500 => "AzureUnavailable",
            Self::Api { .. } => "InvalidRequest",
            Self::Throttled { .. } => "Throttled",
            Self::Unavailable(_) | Self::IdentityUnavailable(_) => "AzureUnavailable",
            Self::InvalidResponse(_) => "InvalidResponse",
        }
    }

    /// When the same call may be sent again, if ARM said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Bounds on retries and on what a response may cost us.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Attempts per page for 5xx, timeouts and short throttles.
    pub attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A 429 asking for at most this long is waited out inside the call; a longer one ends it.
    pub max_inline_throttle_wait: Duration,
    /// Per request, from sending to the last byte of the body.
    pub request_timeout: Duration,
    pub max_page_bytes: usize,
    pub max_pages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            attempts: 4,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            max_inline_throttle_wait: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_page_bytes: 32 << 20,
            max_pages: 10_000,
        }
    }
}

/// Something that wants to know about every ARM request (metrics).
pub trait RequestObserver: Send + Sync {
    /// `status` is `None` when no response arrived.
    fn observe(&self, status: Option<u16>, elapsed: Duration);
    fn throttled(&self) {}
    /// ARM's `x-ms-ratelimit-remaining-subscription-reads` after a request.
    fn remaining_reads(&self, _subscription: &str, _remaining: u64) {}
    /// One entry of Compute's `x-ms-ratelimit-remaining-resource` after a request for `target`.
    fn remaining_resource_reads(&self, _target: &ScaleSetRef, _policy: &str, _remaining: u64) {}
}

/// `Microsoft.Compute/GetVMScaleSetVM3Min;399,Microsoft.Compute/GetVMScaleSetVM30Min;2499`:
/// Compute's budgets left per throttling policy. Entries that do not read so are skipped.
pub fn parse_remaining_resource(value: &str) -> impl Iterator<Item = (&str, u64)> {
    value.split(',').filter_map(|entry| {
        let (policy, count) = entry.trim().rsplit_once(';')?;
        Some((policy.trim(), count.trim().parse().ok()?)).filter(|(p, _)| !p.is_empty())
    })
}

type GateKey = (String, String, Option<String>);

pub struct ArmClient {
    http: reqwest::Client,
    limits: Limits,
    /// No request before this instant. After a 429 ARM throttles every early request again, so
    /// we fail fast locally instead (as cloud-provider-azure does). Keyed by ARM host and
    /// subscription, plus the scale set when Compute throttled that scale set's policy rather
    /// than ARM the whole subscription.
    throttled_until: Mutex<HashMap<GateKey, Instant>>,
    observer: Option<std::sync::Arc<dyn RequestObserver>>,
}

impl ArmClient {
    pub fn new(http: reqwest::Client, limits: Limits) -> Self {
        Self {
            http,
            limits,
            throttled_until: Mutex::default(),
            observer: None,
        }
    }

    pub fn with_observer(mut self, observer: std::sync::Arc<dyn RequestObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Lists every VM of the scale set with its instance view, following every nextLink.
    pub async fn list_instance_views(
        &self,
        arm: &Url,
        target: &ScaleSetRef,
        credential: &dyn TokenCredential,
        scope: &str,
    ) -> Result<ScaleSetSnapshot, ArmError> {
        self.list_pages(arm, target, target.list_url(arm)?, credential, scope)
            .await
    }

    /// The same for a Flexible scale set, whose own VM list carries no instance views.
    pub async fn list_flexible_instance_views(
        &self,
        arm: &Url,
        target: &ScaleSetRef,
        credential: &dyn TokenCredential,
        scope: &str,
    ) -> Result<ScaleSetSnapshot, ArmError> {
        self.list_pages(
            arm,
            target,
            target.flexible_list_url(arm)?,
            credential,
            scope,
        )
        .await
    }

    async fn list_pages(
        &self,
        arm: &Url,
        target: &ScaleSetRef,
        first: Url,
        credential: &dyn TokenCredential,
        scope: &str,
    ) -> Result<ScaleSetSnapshot, ArmError> {
        let gate_key = (
            arm.host_str().unwrap_or("").to_ascii_lowercase(),
            target.subscription_id.to_ascii_lowercase(),
            Some(target.scale_set_name.to_ascii_lowercase()),
        );
        let mut url = first;
        let mut seen = HashSet::new();
        let mut instances = Vec::new();
        loop {
            if !seen.insert(url.to_string()) {
                return Err(ArmError::InvalidResponse(format!(
                    "nextLink loops back to a page already read ({})",
                    redact_query(&url)
                )));
            }
            if seen.len() > self.limits.max_pages {
                return Err(ArmError::InvalidResponse(format!(
                    "more than {} pages",
                    self.limits.max_pages
                )));
            }
            let body = self
                .get_page(&url, &gate_key, target, credential, scope)
                .await?;
            // Parsed once, as it arrives, into the compact instances; the body is dropped here.
            let page = model::parse_page(&body).map_err(|e| {
                ArmError::InvalidResponse(format!("page is not a list response: {e}"))
            })?;
            drop(body);
            instances.extend(page.instances);
            let link = page
                .next_link
                .filter(|l| !l.is_empty())
                .map(|l| validate_next_link(arm, &l))
                .transpose()?;
            match link {
                Some(next) => url = next,
                None => return Ok(ScaleSetSnapshot::new(instances)),
            }
        }
    }

    async fn get_page(
        &self,
        url: &Url,
        gate_key: &GateKey,
        target: &ScaleSetRef,
        credential: &dyn TokenCredential,
        scope: &str,
    ) -> Result<Vec<u8>, ArmError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(wait) = self.throttle_remaining(gate_key) {
                return Err(ArmError::Throttled {
                    retry_after: wait,
                    code: "ThrottledLocally".into(),
                });
            }
            let token = credential
                .get_token(&[scope], None)
                .await
                .map_err(token_error)?;
            let started = Instant::now();
            let sent = self
                .http
                .get(url.clone())
                .bearer_auth(token.token.secret())
                .header("accept", "application/json")
                .timeout(self.limits.request_timeout)
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    self.observe(None, started.elapsed());
                    let err = ArmError::Unavailable(describe_transport_error(&e));
                    if attempt < self.limits.attempts {
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            if let Some(o) = &self.observer {
                let headers = response.headers();
                if let Some(remaining) = headers
                    .get("x-ms-ratelimit-remaining-subscription-reads")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                {
                    o.remaining_reads(&gate_key.1, remaining);
                }
                for value in headers.get_all("x-ms-ratelimit-remaining-resource") {
                    for (policy, remaining) in
                        parse_remaining_resource(value.to_str().unwrap_or(""))
                    {
                        o.remaining_resource_reads(target, policy, remaining);
                    }
                }
            }
            if status == 200 {
                let body = read_capped(response, self.limits.max_page_bytes).await;
                self.observe(Some(status), started.elapsed());
                match body {
                    Ok(b) => return Ok(b),
                    Err(ReadError::TooLarge) => {
                        return Err(ArmError::InvalidResponse(format!(
                            "page larger than {} MiB",
                            self.limits.max_page_bytes >> 20
                        )));
                    }
                    Err(ReadError::Transport(e)) if attempt < self.limits.attempts => {
                        tracing::debug!(error = %e, "reading a page failed; retrying");
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    Err(ReadError::Transport(e)) => return Err(ArmError::Unavailable(e)),
                }
            }
            let body = read_capped(response, 64 << 10).await.unwrap_or_default();
            self.observe(Some(status), started.elapsed());
            let (code, message) = parse_error_body(&body);
            if status == 429 {
                if let Some(o) = &self.observer {
                    o.throttled();
                }
                // Without Retry-After ARM's own guidance is to wait; a minute is conservative.
                let wait = retry_after.unwrap_or(Duration::from_secs(60));
                if wait <= self.limits.max_inline_throttle_wait && attempt < self.limits.attempts {
                    tokio::time::sleep(wait).await;
                    continue;
                }
                // ARM's own subscription-wide throttling stops every read of the subscription;
                // Compute's policies are counted per scale set operation.
                let subscription_wide = code
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case("SubscriptionRequestsThrottled"));
                let key = if subscription_wide {
                    (gate_key.0.clone(), gate_key.1.clone(), None)
                } else {
                    gate_key.clone()
                };
                self.close_gate(&key, wait);
                return Err(ArmError::Throttled {
                    retry_after: wait,
                    code: code.unwrap_or_else(|| "TooManyRequests".into()),
                });
            }
            let err = ArmError::Api {
                status,
                code: code.unwrap_or_else(|| format!("HTTP{status}")),
                message: message.unwrap_or_else(|| "(no message)".into()),
            };
            if status >= 500 && attempt < self.limits.attempts {
                let wait = retry_after.unwrap_or_else(|| self.backoff(attempt));
                tokio::time::sleep(wait.min(self.limits.backoff_max)).await;
                continue;
            }
            return Err(err);
        }
    }

    fn observe(&self, status: Option<u16>, elapsed: Duration) {
        if let Some(o) = &self.observer {
            o.observe(status, elapsed);
        }
    }

    /// Exponential backoff with full jitter over the upper half, so that retries of several
    /// controllers do not arrive together.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .limits
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.limits.backoff_max);
        exp.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    fn throttle_remaining(&self, key: &GateKey) -> Option<Duration> {
        let gates = self
            .throttled_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let subscription = (key.0.clone(), key.1.clone(), None);
        [key, &subscription]
            .into_iter()
            .filter_map(|k| gates.get(k))
            .filter_map(|until| until.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
            .max()
    }

    fn close_gate(&self, key: &GateKey, wait: Duration) {
        let mut gates = self
            .throttled_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let until = Instant::now() + wait;
        let entry = gates.entry(key.clone()).or_insert(until);
        *entry = (*entry).max(until);
    }
}

enum ReadError {
    TooLarge,
    Transport(String),
}

async fn read_capped(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, ReadError> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(ReadError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(ReadError::Transport(describe_transport_error(&e))),
        }
    }
}

fn describe_transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // reqwest's Display names the URL (no credentials in it); the source says what went wrong.
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    format!("{kind}: {detail}")
}

/// ARM's error body: `{"error":{"code":"...","message":"..."}}`. Anything else yields `None`s.
pub fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(Deserialize)]
    struct Envelope {
        error: Option<Inner>,
    }
    #[derive(Deserialize)]
    struct Inner {
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { error: Some(inner) }) => (inner.code, inner.message),
        _ => (None, None),
    }
}

/// `Retry-After` as delta-seconds or an HTTP date, relative to `now`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A nextLink must stay on the ARM endpoint's scheme, host and port: the bearer token goes
/// with it, and must never be sent anywhere else.
pub fn validate_next_link(arm: &Url, next: &str) -> Result<Url, ArmError> {
    let url = arm
        .join(next)
        .map_err(|e| ArmError::InvalidResponse(format!("nextLink is not a URL: {e}")))?;
    let same_origin = url.scheme() == arm.scheme()
        && url.host_str().map(str::to_ascii_lowercase)
            == arm.host_str().map(str::to_ascii_lowercase)
        && url.port_or_known_default() == arm.port_or_known_default();
    if !same_origin {
        return Err(ArmError::InvalidResponse(format!(
            "nextLink points to {}://{}, not to the ARM endpoint {}; refusing to send the token there",
            url.scheme(),
            url.host_str().unwrap_or(""),
            arm.origin().ascii_serialization()
        )));
    }
    Ok(url)
}

/// A URL for messages, without its query (skip tokens are opaque and long).
fn redact_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_budgets_are_read_per_policy() {
        let read: Vec<_> = parse_remaining_resource(
            "Microsoft.Compute/GetVMScaleSetVM3Min;399, Microsoft.Compute/GetVMScaleSetVM30Min;2499",
        )
        .collect();
        assert_eq!(
            read,
            vec![
                ("Microsoft.Compute/GetVMScaleSetVM3Min", 399),
                ("Microsoft.Compute/GetVMScaleSetVM30Min", 2499)
            ]
        );
        let odd: Vec<_> = parse_remaining_resource(";5,nocount,x;-1,y;7,,").collect();
        assert_eq!(odd, vec![("y", 7)]);
    }

    fn arm() -> Url {
        Url::parse("https://management.azure.com/").expect("url")
    }

    #[test]
    fn list_url_is_the_documented_operation() {
        let target = ScaleSetRef {
            subscription_id: "00000000-0000-0000-0000-000000000001".into(),
            resource_group: "rg (prod)".into(),
            scale_set_name: "web".into(),
            api_version: "2024-11-01".into(),
        };
        assert_eq!(
            target.list_url(&arm()).expect("url").as_str(),
            "https://management.azure.com/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg%20(prod)/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines?%24expand=instanceView&%24select=instanceView&api-version=2024-11-01"
        );
        let with_path = Url::parse("https://127.0.0.1:8443/").expect("url");
        assert!(
            target
                .list_url(&with_path)
                .expect("url")
                .as_str()
                .starts_with("https://127.0.0.1:8443/subscriptions/")
        );
    }

    #[test]
    fn next_link_must_stay_on_the_arm_origin() {
        let ok = validate_next_link(
            &arm(),
            "https://management.azure.com/subscriptions/x/virtualMachines?$skiptoken=abc",
        );
        assert!(ok.is_ok());
        assert!(
            validate_next_link(&arm(), "https://MANAGEMENT.azure.com/a").is_ok(),
            "host is case-insensitive"
        );
        assert!(
            validate_next_link(&arm(), "https://management.azure.com:443/a").is_ok(),
            "default port is the same origin"
        );
        for bad in [
            "https://evil.example.com/subscriptions/x",
            "http://management.azure.com/subscriptions/x",
            "https://management.azure.com:8443/x",
            "https://management.azure.com.evil.example/x",
            "a://example.com/aaaaaaaaaaaaaa",
        ] {
            let err = validate_next_link(&arm(), bad).expect_err(bad);
            assert_eq!(err.reason(), "InvalidResponse", "{bad}");
        }
    }

    #[test]
    fn retry_after_in_seconds_or_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("17", now), Some(Duration::from_secs(17)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn arm_error_bodies_parse_and_map_to_reasons() {
        let body = br#"{"error":{"code":"AuthorizationFailed","message":"The client 'x' does not have authorization"}}"#;
        assert_eq!(
            parse_error_body(body),
            (
                Some("AuthorizationFailed".into()),
                Some("The client 'x' does not have authorization".into())
            )
        );
        assert_eq!(parse_error_body(b"<html>502</html>"), (None, None));
        assert_eq!(parse_error_body(b""), (None, None));
        let api = |status| ArmError::Api {
            status,
            code: String::new(),
            message: String::new(),
        };
        assert_eq!(api(401).reason(), "AuthenticationFailed");
        assert_eq!(api(403).reason(), "Forbidden");
        assert_eq!(api(404).reason(), "ScaleSetNotFound");
        assert_eq!(api(400).reason(), "InvalidRequest");
        assert_eq!(api(500).reason(), "AzureUnavailable");
        assert_eq!(api(503).reason(), "AzureUnavailable");
        assert_eq!(
            ArmError::Authentication("x".into()).reason(),
            "AuthenticationFailed"
        );
        assert_eq!(
            ArmError::Throttled {
                retry_after: Duration::from_secs(5),
                code: "x".into()
            }
            .reason(),
            "Throttled"
        );
        assert_eq!(
            ArmError::Unavailable("timed out".into()).reason(),
            "AzureUnavailable"
        );
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let http = crate::azure::http_client(None).expect("client builds");
        let client = ArmClient::new(http, Limits::default());
        for attempt in 1..20 {
            let d = client.backoff(attempt);
            assert!(
                d <= Limits::default().backoff_max,
                "attempt {attempt}: {d:?}"
            );
        }
        let first = client.backoff(1);
        assert!(
            first >= Duration::from_millis(250) && first <= Duration::from_millis(500),
            "{first:?}"
        );
        assert!(client.backoff(5) >= Duration::from_secs(4));
    }
}
