//! The health model: pure functions from a poll's snapshot to health counts and reasons.
//!
//! No I/O and no Kubernetes client here, so every rule is unit-tested with plain data. What
//! ARM's statuses mean (which power state, which failure, in which words) was read into the
//! snapshot when the page arrived; here the watch's policy judges it.

use crate::api::{
    DomainHealth, ExpectedPowerState, HealthPolicy, InstanceCounts, MAX_LISTED_UNHEALTHY,
    OrchestrationMode, OutdatedModelPolicy, UnhealthyInstance, ZoneHealth,
};
pub use crate::azure::arm::snapshot::PowerState;
use crate::azure::arm::snapshot::{
    AppHealth, Instance, Part, Provisioning, ScaleSetSnapshot, VmAgent,
};
use std::collections::BTreeMap;
use std::fmt;

fn is_expected(state: PowerState, expected: &[ExpectedPowerState]) -> bool {
    expected.iter().any(|e| {
        matches!(
            (e, state),
            (ExpectedPowerState::Running, PowerState::Running)
                | (ExpectedPowerState::Stopped, PowerState::Stopped)
                | (ExpectedPowerState::Deallocated, PowerState::Deallocated)
        )
    })
}

/// One reason an instance is unhealthy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    NoInstanceView {
        flexible: bool,
    },
    ProvisioningFailed {
        detail: String,
    },
    ProvisioningInProgress {
        state: String,
    },
    UnexpectedPowerState {
        state: PowerState,
        expected: Vec<ExpectedPowerState>,
    },
    VmAgentNotReady {
        detail: String,
    },
    ExtensionFailed {
        name: String,
        detail: String,
    },
    DiskFailed {
        name: String,
        detail: String,
    },
    ApplicationUnhealthy {
        detail: String,
    },
    /// Application Health still unknown or initializing after the grace period, or at an age
    /// that is not known.
    ApplicationHealthPending {
        state: &'static str,
        grace: String,
        age_known: bool,
    },
    /// Not on the scale set's latest model, with `outdatedModel: Unhealthy`.
    OutdatedModel,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoInstanceView { flexible: false } => {
                f.write_str("Azure returned no instance view for this instance")
            }
            Self::NoInstanceView { flexible: true } => f.write_str(
                "Azure returned no instance view: the scale set uses Flexible orchestration, whose \
                 VM list carries only resource IDs",
            ),
            Self::ProvisioningFailed { detail } => write!(f, "provisioning failed: {detail}"),
            Self::ProvisioningInProgress { state } => write!(f, "provisioning {state}"),
            Self::UnexpectedPowerState { state, expected } => {
                let expected: Vec<&str> = expected
                    .iter()
                    .map(|e| match e {
                        ExpectedPowerState::Running => "running",
                        ExpectedPowerState::Stopped => "stopped",
                        ExpectedPowerState::Deallocated => "deallocated",
                    })
                    .collect();
                write!(
                    f,
                    "power state {state} (expected {})",
                    expected.join(" or ")
                )
            }
            Self::VmAgentNotReady { detail } => write!(f, "VM agent not ready: {detail}"),
            Self::ExtensionFailed { name, detail } => {
                write!(f, "extension {name} failed: {detail}")
            }
            Self::DiskFailed { name, detail } => write!(f, "disk {name} failed: {detail}"),
            Self::ApplicationUnhealthy { detail } if detail.eq_ignore_ascii_case("unhealthy") => {
                f.write_str("application health unhealthy")
            }
            Self::ApplicationUnhealthy { detail } => {
                write!(f, "application health unhealthy: {detail}")
            }
            Self::ApplicationHealthPending {
                state,
                grace,
                age_known: true,
            } => write!(
                f,
                "application health {state} for longer than the {grace} grace period after creation"
            ),
            Self::ApplicationHealthPending {
                state,
                age_known: false,
                ..
            } => write!(
                f,
                "application health {state}, and the instance's creation time is unknown (no model view), so no grace period applies"
            ),
            Self::OutdatedModel => f.write_str("not on the scale set's latest model"),
        }
    }
}

/// What the model concludes about one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceHealth<'a> {
    pub instance_id: &'a str,
    pub power_state: PowerState,
    pub fault_domain: Option<i32>,
    pub update_domain: Option<i32>,
    pub zone: Option<&'a str>,
    pub app_health: &'a AppHealth,
    /// `Some(true)` when the instance is not on the latest model and the policy does not
    /// ignore that; `None` when the model view does not say.
    pub outdated_model: Option<bool>,
    pub problems: Vec<Problem>,
}

impl InstanceHealth<'_> {
    pub fn is_healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What the model concludes about the scale set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetHealth {
    pub orchestration_mode: OrchestrationMode,
    pub counts: InstanceCounts,
    /// Healthy instances in percent, rounded down; 100 when there are none.
    pub healthy_percent: u8,
    /// Whether `minHealthyPercent` is met.
    pub policy_met: bool,
    pub fault_domains: Vec<DomainHealth>,
    pub update_domains: Vec<DomainHealth>,
    pub zones: Vec<ZoneHealth>,
    /// The first [`MAX_LISTED_UNHEALTHY`] instances not on the latest model, in instance-ID
    /// order (unless the policy ignores that).
    pub outdated: Vec<String>,
    /// The first [`MAX_LISTED_UNHEALTHY`] unhealthy instances in instance-ID order.
    pub unhealthy: Vec<UnhealthyInstance>,
    pub unhealthy_omitted: u32,
}

#[cfg(test)]
impl FleetHealth {
    /// `healthy` of `total` running instances against `min_percent`, each unhealthy one with
    /// one reason: for tests of what is built on the judgement.
    pub(crate) fn example(healthy: u32, total: u32, min_percent: u8) -> Self {
        let unhealthy = total - healthy;
        Self {
            counts: InstanceCounts {
                total,
                healthy,
                unhealthy,
                running: total,
                ..Default::default()
            },
            healthy_percent: (healthy * 100).checked_div(total).map_or(100, |p| p as u8),
            policy_met: healthy * 100 >= u32::from(min_percent) * total,
            unhealthy: (0..unhealthy)
                .map(|i| UnhealthyInstance {
                    instance_id: i.to_string(),
                    reasons: vec!["disk os failed: io".into()],
                })
                .collect(),
            ..Default::default()
        }
    }
}

static NOT_REPORTED: AppHealth = AppHealth::NotReported;

/// Judges one instance against the policy, at `now` (which only the Application Health grace
/// period reads).
pub fn assess_instance<'a>(
    instance: &'a Instance,
    policy: &HealthPolicy,
    now: jiff::Timestamp,
) -> InstanceHealth<'a> {
    let instance_id = &*instance.id;
    let model = instance.model.as_ref();
    let zone = model.and_then(|m| m.zone.as_deref());
    let outdated_model = match policy.outdated_model {
        OutdatedModelPolicy::Ignore => None,
        _ => model
            .and_then(|m| m.latest_model_applied)
            .map(|latest| !latest),
    };
    let Some(view) = &instance.view else {
        return InstanceHealth {
            instance_id,
            power_state: PowerState::Unknown,
            fault_domain: None,
            update_domain: None,
            zone,
            app_health: &NOT_REPORTED,
            outdated_model,
            problems: vec![Problem::NoInstanceView {
                flexible: instance.flexible_reference,
            }],
        };
    };

    let mut problems = Vec::new();
    match &view.provisioning {
        Provisioning::Succeeded => {}
        Provisioning::InProgress(state) => problems.push(Problem::ProvisioningInProgress {
            state: (*state).to_owned(),
        }),
        Provisioning::Failed(detail) => problems.push(Problem::ProvisioningFailed {
            detail: detail.to_string(),
        }),
    }

    let power_state = view.power_state;
    if !is_expected(power_state, &policy.expected_power_states) {
        problems.push(Problem::UnexpectedPowerState {
            state: power_state,
            expected: policy.expected_power_states.clone(),
        });
    }

    // The agent and the application only report from a running VM; a stopped one that the
    // policy accepts is not faulted twice for their silence.
    if power_state == PowerState::Running {
        if policy.require_vm_agent {
            match &view.vm_agent {
                VmAgent::Ready => {}
                VmAgent::Silent => problems.push(Problem::VmAgentNotReady {
                    detail: "the VM agent reports no status".into(),
                }),
                VmAgent::NotReady(detail) => problems.push(Problem::VmAgentNotReady {
                    detail: detail.to_string(),
                }),
            }
        }
        let pending = match &view.app_health {
            AppHealth::NotReported | AppHealth::Healthy => None,
            AppHealth::Unhealthy(detail) => {
                problems.push(Problem::ApplicationUnhealthy {
                    detail: detail.to_string(),
                });
                None
            }
            AppHealth::Unknown => Some("unknown"),
            AppHealth::Initializing => Some("initializing"),
        };
        if let Some(state) = pending {
            let created = model.and_then(|m| m.time_created);
            if !within_grace(created, policy, now) {
                problems.push(Problem::ApplicationHealthPending {
                    state,
                    grace: policy.app_health_grace_period.clone(),
                    age_known: created.is_some(),
                });
            }
        }
    }

    for failure in &view.failures {
        let (name, detail) = (failure.name.to_string(), failure.detail.to_string());
        problems.push(match failure.part {
            Part::Extension => Problem::ExtensionFailed { name, detail },
            Part::Disk => Problem::DiskFailed { name, detail },
        });
    }

    if outdated_model == Some(true) && policy.outdated_model == OutdatedModelPolicy::Unhealthy {
        problems.push(Problem::OutdatedModel);
    }

    InstanceHealth {
        instance_id,
        power_state,
        fault_domain: view.fault_domain,
        update_domain: view.update_domain,
        zone,
        app_health: &view.app_health,
        outdated_model,
        problems,
    }
}

/// Whether an instance created at `created` is still within the Application Health grace
/// period. An unknown creation time gets no grace: without it, an instance stuck in "unknown"
/// (an application that never answers its probe) would count as healthy for ever.
fn within_grace(
    created: Option<jiff::Timestamp>,
    policy: &HealthPolicy,
    now: jiff::Timestamp,
) -> bool {
    let Some(created) = created else {
        return false;
    };
    let grace = policy.app_health_grace_period();
    // A creation time in the future (clock skew) is as young as can be.
    let age = now.duration_since(created);
    age < jiff::SignedDuration::try_from(grace).unwrap_or(jiff::SignedDuration::MAX)
}

/// Judges the whole scale set: what every watch of it does with the one snapshot of a poll.
pub fn assess(snapshot: &ScaleSetSnapshot, policy: &HealthPolicy) -> FleetHealth {
    assess_at(snapshot, policy, jiff::Timestamp::now())
}

/// [`assess`] at a given time.
pub fn assess_at(
    snapshot: &ScaleSetSnapshot,
    policy: &HealthPolicy,
    now: jiff::Timestamp,
) -> FleetHealth {
    let mut fleet = FleetAssessment::new(policy, now);
    for instance in snapshot.instances() {
        fleet.add(instance);
    }
    let mut health = fleet.finish();
    if snapshot.is_flexible() {
        health.orchestration_mode = OrchestrationMode::Flexible;
    }
    health
}

/// The counts of a scale set, added up one instance at a time.
struct FleetAssessment<'p> {
    policy: &'p HealthPolicy,
    now: jiff::Timestamp,
    counts: InstanceCounts,
    fault: BTreeMap<i32, DomainHealth>,
    update: BTreeMap<i32, DomainHealth>,
    zones: BTreeMap<Box<str>, ZoneHealth>,
    outdated: Vec<String>,
    unhealthy: Vec<UnhealthyInstance>,
}

impl<'p> FleetAssessment<'p> {
    fn new(policy: &'p HealthPolicy, now: jiff::Timestamp) -> Self {
        Self {
            policy,
            now,
            counts: InstanceCounts::default(),
            fault: BTreeMap::new(),
            update: BTreeMap::new(),
            zones: BTreeMap::new(),
            outdated: Vec::new(),
            unhealthy: Vec::new(),
        }
    }

    fn add(&mut self, instance: &Instance) {
        let health = assess_instance(instance, self.policy, self.now);
        let counts = &mut self.counts;
        let app = &mut counts.application_health;
        match health.app_health {
            AppHealth::NotReported => app.not_reported += 1,
            AppHealth::Healthy => app.healthy += 1,
            AppHealth::Unhealthy(_) => app.unhealthy += 1,
            AppHealth::Unknown => app.unknown += 1,
            AppHealth::Initializing => app.initializing += 1,
        }
        // Protection policies belong to scale set VMs, whose model view carries
        // latestModelApplied; a Flexible set's VMs have neither, and 0 would be a claim.
        if let Some(model) = instance
            .model
            .as_ref()
            .filter(|m| m.latest_model_applied.is_some())
        {
            let add = |count: &mut Option<u32>, yes: bool| {
                *count = Some(count.unwrap_or(0) + u32::from(yes));
            };
            add(
                &mut counts.protected_from_scale_in,
                model.protect_from_scale_in,
            );
            add(
                &mut counts.protected_from_scale_set_actions,
                model.protect_from_scale_set_actions,
            );
        }
        if let Some(outdated) = health.outdated_model {
            counts.outdated_model = Some(counts.outdated_model.unwrap_or(0) + u32::from(outdated));
            if outdated {
                self.outdated.push(health.instance_id.to_owned());
            }
        }
        counts.total += 1;
        match health.power_state {
            PowerState::Running => counts.running += 1,
            PowerState::Stopped => counts.stopped += 1,
            PowerState::Deallocated => counts.deallocated += 1,
            PowerState::Starting | PowerState::Stopping | PowerState::Deallocating => {
                counts.transitioning += 1
            }
            PowerState::Unknown => counts.power_state_unknown += 1,
        }
        let healthy = health.is_healthy();
        if healthy {
            counts.healthy += 1;
        } else {
            counts.unhealthy += 1;
        }
        count_causes(counts, &health.problems);
        for (domain, map) in [
            (health.fault_domain, &mut self.fault),
            (health.update_domain, &mut self.update),
        ] {
            if let Some(d) = domain {
                let entry = map.entry(d).or_insert_with(|| DomainHealth {
                    domain: d,
                    ..DomainHealth::default()
                });
                entry.total += 1;
                if !healthy {
                    entry.unhealthy += 1;
                }
            }
        }
        if let Some(zone) = health.zone {
            let entry = self.zones.entry(zone.into()).or_insert_with(|| ZoneHealth {
                zone: zone.to_owned(),
                ..ZoneHealth::default()
            });
            entry.total += 1;
            if !healthy {
                entry.unhealthy += 1;
            }
        }
        if !healthy {
            self.unhealthy.push(UnhealthyInstance {
                instance_id: health.instance_id.to_owned(),
                reasons: health.problems.iter().map(ToString::to_string).collect(),
            });
        }
    }

    fn finish(self) -> FleetHealth {
        let Self {
            policy,
            counts,
            fault,
            update,
            zones,
            mut outdated,
            mut unhealthy,
            ..
        } = self;
        outdated.sort_by(|a, b| instance_order(a, b));
        outdated.truncate(MAX_LISTED_UNHEALTHY);
        unhealthy.sort_by(|a, b| instance_order(&a.instance_id, &b.instance_id));
        let omitted = unhealthy.len().saturating_sub(MAX_LISTED_UNHEALTHY);
        unhealthy.truncate(MAX_LISTED_UNHEALTHY);

        let healthy_percent = if counts.total == 0 {
            100
        } else {
            // At most 100, so the narrowing cannot lose anything.
            (u64::from(counts.healthy) * 100 / u64::from(counts.total)) as u8
        };
        let policy_met = u64::from(counts.healthy) * 100
            >= u64::from(policy.min_healthy_percent) * u64::from(counts.total);

        FleetHealth {
            orchestration_mode: OrchestrationMode::Uniform,
            counts,
            healthy_percent,
            policy_met,
            fault_domains: fault.into_values().collect(),
            update_domains: update.into_values().collect(),
            zones: zones.into_values().collect(),
            outdated,
            unhealthy,
            unhealthy_omitted: u32::try_from(omitted).unwrap_or(u32::MAX),
        }
    }
}

fn count_causes(counts: &mut InstanceCounts, problems: &[Problem]) {
    let has = |f: fn(&Problem) -> bool| u32::from(problems.iter().any(f));
    counts.no_instance_view += has(|p| matches!(p, Problem::NoInstanceView { .. }));
    counts.provisioning_failed += has(|p| matches!(p, Problem::ProvisioningFailed { .. }));
    counts.provisioning_in_progress += has(|p| matches!(p, Problem::ProvisioningInProgress { .. }));
    counts.vm_agent_not_ready += has(|p| matches!(p, Problem::VmAgentNotReady { .. }));
    counts.extensions_failed += has(|p| matches!(p, Problem::ExtensionFailed { .. }));
    counts.disks_failed += has(|p| matches!(p, Problem::DiskFailed { .. }));
    counts.application_unhealthy += has(|p| matches!(p, Problem::ApplicationUnhealthy { .. }));
    counts.application_health_pending +=
        has(|p| matches!(p, Problem::ApplicationHealthPending { .. }));
}

/// Numeric instance IDs sort as numbers (2 before 10); others after them, as text.
fn instance_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::arm::model::parse_page;
    use crate::azure::arm::snapshot::View;
    use serde_json::{Value, json};

    fn status(code: &str, level: &str, message: &str) -> Value {
        json!({"code": code, "level": level, "displayStatus": code, "message": message})
    }

    /// A healthy running instance; tests change what they need.
    fn vm(id: &str) -> Value {
        json!({
            "instanceId": id,
            "properties": {
                "provisioningState": "Succeeded",
                "instanceView": {
                    "platformUpdateDomain": 0,
                    "platformFaultDomain": 0,
                    "vmAgent": {"statuses": [status("ProvisioningState/succeeded", "Info", "")]},
                    "statuses": [
                        status("ProvisioningState/succeeded", "Info", ""),
                        status("PowerState/running", "Info", "")
                    ]
                }
            }
        })
    }

    fn vms(values: Vec<Value>) -> ScaleSetSnapshot {
        let body = serde_json::to_vec(&json!({ "value": values })).expect("serializes");
        ScaleSetSnapshot::from_pages([body]).expect("parses")
    }

    fn one(v: Value, policy: &HealthPolicy) -> InstanceHealth<'static> {
        let snapshot: &'static ScaleSetSnapshot = Box::leak(Box::new(vms(vec![v])));
        assess_instance(&snapshot.instances()[0], policy, now())
    }

    /// The time every test judges at.
    fn now() -> jiff::Timestamp {
        "2026-12-01T12:00:00Z".parse().expect("time")
    }

    /// `vm(id)` with a model view: created `minutes` before [`now`], latest model, zone 1.
    fn vm_created(id: &str, minutes: i64) -> Value {
        let mut v = vm(id);
        let created = now() - jiff::SignedDuration::from_mins(minutes);
        v["properties"]["timeCreated"] = json!(created.to_string());
        v["properties"]["latestModelApplied"] = json!(true);
        v["zones"] = json!(["1"]);
        v
    }

    fn set_app_health(v: &mut Value, state: &str) {
        v["properties"]["instanceView"]["vmHealth"] =
            json!({"status": status(&format!("HealthState/{state}"), "Info", "")});
    }

    fn set_power(v: &mut Value, state: &str) {
        v["properties"]["instanceView"]["statuses"][1]["code"] =
            json!(format!("PowerState/{state}"));
    }

    #[test]
    fn healthy_instance_has_no_problems() {
        let h = one(vm("0"), &HealthPolicy::default());
        assert!(h.is_healthy(), "{:?}", h.problems);
        assert_eq!(h.power_state, PowerState::Running);
    }

    #[test]
    fn codes_compare_case_insensitively() {
        let mut v = vm("0");
        v["properties"]["instanceView"]["statuses"][1]["code"] = json!("POWERSTATE/Running");
        v["properties"]["instanceView"]["vmAgent"]["statuses"][0]["code"] =
            json!("provisioningstate/SUCCEEDED");
        assert!(one(v, &HealthPolicy::default()).is_healthy());
    }

    #[test]
    fn each_power_state_is_classified() {
        for (code, expected) in [
            ("starting", PowerState::Starting),
            ("stopping", PowerState::Stopping),
            ("stopped", PowerState::Stopped),
            ("deallocating", PowerState::Deallocating),
            ("deallocated", PowerState::Deallocated),
            ("hibernated", PowerState::Unknown),
        ] {
            let mut v = vm("0");
            set_power(&mut v, code);
            let h = one(v, &HealthPolicy::default());
            assert_eq!(h.power_state, expected, "{code}");
            assert_eq!(
                h.problems,
                vec![Problem::UnexpectedPowerState {
                    state: expected,
                    expected: vec![ExpectedPowerState::Running]
                }]
            );
        }
    }

    #[test]
    fn deallocated_is_healthy_when_the_policy_expects_it_and_the_silent_agent_is_not_held_against_it()
     {
        let policy = HealthPolicy {
            expected_power_states: vec![
                ExpectedPowerState::Running,
                ExpectedPowerState::Deallocated,
            ],
            ..HealthPolicy::default()
        };
        let mut v = vm("0");
        set_power(&mut v, "deallocated");
        v["properties"]["instanceView"]["vmAgent"] = json!({"statuses": [status("ProvisioningState/Unavailable", "Warning", "VM agent is unresponsive")]});
        let h = one(v, &policy);
        assert!(h.is_healthy(), "{:?}", h.problems);
        assert_eq!(h.problems, vec![],);
    }

    #[test]
    fn power_state_message_names_every_expected_state() {
        let policy = HealthPolicy {
            expected_power_states: vec![
                ExpectedPowerState::Running,
                ExpectedPowerState::Deallocated,
            ],
            ..HealthPolicy::default()
        };
        let mut v = vm("0");
        set_power(&mut v, "stopped");
        let h = one(v, &policy);
        assert_eq!(
            h.problems[0].to_string(),
            "power state stopped (expected running or deallocated)"
        );
    }

    #[test]
    fn vm_agent_not_ready_is_reported_with_its_words() {
        let mut v = vm("0");
        v["properties"]["instanceView"]["vmAgent"] = json!({"statuses": [status("ProvisioningState/Unavailable", "Warning", "VM agent is unresponsive.")]});
        let h = one(v.clone(), &HealthPolicy::default());
        assert_eq!(h.problems.len(), 1);
        assert_eq!(
            h.problems[0].to_string(),
            "VM agent not ready: VM agent is unresponsive."
        );
        let relaxed = HealthPolicy {
            require_vm_agent: false,
            ..HealthPolicy::default()
        };
        assert!(one(v, &relaxed).is_healthy());
    }

    #[test]
    fn missing_vm_agent_on_a_running_instance_is_not_ready() {
        let mut v = vm("0");
        v["properties"]["instanceView"]
            .as_object_mut()
            .expect("object")
            .remove("vmAgent");
        let h = one(v, &HealthPolicy::default());
        assert!(matches!(h.problems[..], [Problem::VmAgentNotReady { .. }]));
    }

    #[test]
    fn failed_extension_by_level_or_by_code() {
        for (code, level) in [
            ("ProvisioningState/failed/1", "Info"),
            ("ProvisioningState/succeeded", "Error"),
        ] {
            let mut v = vm("0");
            v["properties"]["instanceView"]["extensions"] = json!([
                {"name": "ok", "statuses": [status("ProvisioningState/succeeded", "Info", "")]},
                {"name": "healthext", "type": "ApplicationHealthLinux", "statuses": [status(code, level, "Enable failed")]}
            ]);
            let h = one(v, &HealthPolicy::default());
            assert_eq!(h.problems.len(), 1, "{code} {level}");
            assert_eq!(
                h.problems[0].to_string(),
                "extension healthext failed: Enable failed"
            );
        }
    }

    #[test]
    fn transitioning_extension_is_not_a_failure() {
        let mut v = vm("0");
        v["properties"]["instanceView"]["extensions"] = json!([
            {"name": "cse", "statuses": [status("ProvisioningState/transitioning", "Info", "Enable in progress")]}
        ]);
        assert!(one(v, &HealthPolicy::default()).is_healthy());
    }

    #[test]
    fn failed_extension_handler_is_reported_once() {
        let mut v = vm("0");
        v["properties"]["instanceView"]["vmAgent"]["extensionHandlers"] = json!([
            {"type": "Microsoft.Azure.Extensions.CustomScript", "status": status("ProvisioningState/NotReady", "Error", "Handler failed to install")}
        ]);
        let h = one(v.clone(), &HealthPolicy::default());
        assert_eq!(h.problems.len(), 1);
        assert_eq!(
            h.problems[0].to_string(),
            "extension Microsoft.Azure.Extensions.CustomScript failed: Handler failed to install"
        );
        // The extension itself also failed: one reason, by the extension's name.
        v["properties"]["instanceView"]["extensions"] = json!([
            {"name": "cse", "type": "Microsoft.Azure.Extensions.CustomScript", "statuses": [status("ProvisioningState/failed", "Error", "exit 1")]}
        ]);
        let h = one(v, &HealthPolicy::default());
        assert_eq!(h.problems.len(), 1, "{:?}", h.problems);
        assert_eq!(h.problems[0].to_string(), "extension cse failed: exit 1");
    }

    #[test]
    fn failed_disk_is_reported() {
        let mut v = vm("0");
        v["properties"]["instanceView"]["disks"] = json!([
            {"name": "os", "statuses": [status("ProvisioningState/succeeded", "Info", "")]},
            {"name": "data0", "statuses": [status("ProvisioningState/failed/DiskNotFound", "Error", "Disk data0 was not found")]}
        ]);
        let h = one(v, &HealthPolicy::default());
        assert_eq!(
            h.problems,
            vec![Problem::DiskFailed {
                name: "data0".into(),
                detail: "Disk data0 was not found".into()
            }]
        );
    }

    #[test]
    fn application_health_unhealthy_counts_and_unknown_only_after_the_grace_period() {
        // Before the grace period, "unknown" counted as healthy for ever; now only within it.
        let mut v = vm_created("0", 9);
        set_app_health(&mut v, "unknown");
        assert!(one(v.clone(), &HealthPolicy::default()).is_healthy());
        let mut v = vm_created("0", 11);
        set_app_health(&mut v, "unknown");
        assert!(!one(v, &HealthPolicy::default()).is_healthy());
        let mut v = vm("0");
        v["properties"]["instanceView"]["vmHealth"] = json!({"status": {"code": "HealthState/unhealthy", "level": "Warning", "displayStatus": "The VM is reporting itself as unhealthy."}});
        let h = one(v, &HealthPolicy::default());
        assert_eq!(
            h.problems[0].to_string(),
            "application health unhealthy: The VM is reporting itself as unhealthy."
        );
    }

    #[test]
    fn provisioning_state_from_instance_view_wins_over_properties() {
        let mut v = vm("0");
        v["properties"]["instanceView"]["statuses"][0] =
            status("ProvisioningState/updating", "Info", "");
        let h = one(v.clone(), &HealthPolicy::default());
        assert_eq!(
            h.problems,
            vec![Problem::ProvisioningInProgress {
                state: "updating".into()
            }]
        );
        // Without a ProvisioningState status, properties.provisioningState decides.
        v["properties"]["instanceView"]["statuses"] =
            json!([status("PowerState/running", "Info", "")]);
        v["properties"]["provisioningState"] = json!("Failed");
        let h = one(v, &HealthPolicy::default());
        assert!(matches!(
            h.problems[..],
            [Problem::ProvisioningFailed { .. }]
        ));
    }

    #[test]
    fn fleet_counts_domains_and_percent() {
        let mut sick = vm("10");
        sick["properties"]["instanceView"]["platformFaultDomain"] = json!(1);
        sick["properties"]["instanceView"]["disks"] = json!([{"name": "os", "statuses": [status("ProvisioningState/failed", "Error", "io")]}]);
        let mut stopped = vm("2");
        set_power(&mut stopped, "stopped");
        stopped["properties"]["instanceView"]["platformFaultDomain"] = json!(1);
        let fleet = vms(vec![
            vm("0"),
            vm("1"),
            sick,
            stopped,
            json!({"instanceId": "7"}),
        ]);
        let f = assess(&fleet, &HealthPolicy::default());
        assert_eq!(
            f.counts,
            InstanceCounts {
                total: 5,
                healthy: 2,
                unhealthy: 3,
                running: 3,
                stopped: 1,
                power_state_unknown: 1,
                disks_failed: 1,
                no_instance_view: 1,
                application_health: crate::api::ApplicationHealthCounts {
                    not_reported: 5,
                    ..Default::default()
                },
                ..Default::default()
            }
        );
        assert_eq!(f.healthy_percent, 40);
        assert!(!f.policy_met);
        assert_eq!(
            f.fault_domains,
            vec![
                DomainHealth {
                    domain: 0,
                    total: 2,
                    unhealthy: 0
                },
                DomainHealth {
                    domain: 1,
                    total: 2,
                    unhealthy: 2
                }
            ]
        );
        let ids: Vec<&str> = f.unhealthy.iter().map(|u| u.instance_id.as_str()).collect();
        assert_eq!(ids, vec!["2", "7", "10"], "numeric order");
        let met = assess(
            &fleet,
            &HealthPolicy {
                min_healthy_percent: 40,
                ..HealthPolicy::default()
            },
        );
        assert!(met.policy_met);
        let unmet = assess(
            &fleet,
            &HealthPolicy {
                min_healthy_percent: 41,
                ..HealthPolicy::default()
            },
        );
        assert!(!unmet.policy_met);
    }

    #[test]
    fn empty_fleet_is_healthy_and_full() {
        let f = assess(&ScaleSetSnapshot::default(), &HealthPolicy::default());
        assert_eq!(f.healthy_percent, 100);
        assert!(f.policy_met);
    }

    #[test]
    fn unhealthy_list_is_bounded_and_counts_the_rest() {
        let fleet: Vec<Value> = (0..(MAX_LISTED_UNHEALTHY + 7))
            .map(|i| json!({"instanceId": i.to_string()}))
            .collect();
        let f = assess(&vms(fleet), &HealthPolicy::default());
        assert_eq!(f.unhealthy.len(), MAX_LISTED_UNHEALTHY);
        assert_eq!(f.unhealthy_omitted, 7);
        assert_eq!(f.counts.unhealthy as usize, MAX_LISTED_UNHEALTHY + 7);
    }

    #[test]
    fn parser_tolerates_nulls_wrong_types_and_unknown_fields() {
        let page = json!({
            "value": [
                {
                    "instanceId": 3,
                    "unknownTopLevel": {"deep": [1, 2, {"x": null}]},
                    "properties": {
                        "provisioningState": null,
                        "instanceView": {
                            "platformFaultDomain": "not a number",
                            "platformUpdateDomain": [1],
                            "vmAgent": "n/a",
                            "disks": null,
                            "extensions": {"unexpected": "object"},
                            "vmHealth": null,
                            "statuses": ["a string", null, {"code": "PowerState/running", "level": 7}],
                            "somethingNew": true
                        }
                    }
                }
            ],
            "nextLink": null
        });
        let body = serde_json::to_vec(&page).expect("serializes");
        let parsed = parse_page(&body).expect("tolerated");
        assert_eq!(parsed.instances.len(), 1);
        assert_eq!(&*parsed.instances[0].id, "3");
        let view: &View = parsed.instances[0].view.as_ref().expect("view kept");
        assert_eq!(view.fault_domain, None);
        assert_eq!(view.update_domain, None);
        assert_eq!(view.vm_agent, VmAgent::Silent);
        assert_eq!(
            view.power_state,
            PowerState::Running,
            "the one status object is read"
        );
        let h = assess_instance(&parsed.instances[0], &HealthPolicy::default(), now());
        assert_eq!(h.power_state, PowerState::Running);
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        assert!(parse_page(b"{\"value\": [").is_err());
        assert!(parse_page(b"<html>").is_err());
    }

    #[test]
    fn a_page_without_a_list_of_vm_objects_is_broken_not_empty() {
        for body in [
            r#"{}"#,
            r#"{"nextLink": null}"#,
            r#"{"value": null}"#,
            r#"{"value": {"instanceId": "0"}}"#,
            r#"{"value": [{"instanceId": "0"}, "not an object"]}"#,
            r#"{"value": [null]}"#,
            r#"{"value": [[1]]}"#,
            r#"[]"#,
        ] {
            assert!(parse_page(body.as_bytes()).is_err(), "{body} parsed");
        }
        assert_eq!(
            parse_page(br#"{"value": []}"#)
                .expect("empty list")
                .instances
                .len(),
            0
        );
    }

    #[test]
    fn four_application_health_states_are_counted_apart_and_add_up_to_total() {
        let mut fleet = Vec::new();
        for (i, state) in ["healthy", "unhealthy", "unknown", "initializing"]
            .iter()
            .enumerate()
        {
            let mut v = vm_created(&i.to_string(), 1);
            set_app_health(&mut v, state);
            fleet.push(v);
        }
        let mut odd = vm_created("4", 1);
        set_app_health(&mut odd, "Degraded");
        fleet.push(odd);
        fleet.push(vm_created("5", 1));
        fleet.push(json!({"instanceId": "6"}));
        let f = assess_at(&vms(fleet), &HealthPolicy::default(), now());
        let a = &f.counts.application_health;
        assert_eq!(
            (
                a.healthy,
                a.unhealthy,
                a.unknown,
                a.initializing,
                a.not_reported
            ),
            (1, 1, 2, 1, 2),
            "an unknown HealthState reads as unknown; no vmHealth and no view are not reported"
        );
        assert_eq!(
            a.healthy + a.unhealthy + a.unknown + a.initializing + a.not_reported,
            f.counts.total
        );
        // Within the grace period only the unhealthy one (and the one without a view) is unhealthy.
        assert_eq!(f.counts.unhealthy, 2);
        assert_eq!(f.counts.application_health_pending, 0);
    }

    #[test]
    fn unknown_and_initializing_count_as_healthy_only_within_the_grace_period_after_creation() {
        let policy = HealthPolicy::default();
        assert_eq!(policy.app_health_grace_period, "10m");
        for state in ["unknown", "initializing", "INITIALIZING"] {
            let mut young = vm_created("0", 9);
            set_app_health(&mut young, state);
            assert!(one(young, &policy).is_healthy(), "{state} at 9 minutes");
            let mut old = vm_created("0", 10);
            set_app_health(&mut old, state);
            let h = one(old, &policy);
            assert_eq!(
                h.problems,
                vec![Problem::ApplicationHealthPending {
                    state: if state == "unknown" {
                        "unknown"
                    } else {
                        "initializing"
                    },
                    grace: "10m".into(),
                    age_known: true
                }],
                "{state} at 10 minutes"
            );
            assert!(h.problems[0].to_string().contains("10m grace period"));
        }
        // Without timeCreated (listed with $select, or an old api-version) there is no grace.
        let mut ageless = vm("0");
        set_app_health(&mut ageless, "initializing");
        let h = one(ageless, &policy);
        assert!(matches!(
            h.problems[..],
            [Problem::ApplicationHealthPending {
                age_known: false,
                ..
            }]
        ));
        // A longer grace period, and none at all.
        let mut v = vm_created("0", 30);
        set_app_health(&mut v, "unknown");
        let long = HealthPolicy {
            app_health_grace_period: "1h".into(),
            ..HealthPolicy::default()
        };
        assert!(one(v.clone(), &long).is_healthy());
        let none = HealthPolicy {
            app_health_grace_period: "0s".into(),
            ..HealthPolicy::default()
        };
        let mut fresh = vm_created("0", 0);
        set_app_health(&mut fresh, "initializing");
        assert!(!one(fresh, &none).is_healthy());
        // A creation time in the future (clock skew) is young, not an overflow.
        let mut future = vm_created("0", -60);
        set_app_health(&mut future, "initializing");
        assert!(one(future, &policy).is_healthy());
        let f = assess_at(&vms(vec![v]), &HealthPolicy::default(), now());
        assert_eq!(f.counts.application_health_pending, 1);
        assert_eq!(f.counts.application_health.unknown, 1);
    }

    #[test]
    fn outdated_model_is_counted_and_listed_and_unhealthy_only_when_the_policy_says_so() {
        let mut fleet: Vec<Value> = (0..4).map(|i| vm_created(&i.to_string(), 60)).collect();
        for i in [3, 1] {
            fleet[i]["properties"]["latestModelApplied"] = json!(false);
        }
        fleet[2]["properties"]["protectionPolicy"] =
            json!({"protectFromScaleIn": true, "protectFromScaleSetActions": false});
        fleet[3]["properties"]["protectionPolicy"] =
            json!({"protectFromScaleIn": true, "protectFromScaleSetActions": true});
        let fleet = vms(fleet);
        let report = assess_at(&fleet, &HealthPolicy::default(), now());
        assert_eq!(report.counts.outdated_model, Some(2));
        assert_eq!(report.outdated, vec!["1", "3"]);
        assert_eq!(report.counts.unhealthy, 0, "Report is not unhealthy");
        assert_eq!(report.counts.protected_from_scale_in, Some(2));
        assert_eq!(report.counts.protected_from_scale_set_actions, Some(1));
        let strict = HealthPolicy {
            outdated_model: OutdatedModelPolicy::Unhealthy,
            ..HealthPolicy::default()
        };
        let f = assess_at(&fleet, &strict, now());
        assert_eq!((f.counts.unhealthy, f.counts.outdated_model), (2, Some(2)));
        assert_eq!(
            f.unhealthy[0].reasons,
            vec!["not on the scale set's latest model"]
        );
        let ignore = HealthPolicy {
            outdated_model: OutdatedModelPolicy::Ignore,
            ..HealthPolicy::default()
        };
        let f = assess_at(&fleet, &ignore, now());
        assert_eq!(f.counts.outdated_model, None);
        assert!(f.outdated.is_empty());
        // Without the model view nothing is known, so nothing is claimed (not 0).
        let trimmed = assess_at(&vms(vec![vm("0")]), &strict, now());
        assert_eq!(trimmed.counts.outdated_model, None);
        assert_eq!(trimmed.counts.protected_from_scale_in, None);
        assert!(trimmed.zones.is_empty());
    }

    #[test]
    fn zones_are_counted_beside_the_domains() {
        let mut fleet: Vec<Value> = (0..6).map(|i| vm_created(&i.to_string(), 60)).collect();
        for (i, v) in fleet.iter_mut().enumerate() {
            v["zones"] = json!([((i % 3) + 1).to_string()]);
        }
        fleet[4]["properties"]["instanceView"]["disks"] = json!([{"name": "os", "statuses": [status("ProvisioningState/failed", "Error", "io")]}]);
        let f = assess_at(&vms(fleet), &HealthPolicy::default(), now());
        let zones: Vec<(&str, u32, u32)> = f
            .zones
            .iter()
            .map(|z| (z.zone.as_str(), z.total, z.unhealthy))
            .collect();
        assert_eq!(zones, vec![("1", 2, 0), ("2", 2, 1), ("3", 2, 0)]);
    }
}
