//! From one poll's outcome and the previous status to the next status. Pure: no clock, no I/O.

use crate::crd::{ScaleSetWatchStatus, UnhealthyInstance};
use crate::health::FleetHealth;
use crate::schedule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use std::time::Duration;

pub const READY: &str = "Ready";
pub const HEALTHY: &str = "Healthy";
pub const DEGRADED: &str = "Degraded";

/// `lastPollTime` is refreshed at least this often while nothing else changes, so that a
/// steady fleet costs one status write per heartbeat instead of one per poll. The default;
/// the controller's is configurable (`--status-heartbeat`).
pub const HEARTBEAT: Duration = schedule::DEFAULT_HEARTBEAT;

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
    next_status_with_heartbeat(prev, outcome, generation, now, Some(HEARTBEAT))
}

/// [`next_status`] with `lastPollTime` refreshed at least every `heartbeat` while nothing
/// else changes (`None`: only when something else changes).
pub fn next_status_with_heartbeat(
    prev: Option<&ScaleSetWatchStatus>,
    outcome: &Outcome<'_>,
    generation: Option<i64>,
    now: jiff::Timestamp,
    heartbeat: Option<Duration>,
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
        // A lastPollTime in the future (another replica's clock) is not stale.
        let since_last = next
            .last_poll_time
            .as_ref()
            .map(|t| Duration::try_from(now.duration_since(t.0)).unwrap_or_default());
        let stale = schedule::heartbeat_due(since_last, heartbeat);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::InstanceCounts;

    fn t(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + secs).expect("valid time")
    }

    fn fleet(healthy: u32, total: u32, min_percent: u8) -> FleetHealth {
        let unhealthy = total - healthy;
        FleetHealth {
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

    fn polled(f: &FleetHealth, min: u8) -> Outcome<'_> {
        Outcome::Polled {
            health: f,
            scale_set: "web",
            min_healthy_percent: min,
        }
    }

    fn cond<'a>(s: &'a ScaleSetWatchStatus, type_: &str) -> &'a Condition {
        s.conditions
            .iter()
            .find(|c| c.type_ == type_)
            .expect("condition present")
    }

    #[test]
    fn first_successful_poll_sets_everything() {
        let f = fleet(3, 4, 100);
        let s = next_status(None, &polled(&f, 100), Some(2), t(0));
        assert_eq!(s.summary.as_deref(), Some("3/4"));
        assert_eq!(s.observed_generation, Some(2));
        assert_eq!(s.last_poll_time, Some(Time(t(0))));
        assert_eq!(cond(&s, READY).status, "True");
        assert_eq!(cond(&s, READY).reason, "PollSucceeded");
        assert_eq!(cond(&s, HEALTHY).status, "False");
        assert_eq!(cond(&s, HEALTHY).reason, "BelowMinHealthy");
        assert_eq!(cond(&s, DEGRADED).status, "True");
        assert_eq!(
            cond(&s, DEGRADED).message,
            "1 unhealthy: 0 (disk os failed: io)"
        );
        assert_eq!(cond(&s, HEALTHY).observed_generation, Some(2));
    }

    #[test]
    fn min_healthy_met_but_degraded() {
        let f = fleet(9, 10, 80);
        let s = next_status(None, &polled(&f, 80), None, t(0));
        assert_eq!(cond(&s, HEALTHY).status, "True");
        assert_eq!(cond(&s, HEALTHY).reason, "MinHealthyMet");
        assert_eq!(cond(&s, DEGRADED).status, "True");
    }

    #[test]
    fn all_healthy_and_empty() {
        let f = fleet(4, 4, 100);
        let s = next_status(None, &polled(&f, 100), None, t(0));
        assert_eq!(cond(&s, HEALTHY).reason, "AllInstancesHealthy");
        assert_eq!(cond(&s, DEGRADED).status, "False");
        let e = fleet(0, 0, 100);
        let s = next_status(None, &polled(&e, 100), None, t(0));
        assert_eq!(cond(&s, HEALTHY).reason, "NoInstances");
        assert_eq!(cond(&s, HEALTHY).status, "True");
    }

    #[test]
    fn unchanged_poll_changes_nothing_until_the_heartbeat() {
        let f = fleet(4, 4, 100);
        let first = next_status(None, &polled(&f, 100), None, t(0));
        let second = next_status(Some(&first), &polled(&f, 100), None, t(60));
        assert_eq!(second, first, "nothing to write one interval later");
        let later = next_status(
            Some(&first),
            &polled(&f, 100),
            None,
            t(HEARTBEAT.as_secs() as i64),
        );
        assert_eq!(
            later.last_poll_time,
            Some(Time(t(HEARTBEAT.as_secs() as i64)))
        );
        assert_eq!(cond(&later, READY).last_transition_time, Time(t(0)));
    }

    #[test]
    fn heartbeat_is_configurable_and_off_means_only_changes_are_written() {
        let f = fleet(4, 4, 100);
        let first = next_status(None, &polled(&f, 100), None, t(0));
        let beat = |h: Option<Duration>, secs: i64| {
            next_status_with_heartbeat(Some(&first), &polled(&f, 100), None, t(secs), h)
        };
        let minute = Some(Duration::from_secs(60));
        assert_eq!(beat(minute, 59), first);
        assert_eq!(beat(minute, 60).last_poll_time, Some(Time(t(60))));
        assert_eq!(
            beat(None, 86_400),
            first,
            "off: a day later, still nothing to write"
        );
        let bad = fleet(3, 4, 100);
        let changed =
            next_status_with_heartbeat(Some(&first), &polled(&bad, 100), None, t(90), None);
        assert_eq!(
            changed.last_poll_time,
            Some(Time(t(90))),
            "a change still moves it"
        );
    }

    #[test]
    fn change_in_counts_refreshes_last_poll_time_and_transition_only_on_status_change() {
        let good = fleet(4, 4, 100);
        let bad = fleet(3, 4, 100);
        let worse = fleet(2, 4, 100);
        let s0 = next_status(None, &polled(&good, 100), None, t(0));
        let s1 = next_status(Some(&s0), &polled(&bad, 100), None, t(60));
        assert_eq!(s1.last_poll_time, Some(Time(t(60))));
        assert_eq!(cond(&s1, HEALTHY).last_transition_time, Time(t(60)));
        assert_eq!(
            cond(&s1, READY).last_transition_time,
            Time(t(0)),
            "Ready stayed True"
        );
        let s2 = next_status(Some(&s1), &polled(&worse, 100), None, t(120));
        assert_eq!(
            cond(&s2, HEALTHY).last_transition_time,
            Time(t(60)),
            "still False"
        );
        assert_eq!(
            cond(&s2, HEALTHY).message,
            "2 of 4 instances healthy (50%), at least 100% required"
        );
        assert_eq!(
            transitions(Some(&s0), &s1),
            vec![Transition {
                type_: HEALTHY.into(),
                from: Some("True".into()),
                to: "False".into(),
                reason: "BelowMinHealthy".into(),
                message: "3 of 4 instances healthy (75%), at least 100% required".into(),
            }]
        );
        assert!(transitions(Some(&s1), &s2).is_empty());
    }

    #[test]
    fn failed_poll_keeps_last_counts_and_says_so() {
        let f = fleet(4, 4, 100);
        let ok = next_status(None, &polled(&f, 100), None, t(0));
        let failed = next_status(
            Some(&ok),
            &Outcome::Failed {
                reason: "Throttled",
                message: "throttled by ARM".into(),
            },
            None,
            t(60),
        );
        assert_eq!(failed.instances, ok.instances);
        assert_eq!(failed.summary, ok.summary);
        assert_eq!(failed.last_poll_time, ok.last_poll_time);
        assert_eq!(cond(&failed, READY).status, "False");
        assert_eq!(cond(&failed, READY).reason, "Throttled");
        assert!(
            cond(&failed, READY)
                .message
                .contains("Counts are from the last successful poll")
        );
        assert_eq!(
            cond(&failed, HEALTHY),
            cond(&ok, HEALTHY),
            "Healthy is left as last known"
        );
        let ts = transitions(Some(&ok), &failed);
        assert_eq!(ts.len(), 1);
        assert_eq!(ts[0].type_, READY);
    }

    #[test]
    fn failure_before_any_poll_leaves_health_unknown() {
        let s = next_status(
            None,
            &Outcome::Failed {
                reason: "CredentialsNotFound",
                message: "Secret ns/x not found".into(),
            },
            Some(1),
            t(0),
        );
        assert_eq!(cond(&s, READY).message, "Secret ns/x not found");
        assert_eq!(cond(&s, HEALTHY).status, "Unknown");
        assert_eq!(cond(&s, DEGRADED).status, "Unknown");
        assert!(s.instances.is_none());
        assert!(s.last_poll_time.is_none());
    }

    #[test]
    fn suspended_is_not_ready() {
        let f = fleet(4, 4, 100);
        let ok = next_status(None, &polled(&f, 100), None, t(0));
        let s = next_status(Some(&ok), &Outcome::Suspended, None, t(10));
        assert_eq!(cond(&s, READY).reason, "Suspended");
        assert_eq!(s.instances, ok.instances);
    }
}
