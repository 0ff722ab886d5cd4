//! The `ScaleSetWatch` custom resource: what a user declares and what the controller reports.
//!
//! The schema is generated from these types; validation lives in the schema (OpenAPI and CEL)
//! so that the API server refuses a bad spec before the controller ever sees it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};

/// Azure subscription IDs are GUIDs.
const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
/// Azure: 1-90 letters, digits, underscores, hyphens, periods and parentheses; no trailing period.
const RESOURCE_GROUP_PATTERN: &str = r"^[-\p{L}\p{N}_.()]*[-\p{L}\p{N}_()]$";
/// Azure: 1-64 letters, digits, underscores, periods, hyphens; starts with a letter or digit,
/// ends with a letter, digit or underscore.
const SCALE_SET_PATTERN: &str = r"^[a-zA-Z0-9]([a-zA-Z0-9._-]*[a-zA-Z0-9_])?$";
/// A Go-style duration (`30s`, `5m`, `1h30m`), which CEL's `duration()` understands.
const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";
/// ARM api-versions look like `2024-07-01` or `2024-07-01-preview`.
const API_VERSION_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?$";
/// A Secret's name is a DNS subdomain (RFC 1123): lowercase alphanumeric labels joined by '.',
/// with '-' inside a label. Refusing anything else keeps names such as `../x` out of API paths.
const DNS_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// The api-version sent when the spec names none: a current stable Compute version.
pub const DEFAULT_API_VERSION: &str = "2024-11-01";
pub const DEFAULT_INTERVAL: &str = "60s";
/// Polls closer together than this burn Azure's read budget for little news.
pub const MIN_INTERVAL_SECS: u64 = 10;
/// Bound on `status.unhealthyInstances`, so a broken fleet cannot grow the object without end.
pub const MAX_LISTED_UNHEALTHY: usize = 50;

/// Watches the health of one Azure Virtual Machine Scale Set by polling the instance views of its VMs.
// Printer columns repeat `type_ = ...` by design; clippy reads that as a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "scalesetwatch.io",
    version = "v1alpha1",
    kind = "ScaleSetWatch",
    plural = "scalesetwatches",
    shortname = "ssw",
    namespaced,
    status = "ScaleSetWatchStatus",
    doc = "ScaleSetWatch polls an Azure VM Scale Set and reports the health of its instances.",
    printcolumn(name = "Scale Set", type_ = "string", json_path = ".spec.scaleSetName"),
    // Priority 1: shown by `kubectl get -o wide` only.
    printcolumn(
        name = "Resource Group",
        type_ = "string",
        json_path = ".spec.resourceGroup",
        priority = 1
    ),
    printcolumn(
        name = "Healthy",
        type_ = "string",
        description = "healthy/total instances",
        json_path = ".status.summary"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        description = "reason of the Healthy condition",
        json_path = ".status.conditions[?(@.type==\"Healthy\")].reason"
    ),
    printcolumn(name = "Last Poll", type_ = "date", json_path = ".status.lastPollTime"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Mode",
        type_ = "string",
        description = "orchestration mode: Uniform or Flexible",
        json_path = ".status.orchestrationMode",
        priority = 1
    ),
    printcolumn(
        name = "Outdated",
        type_ = "integer",
        description = "instances not on the scale set's latest model (with spec.modelView)",
        json_path = ".status.instances.outdatedModel",
        priority = 1
    ),
    printcolumn(
        name = "Ready Message",
        type_ = "string",
        description = "what the last poll did, or why it failed",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        priority = 1
    ),
    printcolumn(
        name = "Degraded Message",
        type_ = "string",
        description = "which instances are unhealthy and why",
        json_path = ".status.conditions[?(@.type==\"Degraded\")].message",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ScaleSetWatchSpec {
    /// ID (a UUID) of the Azure subscription that holds the scale set.
    #[schemars(regex(pattern = UUID_PATTERN))]
    pub subscription_id: String,

    /// Resource group of the scale set: 1-90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'.
    #[schemars(length(min = 1, max = 90), regex(pattern = RESOURCE_GROUP_PATTERN))]
    pub resource_group: String,

    /// Name of the virtual machine scale set: 1-64 letters, digits, '_', '.', '-', starting with a
    /// letter or digit and ending with a letter, digit or '_'.
    #[schemars(length(min = 1, max = 64), regex(pattern = SCALE_SET_PATTERN))]
    pub scale_set_name: String,

    /// How often to poll Azure, as a duration such as "60s", "5m" or "1h30m". At least 10s.
    #[serde(default = "default_interval")]
    #[schemars(length(max = 32), regex(pattern = DURATION_PATTERN))]
    #[x_kube(validation = kube::core::Rule::new("duration(self) >= duration('10s')").message("interval must be at least 10s"))]
    pub interval: String,

    /// Microsoft.Compute api-version used for the list call (default 2024-11-01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = API_VERSION_PATTERN))]
    pub api_version: Option<String>,

    /// Azure cloud that hosts the scale set (default AzurePublic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<Cloud>,

    /// Credentials to call Azure with. Without them the controller uses its own identity
    /// (workload identity, a client secret in its environment, or managed identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,

    /// When the scale set counts as healthy.
    #[serde(default)]
    pub health: HealthPolicy,

    /// List the instances' model view too (default true): latestModelApplied (rollouts,
    /// status.instances.outdatedModel), protection policies, zones (status.zones) and
    /// timeCreated (the Application Health grace period). False lists with
    /// $select=instanceView, which makes each page about a third as large (measured: 1.8 instead
    /// of 5.4 MB per 1,000 instances) and leaves those counts out; Application Health that is unknown or initializing then counts as
    /// unhealthy at once, since an instance's age is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_view: Option<bool>,

    /// Stop polling while true. The last status is kept.
    #[serde(default)]
    pub suspend: bool,
}

fn default_interval() -> String {
    DEFAULT_INTERVAL.to_string()
}

/// An Azure cloud.
#[derive(
    schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default,
)]
pub enum Cloud {
    #[default]
    AzurePublic,
    AzureChina,
    AzureUSGovernment,
}

/// Where the credentials to call Azure come from.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// A Secret in the ScaleSetWatch's namespace with keys tenantId, clientId and clientSecret
    /// of an Entra ID service principal.
    pub secret_ref: SecretReference,
}

/// A reference to a Secret in the same namespace.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretReference {
    /// Name of the Secret: a DNS subdomain name (lowercase letters, digits, '-' and '.', at most 253).
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
}

/// A power state an instance may be in and still count as healthy.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedPowerState {
    Running,
    Stopped,
    Deallocated,
}

/// When the scale set counts as healthy.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthPolicy {
    /// The scale set is Healthy when at least this percentage of its instances is healthy (0-100, default 100).
    #[serde(default = "default_min_healthy_percent")]
    #[schemars(range(min = 0, max = 100))]
    pub min_healthy_percent: u8,

    /// Power states an instance may be in and still be healthy (default: running only). A fleet that
    /// keeps instances deallocated on purpose lists "deallocated" too.
    #[serde(default = "default_expected_power_states")]
    #[schemars(length(min = 1, max = 3))]
    pub expected_power_states: Vec<ExpectedPowerState>,

    /// Whether a running instance must have its VM agent reporting Ready (default true). Turn off
    /// for images provisioned without the Azure VM agent.
    #[serde(default = "default_true")]
    pub require_vm_agent: bool,

    /// After polls have failed for this many poll intervals in a row, counted from the first
    /// failed poll, Healthy and Degraded become Unknown (reason PollsFailing) until a poll
    /// succeeds, so that a gate such as `kubectl wait --for=condition=Healthy` never passes on
    /// old data. The counts stay, as the last successful poll's. 1-1000, default 3: one failed
    /// poll is often a brief outage or throttling that the next retry gets past.
    #[serde(default = "default_unknown_after_failed_intervals")]
    #[schemars(range(min = 1, max = 1000))]
    pub unknown_after_failed_intervals: u32,

    /// How long after its creation (properties.timeCreated) a running instance whose
    /// Application Health is "unknown" or "initializing" still counts as healthy, as a
    /// duration such as "10m" (default 10m, the default grace period of VMSS automatic instance
    /// repairs). After it, or when the creation time is not known, such an instance is
    /// unhealthy. "0s" counts them unhealthy at once.
    #[serde(default = "default_app_health_grace_period")]
    #[schemars(length(max = 32), regex(pattern = DURATION_PATTERN))]
    pub app_health_grace_period: String,

    /// What an instance not on the scale set's latest model (latestModelApplied false) means:
    /// Ignore (not counted), Report (default: counted in status.instances.outdatedModel and
    /// listed, still healthy) or Unhealthy (also unhealthy, so a rollout lowers the healthy
    /// count).
    #[serde(default)]
    pub outdated_model: OutdatedModelPolicy,
}

/// How a scale set manages its VMs, as its VM list shows it.
#[derive(
    schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum OrchestrationMode {
    #[default]
    Uniform,
    /// The set's own VM list names its VMs without their instance views; they are listed from
    /// the resource group's VMs instead.
    Flexible,
}

/// What an instance not on the latest model means.
#[derive(
    schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default,
)]
pub enum OutdatedModelPolicy {
    Ignore,
    #[default]
    Report,
    Unhealthy,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            min_healthy_percent: default_min_healthy_percent(),
            expected_power_states: default_expected_power_states(),
            require_vm_agent: true,
            unknown_after_failed_intervals: default_unknown_after_failed_intervals(),
            app_health_grace_period: default_app_health_grace_period(),
            outdated_model: OutdatedModelPolicy::default(),
        }
    }
}

/// Three intervals: at the default interval of 60s, a gate stops trusting the counts after
/// three minutes of failed polls, well before the PollFailing alert (15 minutes).
pub const DEFAULT_UNKNOWN_AFTER_FAILED_INTERVALS: u32 = 3;

fn default_unknown_after_failed_intervals() -> u32 {
    DEFAULT_UNKNOWN_AFTER_FAILED_INTERVALS
}

/// The default grace period of VMSS automatic instance repairs (PT10M).
pub const DEFAULT_APP_HEALTH_GRACE_PERIOD: &str = "10m";

fn default_app_health_grace_period() -> String {
    DEFAULT_APP_HEALTH_GRACE_PERIOD.to_string()
}

impl HealthPolicy {
    /// The Application Health grace period; a value the schema should have refused reads as the
    /// default.
    pub fn app_health_grace_period(&self) -> std::time::Duration {
        parse_duration(&self.app_health_grace_period).unwrap_or(std::time::Duration::from_secs(600))
    }
}

fn default_min_healthy_percent() -> u8 {
    100
}

fn default_expected_power_states() -> Vec<ExpectedPowerState> {
    vec![ExpectedPowerState::Running]
}

fn default_true() -> bool {
    true
}

/// What the controller observed.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleSetWatchStatus {
    /// The spec generation this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// What the counts describe: cloud/subscription/resourceGroup/scaleSet and the credentials
    /// used. When the spec names another target, the counts of the old one are cleared rather
    /// than shown under the new one until it is polled successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,

    /// Uniform or Flexible, as the last successful poll found the scale set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestration_mode: Option<OrchestrationMode>,

    /// Healthy and total instances as "healthy/total", for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,

    /// Instance counts from the last successful poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<InstanceCounts>,

    /// Percentage (rounded down) of instances that are healthy; 100 for an empty scale set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_percent: Option<u8>,

    /// Totals per platform fault domain (the first 32 domains).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fault_domains: Vec<DomainHealth>,

    /// Totals per platform update domain (the first 32 domains).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub update_domains: Vec<DomainHealth>,

    /// Totals per availability zone (the first 32 zones), when the model view is listed and the
    /// instances are zonal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<ZoneHealth>,

    /// Unhealthy instances and why, at most 50 (see unhealthyInstancesOmitted); fewer when their
    /// reasons would make the status too large. Each reason is at most 512 bytes, and an
    /// instance lists at most 8.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unhealthy_instances: Vec<UnhealthyInstance>,

    /// Instances not on the scale set's latest model (see instances.outdatedModel), the first
    /// 50 in instance order, unless health.outdatedModel is Ignore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outdated_instances: Vec<String>,

    /// How many unhealthy instances are not listed in unhealthyInstances.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unhealthy_instances_omitted: u32,

    /// When Azure was last polled successfully. Refreshed when the status changes and at least
    /// every five minutes while polls keep succeeding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_poll_time: Option<Time>,

    /// Ready: the last poll succeeded. Healthy: the health policy is met. Degraded: some instances are unhealthy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Instance counts of one poll. An unhealthy instance counts once per cause.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceCounts {
    /// All instances in the scale set.
    pub total: u32,
    /// Instances that meet every health rule.
    pub healthy: u32,
    /// Instances that break at least one health rule.
    pub unhealthy: u32,
    /// Instances whose power state is running.
    pub running: u32,
    /// Instances whose power state is stopped (still allocated).
    pub stopped: u32,
    /// Instances whose power state is deallocated.
    pub deallocated: u32,
    /// Instances starting, stopping or deallocating.
    pub transitioning: u32,
    /// Instances that report no power state, or an unknown one.
    pub power_state_unknown: u32,
    /// Instances whose provisioning failed.
    pub provisioning_failed: u32,
    /// Instances still being created, updated, deleted or migrated.
    pub provisioning_in_progress: u32,
    /// Running instances whose VM agent does not report Ready.
    pub vm_agent_not_ready: u32,
    /// Instances with at least one failed extension.
    pub extensions_failed: u32,
    /// Instances with at least one failed disk.
    pub disks_failed: u32,
    /// Instances whose Application Health extension reports unhealthy.
    pub application_unhealthy: u32,
    /// Instances for which Azure returned no instance view.
    pub no_instance_view: u32,
    /// Running instances whose Application Health is still unknown or initializing after the
    /// grace period (health.appHealthGracePeriod).
    #[serde(default)]
    pub application_health_pending: u32,
    /// What Application Health (vmHealth) reports, per state; the five add up to total.
    #[serde(default)]
    pub application_health: ApplicationHealthCounts,
    /// Instances not on the scale set's latest model (latestModelApplied false): a rollout is
    /// done when this is 0. Absent when the model view is not listed (spec.modelView false),
    /// for Flexible sets (their VMs have no scale set model) and with health.outdatedModel
    /// Ignore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outdated_model: Option<u32>,
    /// Instances protected from scale-in (protectionPolicy.protectFromScaleIn). Absent when the
    /// model view is not listed, and for Flexible sets (their VMs have no protection policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected_from_scale_in: Option<u32>,
    /// Instances protected from scale set actions (protectionPolicy.protectFromScaleSetActions).
    /// Absent when the model view is not listed, and for Flexible sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected_from_scale_set_actions: Option<u32>,
}

/// Instances per Application Health state.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationHealthCounts {
    /// Reported healthy.
    #[serde(default)]
    pub healthy: u32,
    /// Reported unhealthy.
    #[serde(default)]
    pub unhealthy: u32,
    /// Reported unknown (rich health states: no valid probe answer), or a state not known here.
    #[serde(default)]
    pub unknown: u32,
    /// Reported initializing (rich health states: a new instance settling).
    #[serde(default)]
    pub initializing: u32,
    /// Not reported: no Application Health extension, a VM that is not running, or no
    /// instance view.
    #[serde(default)]
    pub not_reported: u32,
}

/// Health of one availability zone.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ZoneHealth {
    /// The zone, as Azure names it ("1", "2", "3").
    pub zone: String,
    /// Instances in the zone.
    pub total: u32,
    /// Unhealthy instances in the zone.
    pub unhealthy: u32,
}

/// Health of one fault or update domain.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DomainHealth {
    /// The domain number.
    pub domain: i32,
    /// Instances in the domain.
    pub total: u32,
    /// Unhealthy instances in the domain.
    pub unhealthy: u32,
}

/// An unhealthy instance and the reasons, in words.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UnhealthyInstance {
    /// The instance ID within the scale set.
    pub instance_id: String,
    /// Why the instance is unhealthy.
    pub reasons: Vec<String>,
}

/// The CRD as YAML, exactly as committed in `crds/scalesetwatches.yaml`.
pub fn crd_yaml() -> Result<String, yaml_serde::Error> {
    let mut crd = serde_json::to_value(ScaleSetWatch::crd())
        .map_err(<yaml_serde::Error as serde::ser::Error>::custom)?;
    unwrap_descriptions(&mut crd);
    yaml_serde::to_string(&crd)
}

/// Doc comments wrap at source width; `kubectl explain` wraps by itself, so a description's
/// single line breaks become spaces (paragraph breaks stay).
fn unwrap_descriptions(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    serde_json::Value::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|para| para.split_whitespace().collect::<Vec<_>>().join(" "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    other => unwrap_descriptions(other),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

impl Cloud {
    /// The name the CRD uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AzurePublic => "AzurePublic",
            Self::AzureChina => "AzureChina",
            Self::AzureUSGovernment => "AzureUSGovernment",
        }
    }
}

/// An RFC 1123 label, as namespace names are: 1-63 lowercase letters, digits and '-', starting
/// and ending with a letter or digit.
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && is_rfc1123_label(s)
}

/// An RFC 1123 subdomain, as Secret names are: exactly what `DNS_SUBDOMAIN_PATTERN` and the
/// length limit admit (Kubernetes does not limit the length of one label here).
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_rfc1123_label)
}

fn is_rfc1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    b.iter().all(|c| edge(c) || *c == b'-')
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
}

impl std::str::FromStr for Cloud {
    type Err = String;

    /// The names the CRD uses, so that flags and specs spell clouds alike.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "AzurePublic" => Ok(Self::AzurePublic),
            "AzureChina" => Ok(Self::AzureChina),
            "AzureUSGovernment" => Ok(Self::AzureUSGovernment),
            other => Err(format!(
                "unknown cloud {other:?}: expected AzurePublic, AzureChina or AzureUSGovernment"
            )),
        }
    }
}

impl std::str::FromStr for ExpectedPowerState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "running" => Ok(Self::Running),
            "stopped" => Ok(Self::Stopped),
            "deallocated" => Ok(Self::Deallocated),
            other => Err(format!(
                "unknown power state {other:?}: expected running, stopped or deallocated"
            )),
        }
    }
}

/// Parses a Go-style duration as the schema admits it (`90s`, `1m30s`, `1.5h`, `500ms`).
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let (unit, len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else if rest.starts_with('h') {
            (3600.0, 1)
        } else {
            return None;
        };
        total += value * unit;
        rest = &rest[len..];
    }
    std::time::Duration::try_from_secs_f64(total).ok()
}

impl ScaleSetWatchSpec {
    /// The poll interval; a value the schema should have refused reads as the default.
    pub fn interval(&self) -> std::time::Duration {
        parse_duration(&self.interval)
            .filter(|d| d.as_secs() >= MIN_INTERVAL_SECS)
            .unwrap_or(std::time::Duration::from_secs(60))
    }

    pub fn api_version(&self) -> &str {
        self.api_version.as_deref().unwrap_or(DEFAULT_API_VERSION)
    }

    /// Whether the list call asks for the model view (see `modelView`).
    pub fn model_view(&self) -> bool {
        self.model_view.unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("60s"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("5d"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn committed_crd_matches_the_types() {
        let committed = include_str!("../../crds/scalesetwatches.yaml");
        let generated = crd_yaml().expect("CRD serializes");
        assert!(
            committed == generated,
            "crds/scalesetwatches.yaml is stale: run `cargo run -q -- crd > crds/scalesetwatches.yaml`"
        );
    }

    #[test]
    fn secret_names_must_be_dns_subdomains_and_the_schema_says_so() {
        for ok in ["sp", "azure-sp", "a.b-c.d", "0", &"a".repeat(253)] {
            assert!(is_dns_subdomain(ok), "{ok}");
        }
        let too_long = "a".repeat(254);
        for bad in [
            "", "../x", "..", "x/y", "Upper", "-x", "x-", "a..b", ".x", "x.", "sp%2F", &too_long,
        ] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
        assert!(is_dns_label("scaleset-watch") && !is_dns_label(&"a".repeat(64)));
        let crd = serde_json::to_value(ScaleSetWatch::crd()).expect("CRD");
        let name = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["credentials"]["properties"]["secretRef"]["properties"]["name"];
        assert_eq!(name["pattern"], DNS_SUBDOMAIN_PATTERN);
        assert_eq!(name["maxLength"], 253);
    }

    #[test]
    fn spec_defaults_fill_in_when_omitted() {
        let spec: ScaleSetWatchSpec = serde_json::from_value(serde_json::json!({
            "subscriptionId": "00000000-0000-0000-0000-000000000000",
            "resourceGroup": "rg",
            "scaleSetName": "web"
        }))
        .expect("minimal spec parses");
        assert_eq!(spec.interval(), Duration::from_secs(60));
        assert_eq!(spec.api_version(), DEFAULT_API_VERSION);
        assert_eq!(spec.health, HealthPolicy::default());
        assert_eq!(spec.health.min_healthy_percent, 100);
        assert_eq!(
            spec.health.expected_power_states,
            vec![ExpectedPowerState::Running]
        );
        assert!(!spec.suspend);
        assert_eq!(spec.health.unknown_after_failed_intervals, 3);
    }

    #[test]
    fn failed_intervals_before_unknown_are_bounded_by_the_schema_and_wide_columns_exist() {
        let crd = serde_json::to_value(ScaleSetWatch::crd()).expect("CRD");
        let version = &crd["spec"]["versions"][0];
        let field = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["health"]
            ["properties"]["unknownAfterFailedIntervals"];
        assert_eq!(field["minimum"], 1.0);
        assert_eq!(field["maximum"], 1000.0);
        assert_eq!(field["default"], 3);
        let wide: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .expect("columns")
            .iter()
            .filter(|c| c["priority"] == 1)
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(
            wide,
            vec![
                "Resource Group",
                "Mode",
                "Outdated",
                "Ready Message",
                "Degraded Message"
            ]
        );
    }
}
