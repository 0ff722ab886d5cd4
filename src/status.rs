//! From one poll's outcome and the previous status to the next status. Pure: no clock, no I/O.

use crate::crd::{ScaleSetWatchStatus, UnhealthyInstance};
use crate::health::FleetHealth;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use std::time::Duration;

pub const READY: &str = "Ready";
pub const HEALTHY: &str = "Healthy";
pub const DEGRADED: &str = "Degraded";

/// `lastPollTime` is refreshed at least this often while nothing else changes, so that a
/// steady fleet costs one status write per heartbeat instead of one per poll.
pub const HEARTBEAT: Duration = Duration::from_secs(300);

/// What one reconcile found out.
#[derive(Debug, Clone)]
pub enum Outcome<'a> {
    Polled {
        health: &'a FleetHealth,
        scale_set: &'a str,
        min_healthy_percent: u8,
    },
    /// The poll could not tell the health; `reason` is a Ready condition reason.
    Failed {
        reason: &'a str,
        message: String,
    },
    Suspended,
}

/// A condition whose status changed, worth an Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub type_: String,
    pub from: Option<String>,
    pub to: String,
    pub reason: String,
    pub message: String,
}

pub fn next_status(
    prev: Option<&ScaleSetWatchStatus>,
    outcome: &Outcome<'_>,
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> ScaleSetWatchStatus {
    let mut next = prev.cloned().unwrap_or_default();
    next.observed_generation = generation;
    let c = &mut next.conditions;
    match outcome {
        Outcome::Polled {
            health,
            scale_set,
            min_healthy_percent,
        } => {
            let counts = &health.counts;
            next.summary = Some(format!("{}/{}", counts.healthy, counts.total));
            next.instances = Some(counts.clone());
            next.healthy_percent = Some(health.healthy_percent);
            next.fault_domains = health.fault_domains.clone();
            next.update_domains = health.update_domains.clone();
            next.unhealthy_instances = health.unhealthy.clone();
            next.unhealthy_instances_omitted = health.unhealthy_omitted;
            set(
                c,
                READY,
                true,
                "PollSucceeded",
                format!("Listed {} instances of scale set {scale_set}", counts.total),
                generation,
                now,
            );
            let (reason, message) = if counts.total == 0 {
                ("NoInstances", "The scale set has no instances".to_string())
            } else if counts.unhealthy == 0 {
                (
                    "AllInstancesHealthy",
                    format!("All {} instances are healthy", counts.total),
                )
            } else if health.policy_met {
                (
                    "MinHealthyMet",
                    format!(
                        "{} of {} instances healthy ({}%), at least {min_healthy_percent}% required",
                        counts.healthy, counts.total, health.healthy_percent
                    ),
                )
            } else {
                (
                    "BelowMinHealthy",
                    format!(
                        "{} of {} instances healthy ({}%), at least {min_healthy_percent}% required",
                        counts.healthy, counts.total, health.healthy_percent
                    ),
                )
            };
            set(
                c,
                HEALTHY,
                health.policy_met,
                reason,
                message,
                generation,
                now,
            );
            if counts.unhealthy == 0 {
                set(
                    c,
                    DEGRADED,
                    false,
                    "AllInstancesHealthy",
                    "No instance is unhealthy".into(),
                    generation,
                    now,
                );
            } else {
                set(
                    c,
                    DEGRADED,
                    true,
                    "InstancesUnhealthy",
                    degraded_message(counts.unhealthy, &health.unhealthy),
                    generation,
                    now,
                );
            }
        }
        Outcome::Failed { reason, message } => {
            let message = match prev.and_then(|p| p.last_poll_time.as_ref()) {
                Some(t) if next.instances.is_some() => {
                    format!(
                        "{message}. Counts are from the last successful poll at {}",
                        t.0
                    )
                }
                _ => message.clone(),
            };
            set(c, READY, false, reason, message, generation, now);
            unknown_unless_known(c, generation, now);
        }
        Outcome::Suspended => {
            set(
                c,
                READY,
                false,
                "Suspended",
                "Polling is suspended (spec.suspend is true); counts are from the last poll".into(),
                generation,
                now,
            );
            unknown_unless_known(c, generation, now);
        }
    }

    // lastPollTime moves when anything else did, or when the heartbeat is due.
    if let Outcome::Polled { .. } = outcome {
        let changed = prev != Some(&next);
        let stale = next.last_poll_time.as_ref().is_none_or(|t| {
            now.duration_since(t.0) >= jiff::SignedDuration::try_from(HEARTBEAT).unwrap_or_default()
        });
        if changed || stale {
            next.last_poll_time = Some(Time(now));
        }
    }
    next
}

/// Healthy and Degraded stay as last observed; before any observation they are Unknown.
fn unknown_unless_known(c: &mut Vec<Condition>, generation: Option<i64>, now: jiff::Timestamp) {
    for type_ in [HEALTHY, DEGRADED] {
        if !c.iter().any(|x| x.type_ == type_) {
            c.push(Condition {
                type_: type_.into(),
                status: "Unknown".into(),
                reason: "NotYetPolled".into(),
                message: "Azure has not been polled successfully yet".into(),
                last_transition_time: Time(now),
                observed_generation: generation,
            });
        }
    }
}

fn degraded_message(unhealthy: u32, listed: &[UnhealthyInstance]) -> String {
    const SHOWN: usize = 3;
    let mut parts: Vec<String> = listed
        .iter()
        .take(SHOWN)
        .map(|u| format!("{} ({})", u.instance_id, u.reasons.join("; ")))
        .collect();
    if unhealthy as usize > SHOWN {
        parts.push(format!("and {} more", unhealthy as usize - SHOWN));
    }
    format!("{unhealthy} unhealthy: {}", parts.join(", "))
}

/// Sets a condition; `lastTransitionTime` moves only when its status changes.
fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: jiff::Timestamp,
) {
    let status = if status { "True" } else { "False" };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Time(now);
            }
            c.status = status.into();
            c.reason = reason.into();
            c.message = message;
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message,
            last_transition_time: Time(now),
            observed_generation: generation,
        }),
    }
}

/// Ready and Healthy conditions whose status differs between `prev` and `next`.
pub fn transitions(
    prev: Option<&ScaleSetWatchStatus>,
    next: &ScaleSetWatchStatus,
) -> Vec<Transition> {
    [READY, HEALTHY]
        .into_iter()
        .filter_map(|type_| {
            let new = next.conditions.iter().find(|c| c.type_ == type_)?;
            let old = prev.and_then(|p| p.conditions.iter().find(|c| c.type_ == type_));
            if old.map(|o| &o.status) == Some(&new.status) {
                return None;
            }
            Some(Transition {
                type_: type_.into(),
                from: old.map(|o| o.status.clone()),
                to: new.status.clone(),
                reason: new.reason.clone(),
                message: new.message.clone(),
            })
        })
        .collect()
}
