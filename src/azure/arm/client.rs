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
    /// List the model view too (no `$select`): see the CRD's `modelView`. Part of what makes
    /// two watches' fetches one, since a trimmed page cannot serve a watch that needs more.
    pub model_view: bool,
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
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("$expand", "instanceView");
            if !self.model_view {
                query.append_pair("$select", "instanceView");
            }
            query.append_pair("api-version", &self.api_version);
        }
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
        // The startup checks refuse such endpoints already; the bearer token must never travel
        // in clear, whoever builds the client.
        if arm.scheme() != "https" {
            return Err(ArmError::InvalidResponse(format!(
                "ARM endpoint {} is not https; refusing to send a token in clear",
                arm.origin().ascii_serialization()
            )));
        }
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
    // The SDK's retry policy wraps a transport's error in a context of its own, whose message
    // hides the transport's: the root cause is told first, then the SDK's words.
    let outer = e.to_string();
    let mut causes: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let part = s.to_string();
        if !outer.contains(&part) && !causes.iter().any(|c| c.contains(&part)) {
            causes.push(part);
        }
        source = s.source();
    }
    let message = match causes.pop() {
        Some(root) => format!("{root} ({outer})"),
        None => outer,
    };
    if transient(e.kind())
        || e.downcast_ref::<azure_core::Error>()
            .is_some_and(|inner| transient(inner.kind()))
    {
        ArmError::IdentityUnavailable(message)
    } else {
        ArmError::Authentication(message)
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
    /// The longest `Retry-After` honoured (default 10 minutes): a longer one is taken as this,
    /// so that a broken or hostile answer (`Retry-After: 31536000`) cannot stop polling for a
    /// year. ARM's own throttles ask for seconds to a few minutes.
    pub max_retry_after: Duration,
    /// Per request, from sending to the last byte of the body.
    pub request_timeout: Duration,
    /// One page's body (default 32 MiB).
    pub max_page_bytes: usize,
    /// All pages of one listing together (default 64 MiB). A scale set has at most 1,000 VMs,
    /// whose instance views take a few MiB; this bounds the memory a listing can take.
    pub max_poll_bytes: usize,
    /// Pages of one listing (default 200). ARM lists at most 1,000 VMs per scale set, so this
    /// allows pages of only 5 VMs; it stops a server that mints a fresh skiptoken on every
    /// page long before Compute's per-scale-set read budget (400 per 3 minutes) is spent.
    pub max_pages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            attempts: 4,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            max_inline_throttle_wait: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(600),
            request_timeout: Duration::from_secs(30),
            max_page_bytes: 32 << 20,
            max_poll_bytes: 64 << 20,
            max_pages: 200,
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

/// One throttle that a 429 can close, keyed the way Azure counts. Compute's read policies
/// (`GetVMScaleSetVM3Min`...) count per scale set, so `rg-a/web` and `rg-b/web` are separate
/// budgets; ARM's own subscription-wide limit counts per subscription and principal, so one
/// principal's throttle says nothing about another's. Names compare case-insensitively, as in
/// ARM.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GateKey {
    ScaleSet {
        arm_host: String,
        subscription: String,
        resource_group: String,
        scale_set: String,
    },
    Subscription {
        arm_host: String,
        subscription: String,
        principal: String,
    },
}

/// The two throttles a listing of `target` by `principal` passes: its scale set's, then its
/// subscription's for that principal.
pub fn gate_keys(arm: &Url, target: &ScaleSetRef, principal: &str) -> [GateKey; 2] {
    let arm_host = arm.host_str().unwrap_or("").to_ascii_lowercase();
    let subscription = target.subscription_id.to_lowercase();
    [
        GateKey::ScaleSet {
            arm_host: arm_host.clone(),
            subscription: subscription.clone(),
            resource_group: target.resource_group.to_lowercase(),
            scale_set: target.scale_set_name.to_lowercase(),
        },
        GateKey::Subscription {
            arm_host,
            subscription,
            principal: principal.to_lowercase(),
        },
    ]
}

/// No request through a closed gate before its instant. After a 429 ARM throttles every early
/// request again, so we fail fast locally instead (as cloud-provider-azure does).
#[derive(Default)]
pub struct ThrottleGates(Mutex<HashMap<GateKey, Instant>>);

impl ThrottleGates {
    /// How long the longest of `keys`' gates stays closed after `now`.
    pub fn remaining(&self, keys: &[GateKey], now: Instant) -> Option<Duration> {
        let gates = self.0.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|k| gates.get(k))
            .filter_map(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
            .max()
    }

    /// Closes `key` for `wait` after `now` (never shortening a longer closure).
    pub fn close(&self, key: GateKey, now: Instant, wait: Duration) {
        // `wait` comes from a header; an instant beyond the clock's range must not panic.
        let Some(until) = now.checked_add(wait) else {
            return;
        };
        let mut gates = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Open gates are forgotten, so the map holds only what throttles right now.
        gates.retain(|_, u| *u > now);
        let entry = gates.entry(key).or_insert(until);
        *entry = (*entry).max(until);
    }
}

pub struct ArmClient {
    http: reqwest::Client,
    limits: Limits,
    gates: ThrottleGates,
    observer: Option<std::sync::Arc<dyn RequestObserver>>,
}

impl ArmClient {
    pub fn new(http: reqwest::Client, limits: Limits) -> Self {
        Self {
            http,
            limits,
            gates: ThrottleGates::default(),
            observer: None,
        }
    }

    pub fn with_observer(mut self, observer: std::sync::Arc<dyn RequestObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Lists every VM of the scale set with its instance view, following every nextLink.
    /// `principal` names whose `credential` is (never its secret): ARM throttles per principal.
    pub async fn list_instance_views(
        &self,
        arm: &Url,
        target: &ScaleSetRef,
        credential: &dyn TokenCredential,
        principal: &str,
        scope: &str,
    ) -> Result<ScaleSetSnapshot, ArmError> {
        let first = target.list_url(arm)?;
        self.list_pages(arm, target, first, credential, principal, scope)
            .await
    }

    /// The same for a Flexible scale set, whose own VM list carries no instance views.
    pub async fn list_flexible_instance_views(
        &self,
        arm: &Url,
        target: &ScaleSetRef,
        credential: &dyn TokenCredential,
        principal: &str,
        scope: &str,
    ) -> Result<ScaleSetSnapshot, ArmError> {
        let first = target.flexible_list_url(arm)?;
        self.list_pages(arm, target, first, credential, principal, scope)
            .await
            .map(ScaleSetSnapshot::into_flexible)
    }

    async fn list_pages(
        &self,
        arm: &Url,
        target: &ScaleSetRef,
        first: Url,
        credential: &dyn TokenCredential,
        principal: &str,
        scope: &str,
    ) -> Result<ScaleSetSnapshot, ArmError> {
        let gates = gate_keys(arm, target, principal);
        let mut url = first;
        let mut seen = HashSet::new();
        let mut instances = Vec::new();
        let mut bytes = 0usize;
        loop {
            if !seen.insert(url.to_string()) {
                return Err(ArmError::InvalidResponse(format!(
                    "nextLink loops back to a page already read ({})",
                    redact_query(&url)
                )));
            }
            if seen.len() > self.limits.max_pages {
                return Err(ArmError::InvalidResponse(format!(
                    "more than {} pages; ARM lists at most 1,000 VMs per scale set",
                    self.limits.max_pages
                )));
            }
            let budget = self.limits.max_poll_bytes.saturating_sub(bytes);
            let body = self
                .get_page(&url, &gates, target, credential, scope, budget)
                .await?;
            bytes = bytes.saturating_add(body.len());
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

    /// One page, retried within the limits. `poll_bytes_left` is what the listing's byte cap
    /// still allows.
    async fn get_page(
        &self,
        url: &Url,
        gates: &[GateKey; 2],
        target: &ScaleSetRef,
        credential: &dyn TokenCredential,
        scope: &str,
        poll_bytes_left: usize,
    ) -> Result<Vec<u8>, ArmError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(wait) = self.gates.remaining(gates, Instant::now()) {
                return Err(ArmError::Throttled {
                    retry_after: wait,
                    code: "ThrottledLocally".into(),
                });
            }
            let token = credential
                .get_token(&[scope], None)
                .await
                .map_err(token_error)?;
            let bearer = token.token.secret();
            check_bearer(bearer)?;
            let started = Instant::now();
            let sent = self
                .http
                .get(url.clone())
                .bearer_auth(bearer)
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
                .and_then(|v| parse_retry_after(v, SystemTime::now()))
                .map(|d| d.min(self.limits.max_retry_after));
            if let Some(o) = &self.observer {
                let headers = response.headers();
                if let Some(remaining) = headers
                    .get("x-ms-ratelimit-remaining-subscription-reads")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                {
                    o.remaining_reads(&target.subscription_id.to_ascii_lowercase(), remaining);
                }
                for value in headers.get_all("x-ms-ratelimit-remaining-resource") {
                    for (policy, remaining) in
                        parse_remaining_resource(value.to_str().unwrap_or(""))
                    {
                        o.remaining_resource_reads(target, policy, remaining);
                    }
                }
            }
            if response.status().is_redirection() {
                self.observe(Some(status), started.elapsed());
                return Err(ArmError::InvalidResponse(redirect_refused(
                    status,
                    response.headers(),
                )));
            }
            if status == 200 {
                let cap = self.limits.max_page_bytes.min(poll_bytes_left);
                let body = read_capped(response, cap).await;
                self.observe(Some(status), started.elapsed());
                match body {
                    Ok(b) => return Ok(b),
                    Err(ReadError::TooLarge) if cap < self.limits.max_page_bytes => {
                        return Err(ArmError::InvalidResponse(format!(
                            "the pages of this listing are larger than {} in all",
                            size(self.limits.max_poll_bytes)
                        )));
                    }
                    Err(ReadError::TooLarge) => {
                        return Err(ArmError::InvalidResponse(format!(
                            "page larger than {}",
                            size(self.limits.max_page_bytes)
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
                // ARM's own subscription-wide throttling stops every read of the subscription
                // by this principal; Compute's policies are counted per scale set.
                let subscription_wide = code
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case("SubscriptionRequestsThrottled"));
                let [scale_set_gate, subscription_gate] = gates;
                let gate = if subscription_wide {
                    subscription_gate
                } else {
                    scale_set_gate
                };
                self.gates.close(gate.clone(), Instant::now(), wait);
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
}

/// A token is sent only if it can be one: an empty answer from the sign-in service would
/// otherwise reach ARM as `Authorization: Bearer ` and read as ARM refusing us.
fn check_bearer(token: &str) -> Result<(), ArmError> {
    if token.is_empty() {
        return Err(ArmError::Authentication(
            "the sign-in service returned an empty access token; nothing was sent to ARM".into(),
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ArmError::Authentication(
            "the sign-in service returned an access token that is not a bearer token; nothing was sent to ARM".into(),
        ));
    }
    Ok(())
}

/// Following a redirect would send the bearer token (or the listing's trust) to wherever ARM's
/// answer points, so none is followed; the message names where it pointed, without user info.
fn redirect_refused(status: u16, headers: &reqwest::header::HeaderMap) -> String {
    let target = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| Url::parse(l).ok())
        .map(|l| format!(" to {}", l.origin().ascii_serialization()))
        .unwrap_or_default();
    format!(
        "ARM answered HTTP {status}, a redirect{target}; redirects are refused, so that the token goes only to the ARM endpoint"
    )
}

/// `32 MiB`, or bytes when not a whole number of MiB (limits set low in tests).
fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

enum ReadError {
    TooLarge,
    Transport(String),
}

async fn read_capped(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, ReadError> {
    let announced = match response.content_length().map(usize::try_from) {
        Some(Ok(n)) if n <= max => n,
        Some(_) => return Err(ReadError::TooLarge),
        None => 0,
    };
    // Sized once when the length is announced: grown by doubling, the pages read at once
    // would hold up to twice their size.
    let mut body = Vec::with_capacity(announced);
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

/// `Retry-After` as delta-seconds or an HTTP date, relative to `now`. Any number of digits is
/// read (a value beyond `u64` is very long, not unreadable); callers clamp what they honour.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(value.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A nextLink must stay on the ARM endpoint's origin over https: the bearer token goes with it,
/// and must never be sent anywhere else. It may carry no user info (reqwest would send it as a
/// second Authorization header) and no fragment (ARM's links have none).
pub fn validate_next_link(arm: &Url, next: &str) -> Result<Url, ArmError> {
    let url = arm
        .join(next)
        .map_err(|e| ArmError::InvalidResponse(format!("nextLink is not a URL: {e}")))?;
    let same_origin = url.scheme() == "https"
        && url.scheme() == arm.scheme()
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
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ArmError::InvalidResponse(
            "nextLink carries user info (user:password@); refusing to follow it".into(),
        ));
    }
    if url.fragment().is_some() {
        return Err(ArmError::InvalidResponse(format!(
            "nextLink has a fragment ({}#...); ARM's links have none",
            redact_query(&url)
        )));
    }
    Ok(url)
}

/// A URL for messages, without its query (skip tokens are opaque and long), user info or
/// fragment.
fn redact_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
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
            model_view: false,
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
        // The model view: no $select, which would trim it away.
        let full = ScaleSetRef {
            model_view: true,
            ..target
        };
        assert!(
            full.list_url(&arm())
                .expect("url")
                .as_str()
                .ends_with("/virtualMachines?%24expand=instanceView&api-version=2024-11-01")
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
            "//evil.example.com/x",
            "https:\\\\evil.example.com\\x",
            "https://management.azure.com%2eevil.example/x",
        ] {
            let err = validate_next_link(&arm(), bad).expect_err(bad);
            assert!(matches!(err, ArmError::InvalidResponse(_)), "{bad}");
        }
    }

    #[test]
    fn next_link_may_carry_no_user_info_or_fragment() {
        for bad in [
            "https://u:p@management.azure.com/subscriptions/x?$skiptoken=a",
            "https://u@management.azure.com/subscriptions/x",
            "https://:p@management.azure.com/subscriptions/x",
            "https://management.azure.com@management.azure.com/x",
        ] {
            let err = validate_next_link(&arm(), bad).expect_err(bad);
            assert!(matches!(err, ArmError::InvalidResponse(_)), "{bad}");
            assert!(err.to_string().contains("user info"), "{bad}: {err}");
            assert!(!err.to_string().contains(":p@"), "{bad}: {err}");
        }
        let err = validate_next_link(&arm(), "https://management.azure.com/x?$skiptoken=a#frag")
            .expect_err("fragment");
        assert!(err.to_string().contains("fragment"), "{err}");
        assert!(!err.to_string().contains("skiptoken"), "{err}");
    }

    #[test]
    fn the_arm_endpoint_must_be_https() {
        let target = ScaleSetRef {
            subscription_id: "s".into(),
            resource_group: "g".into(),
            scale_set_name: "n".into(),
            api_version: "2024-11-01".into(),
            model_view: false,
        };
        let http = Url::parse("http://management.azure.com/").expect("url");
        let err = target.list_url(&http).expect_err("http");
        assert!(err.to_string().contains("not https"), "{err}");
        assert!(target.flexible_list_url(&http).is_err());
        // A nextLink is held to https even if the endpoint were not.
        assert!(validate_next_link(&http, "http://management.azure.com/x").is_err());
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
        assert_eq!(parse_retry_after("+5", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn any_retry_after_parses_without_overflow_and_is_clamped_when_honoured() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("18446744073709551615", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999999999999", now),
            Some(Duration::MAX)
        );
        let far = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now).expect("a date");
        assert!(far > Duration::from_secs(7000 * 365 * 86_400), "{far:?}");
        let limits = Limits::default();
        assert_eq!(limits.max_retry_after, Duration::from_secs(600));
        // What get_page honours, and what the gate makes of it.
        let gates = ThrottleGates::default();
        let key = gate_keys(&arm(), &web("rg"), "p")[0].clone();
        let start = Instant::now();
        for wait in [Duration::MAX, Duration::from_secs(u64::MAX), far] {
            gates.close(key.clone(), start, wait.min(limits.max_retry_after));
        }
        let left = gates
            .remaining(std::slice::from_ref(&key), start)
            .expect("closed");
        assert_eq!(left, limits.max_retry_after);
        // Even unclamped, closing a gate never panics.
        gates.close(key, start, Duration::MAX);
    }

    fn web(resource_group: &str) -> ScaleSetRef {
        ScaleSetRef {
            subscription_id: "00000000-0000-0000-0000-0000000000AA".into(),
            resource_group: resource_group.into(),
            scale_set_name: "web".into(),
            api_version: "2024-11-01".into(),
            model_view: false,
        }
    }

    #[test]
    fn compute_gates_are_per_scale_set_and_arm_gates_per_principal() {
        let gates = ThrottleGates::default();
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        let [rg_a_web, _] = gate_keys(&arm(), &web("rg-a"), "tenant/alice");
        gates.close(rg_a_web, now, minute);
        assert!(
            gates
                .remaining(&gate_keys(&arm(), &web("RG-A"), "tenant/bob"), now)
                .is_some(),
            "Compute throttled rg-a/web for everyone (names are case-insensitive)"
        );
        assert_eq!(
            gates.remaining(&gate_keys(&arm(), &web("rg-b"), "tenant/alice"), now),
            None,
            "rg-b/web is another scale set"
        );

        let gates = ThrottleGates::default();
        let [_, alice_subscription] = gate_keys(&arm(), &web("rg-a"), "Tenant/Alice");
        gates.close(alice_subscription, now, minute);
        assert!(
            gates
                .remaining(&gate_keys(&arm(), &web("rg-b"), "tenant/alice"), now)
                .is_some(),
            "ARM throttled alice on the whole subscription"
        );
        assert_eq!(
            gates.remaining(&gate_keys(&arm(), &web("rg-a"), "tenant/bob"), now),
            None,
            "bob has a budget of his own"
        );
        let other_cloud = Url::parse("https://management.chinacloudapi.cn/").expect("url");
        assert_eq!(
            gates.remaining(&gate_keys(&other_cloud, &web("rg-a"), "tenant/alice"), now),
            None
        );
        // Gates open when their time is up, and are forgotten.
        assert_eq!(
            gates.remaining(
                &gate_keys(&arm(), &web("rg-a"), "tenant/alice"),
                now + minute
            ),
            None
        );
        let [_, bob] = gate_keys(&arm(), &web("rg-a"), "tenant/bob");
        gates.close(bob, now + minute, minute);
        assert_eq!(gates.0.lock().expect("lock").len(), 1);
    }

    #[test]
    fn only_a_bearer_token_is_ever_sent() {
        for bad in ["", " ", "a b", "tok\r\nX-Injected: 1", "t\u{e9}"] {
            let err = check_bearer(bad).expect_err(bad);
            assert!(matches!(err, ArmError::Authentication(_)), "{bad:?}");
            assert!(err.to_string().contains("nothing was sent to ARM"), "{err}");
        }
        assert!(check_bearer("eyJ0eXAi.eyJhdWQi.c2ln-_~+/=").is_ok());
    }

    /// Hands out one fixed token.
    #[derive(Debug)]
    struct FixedToken(&'static str);

    #[async_trait::async_trait]
    impl TokenCredential for FixedToken {
        async fn get_token(
            &self,
            _scopes: &[&str],
            _options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
        ) -> azure_core::Result<azure_core::credentials::AccessToken> {
            Ok(azure_core::credentials::AccessToken::new(
                self.0.to_owned(),
                azure_core::time::OffsetDateTime::now_utc(),
            ))
        }
    }

    #[tokio::test]
    async fn an_empty_token_fails_the_listing_before_any_request() {
        let http = crate::azure::http_client(None).expect("client builds");
        let client = ArmClient::new(http, Limits::default());
        // Nothing listens on port 1: a request, had one been sent, would fail as Unavailable.
        let nowhere = Url::parse("https://127.0.0.1:1/").expect("url");
        let err = client
            .list_instance_views(&nowhere, &web("rg"), &FixedToken(""), "p", "scope")
            .await
            .expect_err("no token");
        assert!(matches!(err, ArmError::Authentication(_)), "{err}");
        assert!(err.to_string().contains("empty access token"), "{err}");
    }

    #[test]
    fn documented_defaults() {
        let l = Limits::default();
        assert_eq!(l.max_retry_after, Duration::from_secs(10 * 60));
        assert_eq!(l.max_page_bytes, 32 << 20);
        assert_eq!(l.max_poll_bytes, 64 << 20);
        assert_eq!(l.max_pages, 200);
        assert_eq!(size(64 << 20), "64 MiB");
        assert_eq!(size(3000), "3000 bytes");
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
