//! The scenario: what the simulated Azure contains, as read from YAML.
//!
//! Every field name is camelCase. Omitted fields take the defaults noted here,
//! so a scenario stays short and readable:
//!
//! ```yaml
//! tokens:
//!   lifetimeSeconds: 3599            # expires_in of issued access tokens
//!   errorDescriptionLineBreaks: true # Entra puts "\r\nTrace ID: ..." in error_description
//!   outage: {status: 503, body: entra} # optional: every token request fails so
//!                                    # (429 or 5xx; body entra (JSON) or html;
//!                                    # retryAfter: sent verbatim as Retry-After)
//!   fault: {answer: {}}              # optional: a broken sign-in service (see below)
//! rateLimits:
//!   enforce: false                   # true: answer 429 when a budget below runs out
//!   subscriptionReads: 250           # token bucket per subscription and principal...
//!   subscriptionReadsPerSecond: 25   # ...refilled at this rate
//!   scaleSetVm3Min: 400              # Compute's per-scale-set budgets
//!   scaleSetVm30Min: 2500
//! servicePrincipals:
//!   - tenantId: 72f988bf-0000-0000-0000-000000000001
//!     clientId: 11111111-0000-0000-0000-000000000001
//!     clientSecret: s3cret            # omit for a principal usable only by federation
//!     subscriptions: [00000000-0000-0000-0000-0000000000aa]  # may read these
//! federatedIdentities:
//!   - issuer: https://kubernetes.default.svc.cluster.local
//!     subject: system:serviceaccount:scaleset-watch:controller
//!     audience: api://AzureADTokenExchange  # the default
//!     tenantId: 72f988bf-0000-0000-0000-000000000001
//!     clientId: 11111111-0000-0000-0000-000000000001  # a servicePrincipals entry
//!     jwksUrl: https://127.0.0.1:6443/openid/v1/jwks   # or jwksFile: PATH, or jwks: {keys: [...]}
//!     jwksCaFile: /tmp/cp/certs/apiserver.crt          # CA to trust for jwksUrl
//!     jwksTokenFile: /tmp/cp/admin-token               # optional bearer token for jwksUrl
//!     jwksToken: ${SSW_ADMIN_TOKEN}                    # ...or inline
//! subscriptions:
//!   - id: 00000000-0000-0000-0000-0000000000aa
//!     tenantId: 72f988bf-0000-0000-0000-000000000001  # optional; tokens of other tenants get 401
//!     resourceGroups:
//!       - name: rg-demo
//!         scaleSets:
//!           - name: web
//!             location: westeurope               # default westeurope
//!             sku: {name: Standard_D2s_v5, tier: Standard}
//!             pageSize: 5                        # items per list page (default 100)
//!             latencyMs: 0                       # added to every ARM answer for this set
//!             orchestrationMode: Uniform         # or Flexible
//!             legacyUpgradeDomainString: false   # true: "platformUpgradeDomain": "3"
//!             upperCaseResourceGroupInIds: false # true: ids say resourceGroups/RG-DEMO
//!             defaults: {appHealth: healthy}     # merged under every instance
//!             generate: {count: 1000, faultDomains: 5, updateDomains: 5, zones: ["1", "2", "3"]}
//!             instances:                         # override/extend generated ones by id
//!               - id: 3
//!                 powerState: deallocated        # running (default) | stopped | deallocated |
//!                                                # starting | stopping | deallocating | unknown
//!               - id: 4
//!                 provisioningState: failed      # succeeded (default) | failed | creating |
//!                                                # updating | deleting | migrating
//!                 provisioningError: VMAgentProvisioningFailure
//!                 vmAgent: notReady              # ready (default) | notReady | absent
//!                 extensions:
//!                   - {name: install, type: Microsoft.Azure.Extensions.CustomScript,
//!                      state: failed, message: "exit code 1"}  # succeeded|failed|transitioning
//!                 disks: [{name: osdisk, state: failed}]
//!                 appHealth: unhealthy           # healthy | unhealthy | unknown |
//!                                                # initializing | absent (default)
//!                 faultDomain: 1                 # default: id mod 5
//!                 updateDomain: 2                # default: id mod 5
//!                 zone: "2"
//!                 latestModelApplied: false      # default true (Uniform only, as in Azure)
//!                 protectFromScaleIn: true       # protectionPolicy (Uniform only); default false
//!                 protectFromScaleSetActions: true
//!                 timeCreated: "2026-01-01T00:00:00Z"  # default: when the simulator made it
//!             faults:
//!               - throttle: {retryAfterSeconds: 30}
//!                 count: 1                       # optional: affect this many requests
//!                 page: 2                        # optional: only this list page (1-based)
//! ```
//!
//! Fault kinds: `throttle: {retryAfterSeconds, policy?, scope?: scaleSet |
//! subscription, retryAfterHeader?}`, `serverError: {status, retryAfterSeconds?}`,
//! `timeout: {seconds?}`, `malformedJson: {}`, `truncatedJson: {percent?}`,
//! `foreignNextLink: {host?}`, `nextLinkLoop: {exact?}`, `oversizedBody: {megabytes?}`,
//! `redirect: {status? (307; 301|302|303|307|308), to}` (Location is `to` plus the
//! request's path and query), `nextLinkUserinfo: {userinfo? (user:password)}`,
//! `endlessPages: {}` (a fresh skiptoken on every page, empty pages once listed),
//! `duplicateInstance: {}` (the page lists again the instance the page before ended with).
//!
//! Token endpoint faults (`tokens.fault`, or `PUT /_sim/tokens/fault`), applied to
//! every token request while no outage is: `redirect: {status?, to}`, or
//! `answer: <JSON>` (HTTP 200 with that body instead of a token, e.g. `{}`).
//!
//! Scenario files may use `${NAME}` for environment variables (an unset one
//! is an error).
//!
//! `$select=instanceView` trims each item to its ID and instance view, as ARM does: no
//! `latestModelApplied`, `protectionPolicy`, `timeCreated` or `zones` then.
//!
//! A deallocated instance reports no VM agent, extensions or application health,
//! as Azure does; a stopped one reports its agent not ready unless told otherwise.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

/// Errors reading or checking a scenario.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid scenario YAML: {0}")]
    Yaml(#[from] yaml_serde::Error),
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

/// Everything the simulated tenant(s) and subscriptions contain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub tokens: TokenSettings,
    #[serde(default)]
    pub rate_limits: RateLimits,
    #[serde(default)]
    pub service_principals: Vec<ServicePrincipal>,
    #[serde(default)]
    pub federated_identities: Vec<FederatedIdentity>,
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenSettings {
    #[serde(default = "default_token_lifetime")]
    pub lifetime_seconds: u64,
    /// Real Entra separates "Trace ID", "Correlation ID" and "Timestamp" in
    /// `error_description` with CRLF; clients that borrow the string from the
    /// JSON (azure_identity 1.0 does) cannot parse such a body.
    #[serde(default = "yes")]
    pub error_description_line_breaks: bool,
    /// While set, every token request fails so: the sign-in service is down,
    /// whatever the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage: Option<TokenOutage>,
    /// While set (and no outage is), every token request is answered so,
    /// whatever the credentials: a broken or hostile sign-in service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<TokenFault>,
}

/// How a broken or hostile token endpoint answers (one key, as faults are
/// written: `{redirect: {...}}` or `{answer: {...}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenFault {
    #[serde(flatten)]
    pub kind: TokenFaultKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TokenFaultKind {
    /// A redirect to another endpoint, which a client must not follow
    /// (it would re-send the client secret there).
    Redirect(RedirectFault),
    /// HTTP 200 with this JSON body instead of a token: `{}`, an empty
    /// `access_token`, an absurd `expires_in`...
    Answer(serde_json::Value),
}

impl TokenFault {
    pub fn validate(&self) -> Result<(), String> {
        match &self.kind {
            TokenFaultKind::Redirect(r) => r.validate(),
            TokenFaultKind::Answer(_) => Ok(()),
        }
    }
}

impl From<TokenFaultKind> for TokenFault {
    fn from(kind: TokenFaultKind) -> Self {
        Self { kind }
    }
}

/// A 3xx answer whose `Location` is `to` followed by the request's own path
/// and query, so that a client following it asks the other host for the
/// same thing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectFault {
    #[serde(default = "default_redirect_status")]
    pub status: u16,
    /// Scheme, host and port, e.g. `https://127.0.0.1:8444` or `http://127.0.0.1:8080`.
    pub to: String,
}

impl RedirectFault {
    pub fn validate(&self) -> Result<(), String> {
        if ![301, 302, 303, 307, 308].contains(&self.status) {
            return Err(format!(
                "redirect.status must be 301, 302, 303, 307 or 308, not {}",
                self.status
            ));
        }
        match url::Url::parse(&self.to) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
            _ => Err(format!(
                "redirect.to must be an http(s) URL such as https://127.0.0.1:8444, not {:?}",
                self.to
            )),
        }
    }

    /// The `Location` for a request of `path_and_query`.
    pub fn location(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.to.trim_end_matches('/'))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenOutage {
    /// 429 or 5xx.
    pub status: u16,
    #[serde(default)]
    pub body: OutageBody,
    /// Sent verbatim as `Retry-After` (seconds, an HTTP date, anything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
}

/// What a failing token request's body is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OutageBody {
    /// Entra's JSON error, `temporarily_unavailable`.
    #[default]
    Entra,
    /// An HTML page, as a gateway in front of Entra sends.
    Html,
}

impl TokenOutage {
    pub fn validate(&self) -> Result<(), String> {
        if self
            .retry_after
            .as_deref()
            .is_some_and(|h| axum::http::HeaderValue::from_str(h).is_err())
        {
            return Err("tokens.outage.retryAfter must be a valid header value".into());
        }
        match self.status {
            429 | 500..=599 => Ok(()),
            other => Err(format!(
                "tokens.outage.status must be 429 or 5xx, not {other}"
            )),
        }
    }
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            lifetime_seconds: default_token_lifetime(),
            error_description_line_breaks: true,
            outage: None,
            fault: None,
        }
    }
}

/// ARM's and Compute's read budgets. Reported in headers always; enforced
/// with 429s only when `enforce` is set, so that ordinary tests stay
/// deterministic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimits {
    #[serde(default)]
    pub enforce: bool,
    #[serde(default = "default_sub_reads")]
    pub subscription_reads: u32,
    #[serde(default = "default_sub_refill")]
    pub subscription_reads_per_second: u32,
    #[serde(default = "default_vm_3min", rename = "scaleSetVm3Min")]
    pub scale_set_vm_3min: u32,
    #[serde(default = "default_vm_30min", rename = "scaleSetVm30Min")]
    pub scale_set_vm_30min: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            enforce: false,
            subscription_reads: default_sub_reads(),
            subscription_reads_per_second: default_sub_refill(),
            scale_set_vm_3min: default_vm_3min(),
            scale_set_vm_30min: default_vm_30min(),
        }
    }
}

/// An Entra application (service principal) and the subscriptions it may read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePrincipal {
    pub tenant_id: String,
    pub client_id: String,
    /// Without a secret the principal can only sign in through federation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The service principal's object id, quoted by ARM's 403 message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    #[serde(default)]
    pub subscriptions: Vec<String>,
}

/// A federated identity credential: which Kubernetes service-account tokens
/// may sign in as an application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederatedIdentity {
    pub issuer: String,
    pub subject: String,
    #[serde(default = "default_audience")]
    pub audience: String,
    pub tenant_id: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_token_file: Option<PathBuf>,
    /// A bearer token for `jwksUrl` given inline (e.g. `${SSW_ADMIN_TOKEN}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// An inline JWKS document, handy for tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subscription {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub resource_groups: Vec<ResourceGroup>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceGroup {
    pub name: String,
    #[serde(default)]
    pub scale_sets: Vec<ScaleSetSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OrchestrationMode {
    #[default]
    Uniform,
    Flexible,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sku {
    pub name: String,
    #[serde(default = "default_sku_tier")]
    pub tier: String,
}

impl Default for Sku {
    fn default() -> Self {
        Self {
            name: "Standard_D2s_v5".into(),
            tier: default_sku_tier(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleSetSpec {
    pub name: String,
    #[serde(default = "default_location")]
    pub location: String,
    #[serde(default)]
    pub sku: Sku,
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub orchestration_mode: OrchestrationMode,
    #[serde(default)]
    pub legacy_upgrade_domain_string: bool,
    #[serde(default)]
    pub upper_case_resource_group_in_ids: bool,
    /// Merged under every instance (instance fields win).
    #[serde(default)]
    pub defaults: InstanceSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<Generate>,
    #[serde(default)]
    pub instances: Vec<InstanceSpec>,
    #[serde(default)]
    pub faults: Vec<Fault>,
}

/// N instances in one line: ids `startId..startId+count`, spread round-robin
/// over fault domains, update domains and zones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Generate {
    pub count: u32,
    #[serde(default)]
    pub start_id: u64,
    #[serde(default = "five")]
    pub fault_domains: u32,
    #[serde(default = "five")]
    pub update_domains: u32,
    #[serde(default)]
    pub zones: Vec<String>,
}

/// One instance, all fields optional so that the same shape serves as a
/// full description, a scale set's `defaults`, and a PATCH.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceSpec {
    #[serde(
        default,
        deserialize_with = "de_opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_state: Option<PowerState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<ProvisioningState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_agent: Option<VmAgentState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_agent_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<ExtensionSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disks: Option<Vec<DiskSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_health: Option<AppHealth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_domain: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_domain: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_model_applied: Option<bool>,
    /// `properties.protectionPolicy.protectFromScaleIn` (Uniform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protect_from_scale_in: Option<bool>,
    /// `properties.protectionPolicy.protectFromScaleSetActions` (Uniform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protect_from_scale_set_actions: Option<bool>,
    /// `properties.timeCreated` as an RFC 3339 time; default: when the simulator first
    /// created the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
}

macro_rules! yaml_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $yaml:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $yaml)] $variant),+
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(Self::$variant => $yaml),+ })
            }
        }
    };
}

yaml_enum!(PowerState {
    Running => "running",
    Stopped => "stopped",
    Deallocated => "deallocated",
    Starting => "starting",
    Stopping => "stopping",
    Deallocating => "deallocating",
    Unknown => "unknown",
});

yaml_enum!(ProvisioningState {
    Succeeded => "succeeded",
    Failed => "failed",
    Creating => "creating",
    Updating => "updating",
    Deleting => "deleting",
    Migrating => "migrating",
});

yaml_enum!(VmAgentState {
    Ready => "ready",
    NotReady => "notReady",
    Absent => "absent",
});

yaml_enum!(AppHealth {
    Healthy => "healthy",
    Unhealthy => "unhealthy",
    Unknown => "unknown",
    Initializing => "initializing",
    Absent => "absent",
});

yaml_enum!(ExtensionState {
    Succeeded => "succeeded",
    Failed => "failed",
    Transitioning => "transitioning",
});

yaml_enum!(DiskState {
    Succeeded => "succeeded",
    Failed => "failed",
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtensionSpec {
    pub name: String,
    #[serde(rename = "type", default = "default_extension_type")]
    pub kind: String,
    #[serde(default = "default_extension_version")]
    pub type_handler_version: String,
    #[serde(default = "default_extension_state")]
    pub state: ExtensionState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Suffix of a failed status code, `ProvisioningState/failed/<code>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiskSpec {
    pub name: String,
    #[serde(default = "default_disk_state")]
    pub state: DiskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A fault injected into ARM answers for one scale set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many requests to affect; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Only this list page (1-based); every request when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    /// 429 with Retry-After; requests before it passes are throttled again.
    Throttle(ThrottleFault),
    ServerError(ServerErrorFault),
    /// Hang, then 504.
    Timeout(TimeoutFault),
    MalformedJson(NoOptions),
    TruncatedJson(TruncatedFault),
    ForeignNextLink(ForeignNextLinkFault),
    /// The page's nextLink leads back to page 1: with a fresh skiptoken each
    /// time, or with `exact: true` the very URL page 1 was fetched with.
    NextLinkLoop(NextLinkLoopFault),
    OversizedBody(OversizedFault),
    /// A list page answered with a redirect (to another host, or to http).
    Redirect(RedirectFault),
    /// The page's nextLink is on the right host but carries
    /// `userinfo@` (`https://u:p@host/...`).
    NextLinkUserinfo(NextLinkUserinfoFault),
    /// Every page has a nextLink with a fresh skiptoken, for ever: once the
    /// instances are listed, empty pages follow.
    EndlessPages(NoOptions),
    /// The page lists again the instance the page before ended with (page 1:
    /// its own first one), as a listing that shifted between pages would.
    DuplicateInstance(NoOptions),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThrottleFault {
    pub retry_after_seconds: u64,
    /// Compute's throttling policy reported at 0.
    #[serde(default = "default_throttle_policy")]
    pub policy: String,
    /// `scaleSet` (default): Compute throttles this scale set's reads, and
    /// keeps doing so until Retry-After passes. `subscription`: ARM's
    /// `SubscriptionRequestsThrottled` for the calling principal, per
    /// request the fault affects (no window is kept; use `count`).
    #[serde(default)]
    pub scope: ThrottleScope,
    /// Sent verbatim as `Retry-After` instead of the seconds (an HTTP date,
    /// a number beyond u64, garbage); the window still lasts
    /// `retryAfterSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_header: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ThrottleScope {
    #[default]
    ScaleSet,
    Subscription,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerErrorFault {
    #[serde(default = "default_server_error_status")]
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeoutFault {
    #[serde(default = "default_timeout_seconds")]
    pub seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TruncatedFault {
    #[serde(default = "default_truncate_percent")]
    pub percent: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForeignNextLinkFault {
    #[serde(default = "default_foreign_host")]
    pub host: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NextLinkLoopFault {
    #[serde(default)]
    pub exact: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NextLinkUserinfoFault {
    #[serde(default = "default_userinfo")]
    pub userinfo: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OversizedFault {
    #[serde(default = "default_oversized_mb")]
    pub megabytes: u32,
}

/// Longest a `timeout` fault may hang, so a forgotten fault cannot wedge a
/// test run forever.
pub const MAX_TIMEOUT_SECONDS: u64 = 600;
const MAX_OVERSIZED_MB: u32 = 512;
const MAX_GENERATED: u32 = 200_000;

fn default_token_lifetime() -> u64 {
    3599
}
fn yes() -> bool {
    true
}
fn five() -> u32 {
    5
}
fn default_sub_reads() -> u32 {
    250
}
fn default_sub_refill() -> u32 {
    25
}
fn default_vm_3min() -> u32 {
    400
}
fn default_vm_30min() -> u32 {
    2500
}
fn default_audience() -> String {
    "api://AzureADTokenExchange".into()
}
fn default_location() -> String {
    "westeurope".into()
}
fn default_sku_tier() -> String {
    "Standard".into()
}
fn default_page_size() -> usize {
    100
}
fn default_extension_type() -> String {
    "Microsoft.Azure.Extensions.CustomScript".into()
}
fn default_extension_version() -> String {
    "2.1".into()
}
fn default_extension_state() -> ExtensionState {
    ExtensionState::Succeeded
}
fn default_disk_state() -> DiskState {
    DiskState::Succeeded
}
fn default_throttle_policy() -> String {
    "GetVMScaleSetVM3Min".into()
}
fn default_server_error_status() -> u16 {
    500
}
fn default_timeout_seconds() -> u64 {
    120
}
fn default_truncate_percent() -> u8 {
    50
}
fn default_foreign_host() -> String {
    "evil.example.com".into()
}
fn default_oversized_mb() -> u32 {
    32
}
fn default_redirect_status() -> u16 {
    307
}
fn default_userinfo() -> String {
    "user:password".into()
}

/// Instance ids are numbers in Uniform sets, but YAML authors may quote them
/// or use names (Flexible sets); accept both and keep the text.
fn de_opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        N(u64),
        S(String),
    }
    Ok(Option::<Repr>::deserialize(d)?.map(|r| match r {
        Repr::N(n) => n.to_string(),
        Repr::S(s) => s,
    }))
}

impl Scenario {
    pub fn from_yaml(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario = yaml_serde::from_str(text)?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Reads a scenario file, replacing `${NAME}` with environment
    /// variables first, so that a file can point at a control plane whose
    /// URL and CA path are only known at run time.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&expand_env(&text, |name| std::env::var(name).ok())?)
    }

    /// Checks what serde cannot: uniqueness (ARM names are case-insensitive),
    /// references, and bounds.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |m: String| Err(ScenarioError::Invalid(m));
        if let Some(outage) = &self.tokens.outage {
            outage.validate().map_err(ScenarioError::Invalid)?;
        }
        if let Some(fault) = &self.tokens.fault {
            fault.validate().map_err(ScenarioError::Invalid)?;
        }
        let mut principals = HashSet::new();
        for p in &self.service_principals {
            if !principals.insert((p.tenant_id.to_lowercase(), p.client_id.to_lowercase())) {
                return invalid(format!("service principal {} listed twice", p.client_id));
            }
        }
        for f in &self.federated_identities {
            if !principals.contains(&(f.tenant_id.to_lowercase(), f.client_id.to_lowercase())) {
                return invalid(format!(
                    "federated identity for {} names no service principal with that tenantId/clientId",
                    f.client_id
                ));
            }
            let sources = [
                f.jwks_url.is_some(),
                f.jwks_file.is_some(),
                f.jwks.is_some(),
            ];
            if sources.iter().filter(|s| **s).count() != 1 {
                return invalid(format!(
                    "federated identity {} needs exactly one of jwksUrl, jwksFile, jwks",
                    f.subject
                ));
            }
        }
        let mut subs = HashSet::new();
        for s in &self.subscriptions {
            if !subs.insert(s.id.to_lowercase()) {
                return invalid(format!("subscription {} listed twice", s.id));
            }
            let mut rgs = HashSet::new();
            for rg in &s.resource_groups {
                if !rgs.insert(rg.name.to_lowercase()) {
                    return invalid(format!("resource group {} listed twice", rg.name));
                }
                let mut sets = HashSet::new();
                for ss in &rg.scale_sets {
                    if !sets.insert(ss.name.to_lowercase()) {
                        return invalid(format!("scale set {} listed twice", ss.name));
                    }
                    ss.validate()?;
                }
            }
        }
        Ok(())
    }
}

/// `${NAME}` → `lookup(NAME)`; an unknown name is an error rather than an
/// empty string, which would only fail later and more obscurely.
pub fn expand_env(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ScenarioError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| ScenarioError::Invalid("unterminated ${ in scenario".into()))?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ScenarioError::Invalid(format!(
                "bad variable name ${{{name}}}"
            )));
        }
        let value = lookup(name).ok_or_else(|| {
            ScenarioError::Invalid(format!("the scenario uses ${{{name}}}, which is not set"))
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl ScaleSetSpec {
    fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |m: String| {
            Err(ScenarioError::Invalid(format!(
                "scale set {}: {m}",
                self.name
            )))
        };
        if self.page_size == 0 {
            return invalid("pageSize must be at least 1".into());
        }
        if let Some(g) = &self.generate {
            if g.count > MAX_GENERATED {
                return invalid(format!("generate.count is at most {MAX_GENERATED}"));
            }
            if g.fault_domains == 0 || g.update_domains == 0 {
                return invalid("generate needs at least one fault and update domain".into());
            }
        }
        let mut ids = HashSet::new();
        for i in &self.instances {
            let Some(id) = &i.id else {
                return invalid("every instance needs an id".into());
            };
            if !ids.insert(id.to_lowercase()) {
                return invalid(format!("instance {id} listed twice"));
            }
        }
        for f in &self.faults {
            f.validate()
                .map_err(|m| ScenarioError::Invalid(format!("scale set {}: {m}", self.name)))?;
        }
        Ok(())
    }

    /// The instances after `generate` and explicit entries are combined;
    /// `defaults` are not applied here (they are at render time, so that a
    /// later change to one instance keeps its defaults).
    pub fn expanded_instances(&self) -> Vec<InstanceSpec> {
        let mut out: Vec<InstanceSpec> = Vec::new();
        if let Some(g) = &self.generate {
            for i in 0..u64::from(g.count) {
                let zone = if g.zones.is_empty() {
                    None
                } else {
                    g.zones.get((i % g.zones.len() as u64) as usize).cloned()
                };
                out.push(InstanceSpec {
                    id: Some((g.start_id + i).to_string()),
                    fault_domain: Some((i % u64::from(g.fault_domains)) as u32),
                    update_domain: Some((i % u64::from(g.update_domains)) as u32),
                    zone,
                    ..InstanceSpec::default()
                });
            }
        }
        for explicit in &self.instances {
            let existing = out.iter_mut().find(|g| {
                matches!((&g.id, &explicit.id), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b))
            });
            match existing {
                Some(generated) => *generated = explicit.merged_over(generated),
                None => out.push(explicit.clone()),
            }
        }
        out
    }
}

impl Fault {
    pub fn validate(&self) -> Result<(), String> {
        match &self.kind {
            FaultKind::ServerError(e) if !(500..=599).contains(&e.status) => {
                Err(format!("serverError.status {} is not a 5xx", e.status))
            }
            FaultKind::Timeout(t) if t.seconds > MAX_TIMEOUT_SECONDS => {
                Err(format!("timeout.seconds is at most {MAX_TIMEOUT_SECONDS}"))
            }
            FaultKind::TruncatedJson(t) if t.percent == 0 || t.percent >= 100 => {
                Err("truncatedJson.percent must be within 1..=99".into())
            }
            FaultKind::OversizedBody(o) if o.megabytes == 0 || o.megabytes > MAX_OVERSIZED_MB => {
                Err(format!(
                    "oversizedBody.megabytes must be within 1..={MAX_OVERSIZED_MB}"
                ))
            }
            FaultKind::Throttle(t) if t.retry_after_seconds == 0 => {
                Err("throttle.retryAfterSeconds must be at least 1".into())
            }
            FaultKind::Throttle(t)
                if t.retry_after_header
                    .as_deref()
                    .is_some_and(|h| axum::http::HeaderValue::from_str(h).is_err()) =>
            {
                Err("throttle.retryAfterHeader must be a valid header value".into())
            }
            FaultKind::Redirect(r) => r.validate(),
            FaultKind::NextLinkUserinfo(u)
                if u.userinfo.is_empty() || u.userinfo.contains(['/', '?', '#', '@']) =>
            {
                Err("nextLinkUserinfo.userinfo must be user or user:password".into())
            }
            _ if self.page == Some(0) => Err("page numbers start at 1".into()),
            _ => Ok(()),
        }
    }
}

impl InstanceSpec {
    /// `self`'s fields where set, `base`'s otherwise.
    pub fn merged_over(&self, base: &InstanceSpec) -> InstanceSpec {
        macro_rules! pick {
            ($($f:ident),+) => { InstanceSpec { $($f: self.$f.clone().or_else(|| base.$f.clone())),+ } };
        }
        pick!(
            id,
            power_state,
            provisioning_state,
            provisioning_error,
            vm_agent,
            vm_agent_version,
            extensions,
            disks,
            app_health,
            fault_domain,
            update_domain,
            zone,
            latest_model_applied,
            protect_from_scale_in,
            protect_from_scale_set_actions,
            time_created,
            computer_name,
            os_name,
            os_version
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_scale_set_takes_defaults() {
        let s = Scenario::from_yaml(
            "subscriptions:\n- id: S\n  resourceGroups:\n  - name: rg\n    scaleSets:\n    - name: web\n      instances: [{id: 0}, {id: '1', powerState: deallocated}]\n",
        )
        .unwrap();
        let ss = &s.subscriptions[0].resource_groups[0].scale_sets[0];
        assert_eq!(ss.page_size, 100);
        assert_eq!(ss.orchestration_mode, OrchestrationMode::Uniform);
        assert_eq!(ss.instances[0].id.as_deref(), Some("0"));
        assert_eq!(ss.instances[1].power_state, Some(PowerState::Deallocated));
    }

    #[test]
    fn token_faults_parse_from_compact_yaml() {
        let answer: TokenFault = yaml_serde::from_str("{answer: {}}").unwrap();
        assert_eq!(answer.kind, TokenFaultKind::Answer(serde_json::json!({})));
        let redirect: TokenFault =
            yaml_serde::from_str("redirect: {to: 'https://a.example'}").unwrap();
        assert!(
            matches!(&redirect.kind, TokenFaultKind::Redirect(r) if r.status == 307 && r.to == "https://a.example")
        );
        assert!(redirect.validate().is_ok());
        let json: TokenFault = yaml_serde::from_str(r#"{"answer": {"access_token": ""}}"#).unwrap();
        assert_eq!(
            json.kind,
            TokenFaultKind::Answer(serde_json::json!({"access_token": ""}))
        );
    }

    #[test]
    fn faults_parse_from_compact_yaml() {
        let faults: Vec<Fault> = yaml_serde::from_str(
            "- throttle: {retryAfterSeconds: 7}\n  count: 2\n- malformedJson: {}\n  page: 2\n- serverError: {status: 503}\n",
        )
        .unwrap();
        assert_eq!(faults.len(), 3);
        assert!(
            matches!(&faults[0].kind, FaultKind::Throttle(t) if t.retry_after_seconds == 7 && t.policy == "GetVMScaleSetVM3Min")
        );
        assert_eq!(faults[0].count, Some(2));
        assert_eq!(faults[1].page, Some(2));
        assert!(matches!(&faults[2].kind, FaultKind::ServerError(e) if e.status == 503));
        // JSON is YAML too: the admin API accepts either.
        let json: Fault = yaml_serde::from_str(r#"{"timeout": {"seconds": 3}}"#).unwrap();
        assert!(matches!(
            json.kind,
            FaultKind::Timeout(TimeoutFault { seconds: 3 })
        ));
    }

    #[test]
    fn generate_spreads_and_explicit_entries_override() {
        let ss: ScaleSetSpec = yaml_serde::from_str(
            "name: big\ngenerate: {count: 1000, zones: ['1','2','3']}\ninstances:\n- {id: 17, powerState: stopped}\n- {id: 5000}\n",
        )
        .unwrap();
        let all = ss.expanded_instances();
        assert_eq!(all.len(), 1001);
        let i17 = all.iter().find(|i| i.id.as_deref() == Some("17")).unwrap();
        assert_eq!(i17.power_state, Some(PowerState::Stopped));
        assert_eq!(i17.fault_domain, Some(2));
        assert_eq!(i17.zone.as_deref(), Some("3"));
        let fds: HashSet<_> = all.iter().filter_map(|i| i.fault_domain).collect();
        assert_eq!(fds.len(), 5);
    }

    #[test]
    fn rejects_typos_duplicates_and_bad_faults() {
        assert!(Scenario::from_yaml("subscriptions: [{id: a, resourceGroup: []}]").is_err());
        assert!(Scenario::from_yaml("subscriptions: [{id: a}, {id: A}]").is_err());
        let bad_status = "subscriptions: [{id: a, resourceGroups: [{name: r, scaleSets: [{name: s, faults: [{serverError: {status: 404}}]}]}]}]";
        assert!(matches!(
            Scenario::from_yaml(bad_status),
            Err(ScenarioError::Invalid(_))
        ));
        let orphan = "federatedIdentities: [{issuer: i, subject: s, tenantId: t, clientId: c, jwks: {keys: []}}]";
        assert!(matches!(
            Scenario::from_yaml(orphan),
            Err(ScenarioError::Invalid(_))
        ));
    }

    #[test]
    fn environment_variables_expand() {
        let lookup = |n: &str| (n == "URL").then(|| "https://127.0.0.1:6443".to_owned());
        assert_eq!(
            expand_env("jwksUrl: ${URL}/openid/v1/jwks", lookup).unwrap(),
            "jwksUrl: https://127.0.0.1:6443/openid/v1/jwks"
        );
        assert!(expand_env("a: ${NOPE}", lookup).is_err());
        assert!(expand_env("a: ${URL", lookup).is_err());
        assert_eq!(expand_env("plain $HOME", lookup).unwrap(), "plain $HOME");
    }

    #[test]
    fn merge_prefers_the_overlay() {
        let base = InstanceSpec {
            id: Some("1".into()),
            power_state: Some(PowerState::Running),
            app_health: Some(AppHealth::Healthy),
            ..Default::default()
        };
        let patch = InstanceSpec {
            power_state: Some(PowerState::Deallocated),
            ..Default::default()
        };
        let m = patch.merged_over(&base);
        assert_eq!(m.id.as_deref(), Some("1"));
        assert_eq!(m.power_state, Some(PowerState::Deallocated));
        assert_eq!(m.app_health, Some(AppHealth::Healthy));
    }
}
