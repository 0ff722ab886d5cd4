//! From one poll's outcome and the previous status to the next status. Pure: no clock, no I/O.

use crate::api::{Cloud, ScaleSetWatchSpec, ScaleSetWatchStatus, UnhealthyInstance, ZoneHealth};
use crate::azure::schedule;
use crate::health::{FleetHealth, Reason};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use std::time::Duration;

pub const READY: &str = "Ready";
pub const HEALTHY: &str = "Healthy";
pub const DEGRADED: &str = "Degraded";

/// `lastPollTime` is refreshed at least this often while nothing else changes, so that a
/// steady fleet costs one status write per heartbeat instead of one per poll. The default;
/// the controller's is configurable (`--status-heartbeat`).
pub const HEARTBEAT: Duration = schedule::DEFAULT_HEARTBEAT;

// Bounds on what Azure can make the status hold, whatever it returns. A status that etcd or the
// API server refuses can never be written again: it freezes, perhaps still saying Healthy.

/// One reason of one instance (ARM's extension messages can be megabytes).
pub const MAX_REASON_BYTES: usize = 512;
/// Reasons listed per instance; the last one then says how many more there were.
pub const MAX_REASONS_PER_INSTANCE: usize = 8;
/// An instance ID (a number, or a VM name of at most 64 characters, from a sane ARM).
pub const MAX_INSTANCE_ID_BYTES: usize = 128;
/// Fault or update domains listed (Azure has at most 5 fault and 20 update domains).
pub const MAX_DOMAINS: usize = 32;
/// A condition's message (Kubernetes refuses more than 32768 bytes).
pub const MAX_CONDITION_MESSAGE_BYTES: usize = 4096;
/// The part of a failed poll's message that comes from Azure or Entra.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 1024;
/// The whole status, serialized as JSON. Listed instances are dropped from the end (and
/// counted in unhealthyInstancesOmitted) until it fits; everything else is bounded above, so
/// that always suffices.
pub const MAX_STATUS_BYTES: usize = 128 * 1024;

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
        reason: Reason,
        message: String,
        stale_after: StaleAfter,
    },
    Suspended,
}

/// How long failed polls may leave Healthy and Degraded as last observed: `failed_intervals`
/// poll intervals, counted from the first failed poll, after which both become Unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleAfter {
    pub interval: Duration,
    pub failed_intervals: u32,
}

impl StaleAfter {
    pub fn of(spec: &ScaleSetWatchSpec) -> Self {
        Self {
            interval: spec.interval(),
            failed_intervals: spec.health.unknown_after_failed_intervals.max(1),
        }
    }

    fn duration(self) -> jiff::SignedDuration {
        jiff::SignedDuration::try_from(self.interval.saturating_mul(self.failed_intervals))
            .unwrap_or(jiff::SignedDuration::MAX)
    }
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

/// The next status. `target` (see [`target_of`]) names what this reconcile polled; `None`
/// (the `check` command) tracks no target.
pub fn next_status(
    prev: Option<&ScaleSetWatchStatus>,
    outcome: &Outcome<'_>,
    target: Option<&str>,
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> ScaleSetWatchStatus {
    next_status_with_heartbeat(prev, outcome, target, generation, now, Some(HEARTBEAT))
}

/// [`next_status`] with `lastPollTime` refreshed at least every `heartbeat` while nothing
/// else changes (`None`: only when something else changes).
pub fn next_status_with_heartbeat(
    prev: Option<&ScaleSetWatchStatus>,
    outcome: &Outcome<'_>,
    target: Option<&str>,
    generation: Option<i64>,
    now: jiff::Timestamp,
    heartbeat: Option<Duration>,
) -> ScaleSetWatchStatus {
    let mut next = prev.cloned().unwrap_or_default();
    next.observed_generation = generation;
    if !matches!(outcome, Outcome::Polled { .. }) {
        forget_another_targets_counts(&mut next, target, generation, now);
    }
    if let Some(t) = target {
        next.target = Some(t.to_owned());
    }
    match outcome {
        Outcome::Polled {
            health,
            scale_set,
            min_healthy_percent,
        } => {
            let counts = &health.counts;
            next.orchestration_mode = Some(health.orchestration_mode);
            next.summary = Some(format!("{}/{}", counts.healthy, counts.total));
            next.instances = Some(counts.clone());
            next.healthy_percent = Some(health.healthy_percent);
            next.fault_domains = health.fault_domains.clone();
            next.update_domains = health.update_domains.clone();
            next.zones = health.zones.clone();
            next.outdated_instances = health.outdated.clone();
            next.unhealthy_instances = health.unhealthy.clone();
            next.unhealthy_instances_omitted = health.unhealthy_omitted;
            bound_lists(&mut next);
            let c = &mut next.conditions;
            set(
                c,
                READY,
                true,
                Reason::PollSucceeded,
                format!("Listed {} instances of scale set {scale_set}", counts.total),
                generation,
                now,
            );
            let (reason, message) = if counts.total == 0 {
                (
                    Reason::NoInstances,
                    "The scale set has no instances".to_string(),
                )
            } else if counts.unhealthy == 0 {
                (
                    Reason::AllInstancesHealthy,
                    format!("All {} instances are healthy", counts.total),
                )
            } else if health.policy_met {
                (
                    Reason::MinHealthyMet,
                    format!(
                        "{} of {} instances healthy ({}%), at least {min_healthy_percent}% required",
                        counts.healthy, counts.total, health.healthy_percent
                    ),
                )
            } else {
                (
                    Reason::BelowMinHealthy,
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
                    Reason::AllInstancesHealthy,
                    "No instance is unhealthy".into(),
                    generation,
                    now,
                );
            } else {
                set(
                    c,
                    DEGRADED,
                    true,
                    Reason::InstancesUnhealthy,
                    degraded_message(counts.unhealthy, &next.unhealthy_instances, &next.zones),
                    generation,
                    now,
                );
            }
        }
        Outcome::Failed {
            reason,
            message,
            stale_after,
        } => {
            let message = truncate(message, MAX_ERROR_MESSAGE_BYTES);
            let message = match next.last_poll_time.as_ref() {
                Some(t) if next.instances.is_some() => {
                    format!(
                        "{message}. Counts are from the last successful poll at {}",
                        t.0
                    )
                }
                _ => message,
            };
            let c = &mut next.conditions;
            set(c, READY, false, *reason, message, generation, now);
            unknown_unless_known(c, generation, now);
            if next.instances.is_some() {
                unknown_when_stale(c, *reason, *stale_after, generation, now);
            }
        }
        Outcome::Suspended => {
            let message = if next.instances.is_some() {
                "Polling is suspended (spec.suspend is true); counts are from the last poll"
            } else {
                "Polling is suspended (spec.suspend is true)"
            };
            let c = &mut next.conditions;
            set(
                c,
                READY,
                false,
                Reason::Suspended,
                message.into(),
                generation,
                now,
            );
            unknown_unless_known(c, generation, now);
        }
    }

    // Also bounds what an older version of the controller wrote.
    bound_lists(&mut next);
    fit_budget(&mut next);

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
                reason: Reason::NotYetPolled.into(),
                message: "Azure has not been polled successfully yet".into(),
                last_transition_time: Time(now),
                observed_generation: generation,
            });
        }
    }
}

/// Healthy and Degraded describe the last successful poll. Once polls have failed for
/// `stale_after`, that is too old for a gate to act on: both become Unknown until a poll
/// succeeds again (the counts stay; they are labelled as the last successful poll's).
fn unknown_when_stale(
    c: &mut Vec<Condition>,
    reason: Reason,
    stale_after: StaleAfter,
    generation: Option<i64>,
    now: jiff::Timestamp,
) {
    // A time in the future (a skewed clock, an edited status) would keep old health standing
    // for as long as the skew; polls count as failing from now instead.
    if let Some(ready) = c.iter_mut().find(|x| x.type_ == READY)
        && ready.last_transition_time.0 > now
    {
        ready.last_transition_time = Time(now);
    }
    let Some(since) = failing_since(c) else {
        return;
    };
    if now.duration_since(since) < stale_after.duration() {
        return;
    }
    // Whole seconds: what the API server keeps of a time, so the message reads back the same.
    let since = jiff::Timestamp::from_second(since.as_second()).unwrap_or(since);
    let message = format!(
        "No poll has succeeded since {since} (Ready is False: {reason}), {} or more poll \
         intervals of {:?}; the counts are from the last successful poll and may be out of date",
        stale_after.failed_intervals, stale_after.interval
    );
    for type_ in [HEALTHY, DEGRADED] {
        set_status(
            c,
            type_,
            "Unknown",
            Reason::PollsFailing,
            message.clone(),
            generation,
            now,
        );
    }
}

/// When polls began failing: Ready turned False then (or the watch was suspended, and no poll
/// has succeeded since then either). `lastPollTime` cannot tell, as it is refreshed only every
/// few minutes while nothing changes.
fn failing_since(c: &[Condition]) -> Option<jiff::Timestamp> {
    c.iter()
        .find(|x| x.type_ == READY && x.status == "False")
        .map(|ready| ready.last_transition_time.0)
}

/// How long until Healthy and Degraded turn Unknown should polls keep failing, so that the
/// next attempt comes no later; `None` when no such turn is pending.
pub fn until_stale(
    status: &ScaleSetWatchStatus,
    stale_after: StaleAfter,
    now: jiff::Timestamp,
) -> Option<Duration> {
    status.instances.as_ref()?;
    let since = failing_since(&status.conditions)?.min(now);
    let healthy = status.conditions.iter().find(|c| c.type_ == HEALTHY)?;
    if healthy.status == "Unknown" {
        return None;
    }
    let left = stale_after
        .duration()
        .checked_sub(now.duration_since(since))
        .unwrap_or_default();
    Some(Duration::try_from(left).unwrap_or_default())
}

fn degraded_message(unhealthy: u32, listed: &[UnhealthyInstance], zones: &[ZoneHealth]) -> String {
    const SHOWN: usize = 3;
    // One zone holding every unhealthy instance is the news: a zonal outage, not a fleet's.
    let mut sick = zones.iter().filter(|z| z.unhealthy > 0);
    let zone = match (sick.next(), sick.next()) {
        (Some(z), None) if z.unhealthy == unhealthy && zones.len() > 1 => Some(z),
        _ => None,
    };
    let mut parts: Vec<String> = listed
        .iter()
        .take(SHOWN)
        .map(|u| format!("{} ({})", u.instance_id, u.reasons.join("; ")))
        .collect();
    if unhealthy as usize > SHOWN {
        parts.push(format!("and {} more", unhealthy as usize - SHOWN));
    }
    match zone {
        Some(z) => format!(
            "{unhealthy} unhealthy, all in zone {} ({} of its {} instances): {}",
            z.zone,
            z.unhealthy,
            z.total,
            parts.join(", ")
        ),
        None => format!("{unhealthy} unhealthy: {}", parts.join(", ")),
    }
}

/// Sets a condition; `lastTransitionTime` moves only when its status changes.
fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: Reason,
    message: String,
    generation: Option<i64>,
    now: jiff::Timestamp,
) {
    let status = if status { "True" } else { "False" };
    set_status(conditions, type_, status, reason, message, generation, now);
}

fn set_status(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: Reason,
    message: String,
    generation: Option<i64>,
    now: jiff::Timestamp,
) {
    let message = truncate(&message, MAX_CONDITION_MESSAGE_BYTES);
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

/// What a watch's counts describe: the scale set, where it lives, and whose identity reads it.
/// Secret contents are not part of it (a rotated secret still reads the same scale set).
pub fn target_of(spec: &ScaleSetWatchSpec, default_cloud: Cloud) -> String {
    let credentials = match &spec.credentials {
        Some(c) => format!("Secret {}", c.secret_ref.name),
        None => "controller identity".to_owned(),
    };
    format!(
        "{}/{}/{}/{} ({credentials})",
        spec.cloud.unwrap_or(default_cloud).as_str(),
        spec.subscription_id,
        spec.resource_group,
        spec.scale_set_name
    )
}

/// Azure compares names case-insensitively; Kubernetes names are lowercase anyway.
fn same_target(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// When the spec names another target than the counts describe, and this reconcile brought no
/// new counts, the old counts must not stand for the new target: they go, and Healthy and
/// Degraded become Unknown until the new target is polled.
fn forget_another_targets_counts(
    next: &mut ScaleSetWatchStatus,
    target: Option<&str>,
    generation: Option<i64>,
    now: jiff::Timestamp,
) {
    let Some(target) = target else { return };
    let before = match next.target.as_deref() {
        Some(before) if same_target(before, target) => return,
        Some(before) => before.to_owned(),
        // Counts written before targets were recorded may be of anything.
        None if next.instances.is_some() => "an unrecorded target".to_owned(),
        None => return,
    };
    next.summary = None;
    next.instances = None;
    next.healthy_percent = None;
    next.fault_domains.clear();
    next.update_domains.clear();
    next.zones.clear();
    next.outdated_instances.clear();
    next.unhealthy_instances.clear();
    next.unhealthy_instances_omitted = 0;
    next.last_poll_time = None;
    let message = format!(
        "The spec now names {target}, which has not been polled successfully yet; the counts of {before} were cleared"
    );
    for type_ in [HEALTHY, DEGRADED] {
        set_status(
            &mut next.conditions,
            type_,
            "Unknown",
            Reason::TargetChanged,
            message.clone(),
            generation,
            now,
        );
    }
}

/// Bounds every list and string of the status that Azure fills (see the `MAX_*` constants).
/// Idempotent, so that an unchanged fleet gives an unchanged status.
fn bound_lists(status: &mut ScaleSetWatchStatus) {
    status.fault_domains.truncate(MAX_DOMAINS);
    status.update_domains.truncate(MAX_DOMAINS);
    status.zones.truncate(MAX_DOMAINS);
    for z in &mut status.zones {
        z.zone = truncate(&z.zone, MAX_INSTANCE_ID_BYTES);
    }
    status
        .outdated_instances
        .truncate(crate::api::MAX_LISTED_UNHEALTHY);
    for id in &mut status.outdated_instances {
        *id = truncate(id, MAX_INSTANCE_ID_BYTES);
    }
    let listed = status.unhealthy_instances.len();
    status
        .unhealthy_instances
        .truncate(crate::api::MAX_LISTED_UNHEALTHY);
    let dropped = listed - status.unhealthy_instances.len();
    status.unhealthy_instances_omitted = status
        .unhealthy_instances_omitted
        .saturating_add(u32::try_from(dropped).unwrap_or(u32::MAX));
    for u in &mut status.unhealthy_instances {
        u.instance_id = truncate(&u.instance_id, MAX_INSTANCE_ID_BYTES);
        if u.reasons.len() > MAX_REASONS_PER_INSTANCE {
            let kept = MAX_REASONS_PER_INSTANCE - 1;
            let more = u.reasons.len() - kept;
            u.reasons.truncate(kept);
            u.reasons.push(format!("and {more} more reasons"));
        }
        for r in &mut u.reasons {
            *r = truncate(r, MAX_REASON_BYTES);
        }
    }
    for c in &mut status.conditions {
        c.message = truncate(&c.message, MAX_CONDITION_MESSAGE_BYTES);
    }
}

/// Drops listed instances from the end until the serialized status fits [`MAX_STATUS_BYTES`].
fn fit_budget(status: &mut ScaleSetWatchStatus) {
    // Room for what changes while dropping (the omitted count appearing or growing by a digit)
    // and after (lastPollTime being set).
    const SLACK: usize = 128;
    let mut size = json_len(status);
    while size.saturating_add(SLACK) > MAX_STATUS_BYTES {
        let Some(dropped) = status.unhealthy_instances.pop() else {
            break;
        };
        size = size.saturating_sub(json_len(&dropped).saturating_add(1));
        status.unhealthy_instances_omitted = status.unhealthy_instances_omitted.saturating_add(1);
    }
}

/// The length of `value` serialized as JSON, without keeping the bytes.
pub fn json_len<T: serde::Serialize>(value: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing to a counter cannot fail, and these types always serialize; should one ever
    // fail, it counts as too large.
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

/// At most `max` bytes, cut on a character boundary and ending in "…" when cut, so that
/// truncating again changes nothing.
pub fn truncate(s: &str, max: usize) -> String {
    const ELLIPSIS: &str = "…";
    if s.len() <= max {
        return s.to_owned();
    }
    let ellipsis = if max >= ELLIPSIS.len() { ELLIPSIS } else { "" };
    let mut end = max - ellipsis.len();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &s[..end])
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

    const TARGET: &str = "AzurePublic/s/rg/web (controller identity)";

    /// Polls every 60s; Healthy turns Unknown after 3 intervals (180s) of failed polls.
    const STALE: StaleAfter = StaleAfter {
        interval: Duration::from_secs(60),
        failed_intervals: 3,
    };

    /// The next status of a watch whose target stays [`TARGET`].
    fn next(
        prev: Option<&ScaleSetWatchStatus>,
        outcome: &Outcome<'_>,
        generation: Option<i64>,
        now: jiff::Timestamp,
    ) -> ScaleSetWatchStatus {
        next_status(prev, outcome, Some(TARGET), generation, now)
    }

    fn t(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + secs).expect("valid time")
    }

    fn fleet(healthy: u32, total: u32, min_percent: u8) -> FleetHealth {
        FleetHealth::example(healthy, total, min_percent)
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
        let s = next(None, &polled(&f, 100), Some(2), t(0));
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
    fn degraded_names_the_zone_that_holds_every_unhealthy_instance() {
        let zone = |name: &str, total, unhealthy| ZoneHealth {
            zone: name.into(),
            total,
            unhealthy,
        };
        let mut f = fleet(4, 6, 50);
        f.zones = vec![zone("1", 2, 0), zone("2", 2, 2), zone("3", 2, 0)];
        let s = next(None, &polled(&f, 50), None, t(0));
        assert_eq!(
            cond(&s, DEGRADED).message,
            "2 unhealthy, all in zone 2 (2 of its 2 instances): 0 (disk os failed: io), 1 (disk os failed: io)"
        );
        assert_eq!(s.zones, f.zones);
        // Spread over two zones, or a single-zone set: no zone is the news.
        f.zones = vec![zone("1", 2, 1), zone("2", 2, 1), zone("3", 2, 0)];
        let s = next(None, &polled(&f, 50), None, t(0));
        assert!(cond(&s, DEGRADED).message.starts_with("2 unhealthy: "));
        f.zones = vec![zone("1", 6, 2)];
        let s = next(None, &polled(&f, 50), None, t(0));
        assert!(cond(&s, DEGRADED).message.starts_with("2 unhealthy: "));
    }

    #[test]
    fn min_healthy_met_but_degraded() {
        let f = fleet(9, 10, 80);
        let s = next(None, &polled(&f, 80), None, t(0));
        assert_eq!(cond(&s, HEALTHY).status, "True");
        assert_eq!(cond(&s, HEALTHY).reason, "MinHealthyMet");
        assert_eq!(cond(&s, DEGRADED).status, "True");
    }

    #[test]
    fn all_healthy_and_empty() {
        let f = fleet(4, 4, 100);
        let s = next(None, &polled(&f, 100), None, t(0));
        assert_eq!(cond(&s, HEALTHY).reason, "AllInstancesHealthy");
        assert_eq!(cond(&s, DEGRADED).status, "False");
        let e = fleet(0, 0, 100);
        let s = next(None, &polled(&e, 100), None, t(0));
        assert_eq!(cond(&s, HEALTHY).reason, "NoInstances");
        assert_eq!(cond(&s, HEALTHY).status, "True");
    }

    #[test]
    fn unchanged_poll_changes_nothing_until_the_heartbeat() {
        let f = fleet(4, 4, 100);
        let first = next(None, &polled(&f, 100), None, t(0));
        let second = next(Some(&first), &polled(&f, 100), None, t(60));
        assert_eq!(second, first, "nothing to write one interval later");
        let later = next(
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
        let first = next_status(None, &polled(&f, 100), None, None, t(0));
        let beat = |h: Option<Duration>, secs: i64| {
            next_status_with_heartbeat(Some(&first), &polled(&f, 100), None, None, t(secs), h)
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
            next_status_with_heartbeat(Some(&first), &polled(&bad, 100), None, None, t(90), None);
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
        let s0 = next(None, &polled(&good, 100), None, t(0));
        let s1 = next(Some(&s0), &polled(&bad, 100), None, t(60));
        assert_eq!(s1.last_poll_time, Some(Time(t(60))));
        assert_eq!(cond(&s1, HEALTHY).last_transition_time, Time(t(60)));
        assert_eq!(
            cond(&s1, READY).last_transition_time,
            Time(t(0)),
            "Ready stayed True"
        );
        let s2 = next(Some(&s1), &polled(&worse, 100), None, t(120));
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
        let ok = next(None, &polled(&f, 100), None, t(0));
        let failed = next(
            Some(&ok),
            &Outcome::Failed {
                reason: Reason::Throttled,
                message: "throttled by ARM".into(),
                stale_after: STALE,
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
        let s = next(
            None,
            &Outcome::Failed {
                reason: Reason::CredentialsNotFound,
                message: "Secret ns/x not found".into(),
                stale_after: STALE,
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

    fn throttled() -> Outcome<'static> {
        Outcome::Failed {
            reason: Reason::Throttled,
            message: "throttled by ARM".into(),
            stale_after: STALE,
        }
    }

    /// Applies each outcome in turn, at the given seconds, from `start`.
    fn run(start: &ScaleSetWatchStatus, steps: &[(i64, &Outcome<'_>)]) -> ScaleSetWatchStatus {
        steps.iter().fold(start.clone(), |s, (at, outcome)| {
            next(Some(&s), outcome, None, t(*at))
        })
    }

    #[test]
    fn healthy_turns_unknown_once_polls_have_failed_for_the_configured_intervals() {
        let f = fleet(4, 4, 100);
        let ok = next(None, &polled(&f, 100), None, t(0));
        let fail = throttled();
        // Retries come sooner than the interval; they are not intervals. The first failure
        // (60s) starts the count: 3 x 60s later, at 240s, the old health is no longer shown.
        let before = run(
            &ok,
            &[
                (60, &fail),
                (65, &fail),
                (75, &fail),
                (95, &fail),
                (239, &fail),
            ],
        );
        assert_eq!(cond(&before, HEALTHY), cond(&ok, HEALTHY), "not yet");
        assert_eq!(cond(&before, DEGRADED), cond(&ok, DEGRADED));
        let stale = next(Some(&before), &fail, Some(3), t(240));
        for type_ in [HEALTHY, DEGRADED] {
            let c = cond(&stale, type_);
            assert_eq!(
                (c.status.as_str(), c.reason.as_str()),
                ("Unknown", "PollsFailing"),
                "{type_}"
            );
            assert_eq!(c.last_transition_time, Time(t(240)));
            assert_eq!(c.observed_generation, Some(3));
            assert_eq!(
                c.message,
                format!(
                    "No poll has succeeded since {} (Ready is False: Throttled), 3 or more poll \
                     intervals of 60s; the counts are from the last successful poll and may be \
                     out of date",
                    t(60)
                )
            );
        }
        assert_eq!(stale.instances, ok.instances, "the counts stay");
        assert_eq!(stale.summary, ok.summary);
        assert_eq!(stale.last_poll_time, ok.last_poll_time);
        let ts = transitions(Some(&before), &stale);
        assert_eq!(ts.len(), 1);
        assert_eq!(
            (ts[0].type_.as_str(), ts[0].to.as_str()),
            (HEALTHY, "Unknown")
        );
        // Failing on changes nothing: no status write per retry.
        let again = next(Some(&stale), &fail, Some(3), t(400));
        assert_eq!(again, stale);
        // The next successful poll shows the health again.
        let back = next(Some(&again), &polled(&f, 100), Some(3), t(410));
        assert_eq!(cond(&back, HEALTHY).status, "True");
        assert_eq!(cond(&back, HEALTHY).reason, "AllInstancesHealthy");
        assert_eq!(cond(&back, DEGRADED).status, "False");
        assert_eq!(cond(&back, READY).status, "True");
    }

    #[test]
    fn an_unhealthy_verdict_goes_unknown_too_so_a_wait_for_false_does_not_pass_on_old_data() {
        let f = fleet(2, 4, 100);
        let bad = next(None, &polled(&f, 100), None, t(0));
        assert_eq!(cond(&bad, HEALTHY).status, "False");
        let fail = throttled();
        let s = run(&bad, &[(60, &fail), (240, &fail)]);
        assert_eq!(cond(&s, HEALTHY).status, "Unknown");
        assert_eq!(cond(&s, DEGRADED).status, "Unknown");
        assert_eq!(s.summary.as_deref(), Some("2/4"));
    }

    #[test]
    fn failed_intervals_count_from_the_first_failed_poll_not_from_the_heartbeat() {
        let f = fleet(4, 4, 100);
        let ok = next(None, &polled(&f, 100), None, t(0));
        // A steady fleet leaves lastPollTime at 0s until the heartbeat (300s).
        let steady = run(&ok, &[(60, &polled(&f, 100)), (290, &polled(&f, 100))]);
        assert_eq!(steady.last_poll_time, Some(Time(t(0))));
        // The poll at 290s succeeded: one failure at 295s is not three failed intervals,
        // though lastPollTime is 295s old.
        let fail = throttled();
        let once = next(Some(&steady), &fail, None, t(295));
        assert_eq!(cond(&once, HEALTHY).status, "True");
        let later = run(&once, &[(474, &fail)]);
        assert_eq!(cond(&later, HEALTHY).status, "True");
        let stale = run(&later, &[(475, &fail)]);
        assert_eq!(cond(&stale, HEALTHY).status, "Unknown");
    }

    #[test]
    fn one_failed_interval_and_a_longer_interval_are_honoured() {
        let f = fleet(4, 4, 100);
        let ok = next(None, &polled(&f, 100), None, t(0));
        let fail = |interval: u64, failed_intervals: u32| Outcome::Failed {
            reason: Reason::AzureUnavailable,
            message: "503".into(),
            stale_after: StaleAfter {
                interval: Duration::from_secs(interval),
                failed_intervals,
            },
        };
        let s = run(&ok, &[(10, &fail(10, 1)), (19, &fail(10, 1))]);
        assert_eq!(cond(&s, HEALTHY).status, "True");
        let s = run(&s, &[(20, &fail(10, 1))]);
        assert_eq!(cond(&s, HEALTHY).reason, "PollsFailing");
        assert!(
            cond(&s, HEALTHY)
                .message
                .contains("(Ready is False: AzureUnavailable), 1 or more poll intervals of 10s"),
            "{}",
            cond(&s, HEALTHY).message
        );
        let s = run(&ok, &[(10, &fail(3600, 2)), (7000, &fail(3600, 2))]);
        assert_eq!(cond(&s, HEALTHY).status, "True");
        let s = run(&s, &[(7210, &fail(3600, 2))]);
        assert_eq!(cond(&s, HEALTHY).status, "Unknown");
        // However large, the product does not overflow: it never turns Unknown instead.
        let s = run(
            &ok,
            &[
                (10, &fail(u64::MAX, u32::MAX)),
                (1 << 37, &fail(u64::MAX, u32::MAX)),
            ],
        );
        assert_eq!(cond(&s, HEALTHY).status, "True");
    }

    #[test]
    fn a_ready_transition_time_in_the_future_counts_as_now() {
        let f = fleet(4, 4, 100);
        let ok = next(None, &polled(&f, 100), None, t(0));
        let fail = throttled();
        let mut skewed = next(Some(&ok), &fail, None, t(60));
        for c in &mut skewed.conditions {
            if c.type_ == READY {
                c.last_transition_time = Time(t(1_000_000));
            }
        }
        let s = run(&skewed, &[(100, &fail)]);
        assert_eq!(cond(&s, READY).last_transition_time, Time(t(100)));
        assert_eq!(cond(&s, HEALTHY).status, "True");
        let s = run(&s, &[(280, &fail)]);
        assert_eq!(cond(&s, HEALTHY).status, "Unknown");
    }

    #[test]
    fn stale_health_does_not_replace_target_changed_or_not_yet_polled() {
        let fail = throttled();
        let never = run(
            &ScaleSetWatchStatus::default(),
            &[(0, &fail), (1000, &fail)],
        );
        assert_eq!(cond(&never, HEALTHY).reason, "NotYetPolled");
        let f = fleet(4, 4, 100);
        let ok = next(None, &polled(&f, 100), None, t(0));
        let moved = next_status(Some(&ok), &fail, Some(OTHER), None, t(60));
        let later = next_status(Some(&moved), &fail, Some(OTHER), None, t(10_000));
        assert_eq!(cond(&later, HEALTHY).reason, "TargetChanged");
        assert_eq!(later, moved);
    }

    #[test]
    fn until_stale_says_when_the_next_attempt_must_come_at_the_latest() {
        let f = fleet(4, 4, 100);
        let ok = next(None, &polled(&f, 100), None, t(0));
        assert_eq!(until_stale(&ok, STALE, t(10)), None, "polls succeed");
        let fail = throttled();
        let failing = next(Some(&ok), &fail, None, t(60));
        assert_eq!(
            until_stale(&failing, STALE, t(60)),
            Some(Duration::from_secs(180))
        );
        assert_eq!(
            until_stale(&failing, STALE, t(200)),
            Some(Duration::from_secs(40))
        );
        assert_eq!(until_stale(&failing, STALE, t(500)), Some(Duration::ZERO));
        let stale = next(Some(&failing), &fail, None, t(240));
        assert_eq!(until_stale(&stale, STALE, t(250)), None, "already Unknown");
        let never = next(None, &fail, None, t(0));
        assert_eq!(
            until_stale(&never, STALE, t(0)),
            None,
            "nothing to go stale"
        );
    }

    #[test]
    fn suspended_is_not_ready() {
        let f = fleet(4, 4, 100);
        let ok = next(None, &polled(&f, 100), None, t(0));
        let s = next(Some(&ok), &Outcome::Suspended, None, t(10));
        assert_eq!(cond(&s, READY).reason, "Suspended");
        assert_eq!(s.instances, ok.instances);
    }

    /// `unhealthy` instances, each failing `extensions` extensions with `message_bytes`-byte
    /// messages (multi-byte characters, so cuts must respect character boundaries), all listed.
    fn broken_fleet(unhealthy: u32, extensions: usize, message_bytes: usize) -> FleetHealth {
        let mut f = fleet(0, unhealthy, 100);
        let message = "é".repeat(message_bytes / 2);
        for u in &mut f.unhealthy {
            u.reasons = (0..extensions)
                .map(|e| format!("extension ext{e} failed: {message}"))
                .collect();
        }
        f
    }

    fn assert_bounded(s: &ScaleSetWatchStatus) {
        let bytes = serde_json::to_vec(s).expect("serializes");
        assert!(
            bytes.len() <= MAX_STATUS_BYTES,
            "{} bytes > {MAX_STATUS_BYTES}",
            bytes.len()
        );
        assert_eq!(json_len(s), bytes.len());
        assert!(s.unhealthy_instances.len() <= crate::api::MAX_LISTED_UNHEALTHY);
        for u in &s.unhealthy_instances {
            assert!(u.instance_id.len() <= MAX_INSTANCE_ID_BYTES);
            assert!(
                u.reasons.len() <= MAX_REASONS_PER_INSTANCE,
                "{:?}",
                u.reasons
            );
            for r in &u.reasons {
                assert!(r.len() <= MAX_REASON_BYTES, "{} bytes", r.len());
            }
        }
        for c in &s.conditions {
            assert!(c.message.len() <= MAX_CONDITION_MESSAGE_BYTES);
        }
        assert!(s.fault_domains.len() <= MAX_DOMAINS && s.update_domains.len() <= MAX_DOMAINS);
        assert!(s.zones.len() <= MAX_DOMAINS);
        assert!(
            s.zones
                .iter()
                .all(|z| z.zone.len() <= MAX_INSTANCE_ID_BYTES)
        );
        assert!(s.outdated_instances.len() <= crate::api::MAX_LISTED_UNHEALTHY);
        assert!(
            s.outdated_instances
                .iter()
                .all(|id| id.len() <= MAX_INSTANCE_ID_BYTES)
        );
    }

    #[test]
    fn sixty_instances_with_three_20kb_extension_messages_give_a_bounded_status() {
        let f = broken_fleet(60, 3, 20 * 1024);
        let s = next(None, &polled(&f, 100), Some(1), t(0));
        assert_bounded(&s);
        assert_eq!(s.unhealthy_instances.len(), 50);
        assert_eq!(s.unhealthy_instances_omitted, 10);
        let reasons = &s.unhealthy_instances[0].reasons;
        assert_eq!(reasons.len(), 3);
        assert!(reasons[0].starts_with("extension ext0 failed: éé"));
        assert!(reasons[0].ends_with('…'), "a cut reason says so");
        assert_eq!(s.instances.as_ref().map(|i| i.unhealthy), Some(60));
        assert!(
            cond(&s, DEGRADED)
                .message
                .starts_with("60 unhealthy: 0 (extension ext0")
        );
    }

    #[test]
    fn too_many_long_reasons_drop_listed_instances_until_the_status_fits() {
        let f = broken_fleet(50, 20, 20 * 1024);
        let s = next(None, &polled(&f, 100), None, t(0));
        assert_bounded(&s);
        let listed = s.unhealthy_instances.len();
        assert!(
            listed < 50,
            "8 reasons of 512 bytes for 50 instances do not fit"
        );
        assert!(listed > 20, "only as many are dropped as needed: {listed}");
        assert_eq!(listed + s.unhealthy_instances_omitted as usize, 50);
        let reasons = &s.unhealthy_instances[0].reasons;
        assert_eq!(reasons.len(), MAX_REASONS_PER_INSTANCE);
        assert_eq!(reasons[7], "and 13 more reasons");
        // Kept instances are the first ones, so the list stays in instance-ID order.
        assert_eq!(
            s.unhealthy_instances[listed - 1].instance_id,
            (listed - 1).to_string()
        );
    }

    #[test]
    fn hostile_ids_and_domains_are_bounded_too() {
        let mut f = broken_fleet(60, 1, 10);
        for u in &mut f.unhealthy {
            u.instance_id = format!("{}{}", u.instance_id, "x".repeat(100_000));
        }
        f.fault_domains = (0..10_000)
            .map(|d| crate::api::DomainHealth {
                domain: d,
                total: 1,
                unhealthy: 0,
            })
            .collect();
        f.update_domains = f.fault_domains.clone();
        // Azure's zones are "1" to "3"; a hostile ARM may name thousands, and long.
        f.zones = (0..10_000)
            .map(|z| ZoneHealth {
                zone: format!("{z}{}", "z".repeat(100_000)),
                total: 1,
                unhealthy: 1,
            })
            .collect();
        f.outdated = (0..10_000)
            .map(|i| format!("{i}{}", "x".repeat(100_000)))
            .collect();
        let s = next(None, &polled(&f, 100), None, t(0));
        assert_bounded(&s);
        assert_eq!(s.zones.len(), MAX_DOMAINS);
        assert_eq!(s.fault_domains.len(), MAX_DOMAINS);
        assert_eq!(s.fault_domains[0].domain, 0);
    }

    #[test]
    fn bounding_is_stable_so_an_unchanged_broken_fleet_writes_nothing() {
        let f = broken_fleet(50, 20, 20 * 1024);
        let first = next(None, &polled(&f, 100), None, t(0));
        let second = next(Some(&first), &polled(&f, 100), None, t(60));
        assert_eq!(second, first);
    }

    #[test]
    fn an_unbounded_status_from_an_older_version_is_bounded_by_the_next_failed_poll() {
        let f = broken_fleet(60, 3, 20 * 1024);
        let mut old = next(None, &polled(&f, 100), None, t(0));
        old.unhealthy_instances = f.unhealthy.clone();
        assert!(json_len(&old) > MAX_STATUS_BYTES);
        let s = next(
            Some(&old),
            &Outcome::Failed {
                reason: Reason::Throttled,
                message: "throttled".into(),
                stale_after: STALE,
            },
            None,
            t(60),
        );
        assert_bounded(&s);
    }

    #[test]
    fn a_huge_error_message_is_cut_but_still_says_the_counts_are_old() {
        let f = fleet(4, 4, 100);
        let ok = next(None, &polled(&f, 100), None, t(0));
        let failed = next(
            Some(&ok),
            &Outcome::Failed {
                reason: Reason::InvalidRequest,
                message: "ü".repeat(100_000),
                stale_after: STALE,
            },
            None,
            t(60),
        );
        assert_bounded(&failed);
        let message = &cond(&failed, READY).message;
        assert!(
            message.len() < MAX_ERROR_MESSAGE_BYTES + 100,
            "{}",
            message.len()
        );
        assert!(message.contains("…. Counts are from the last successful poll"));
    }

    #[test]
    fn truncate_cuts_on_a_character_boundary_and_is_idempotent() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate(&"€".repeat(10), 10); // 3 bytes each
        assert_eq!(cut, "€€…");
        assert!(cut.len() <= 10);
        assert_eq!(truncate(&cut, 10), cut);
        assert_eq!(truncate("abcdef", 2), "ab", "no room for an ellipsis");
    }

    const OTHER: &str = "AzurePublic/s/rg/api (controller identity)";

    fn failed(message: &str) -> Outcome<'_> {
        Outcome::Failed {
            reason: Reason::ScaleSetNotFound,
            message: message.into(),
            stale_after: STALE,
        }
    }

    #[test]
    fn a_failed_first_poll_of_a_new_target_shows_none_of_the_old_targets_health() {
        let f = fleet(4, 4, 100);
        let ok = next(None, &polled(&f, 100), Some(1), t(0));
        assert_eq!(ok.target.as_deref(), Some(TARGET));
        assert_eq!(cond(&ok, HEALTHY).status, "True");
        let s = next_status(Some(&ok), &failed("not found"), Some(OTHER), Some(2), t(60));
        assert_eq!(s.target.as_deref(), Some(OTHER));
        assert!(s.instances.is_none() && s.summary.is_none() && s.healthy_percent.is_none());
        assert!(s.unhealthy_instances.is_empty() && s.fault_domains.is_empty());
        assert!(s.last_poll_time.is_none());
        for type_ in [HEALTHY, DEGRADED] {
            let c = cond(&s, type_);
            assert_eq!(
                (c.status.as_str(), c.reason.as_str()),
                ("Unknown", "TargetChanged")
            );
            assert_eq!(c.observed_generation, Some(2));
            assert!(c.message.contains(OTHER) && c.message.contains(TARGET));
        }
        assert_eq!(
            cond(&s, READY).message,
            "not found",
            "no stale counts to speak of"
        );
        let ts = transitions(Some(&ok), &s);
        assert!(ts.iter().any(|t| t.type_ == HEALTHY && t.to == "Unknown"));
        // Failing again changes nothing more; a success fills everything in for the new target.
        let again = next_status(Some(&s), &failed("not found"), Some(OTHER), Some(2), t(70));
        assert_eq!(again, s);
        let good = next_status(Some(&s), &polled(&f, 100), Some(OTHER), Some(2), t(80));
        assert_eq!(good.summary.as_deref(), Some("4/4"));
        assert_eq!(cond(&good, HEALTHY).reason, "AllInstancesHealthy");
    }

    #[test]
    fn the_same_target_spelled_in_another_case_keeps_its_counts() {
        let f = fleet(4, 4, 100);
        let ok = next(None, &polled(&f, 100), None, t(0));
        let s = next_status(
            Some(&ok),
            &failed("throttled"),
            Some(&TARGET.to_uppercase()),
            None,
            t(60),
        );
        assert_eq!(s.instances, ok.instances);
        assert_eq!(cond(&s, HEALTHY), cond(&ok, HEALTHY));
    }

    #[test]
    fn counts_recorded_without_a_target_are_not_trusted_after_a_failed_poll() {
        let f = fleet(4, 4, 100);
        let legacy = next_status(None, &polled(&f, 100), None, None, t(0));
        assert!(legacy.target.is_none());
        let s = next(Some(&legacy), &failed("throttled"), None, t(60));
        assert!(s.instances.is_none());
        assert_eq!(cond(&s, HEALTHY).reason, "TargetChanged");
    }

    #[test]
    fn suspending_with_a_new_target_clears_the_old_counts() {
        let f = fleet(4, 4, 100);
        let ok = next(None, &polled(&f, 100), None, t(0));
        let s = next_status(Some(&ok), &Outcome::Suspended, Some(OTHER), None, t(10));
        assert!(s.instances.is_none());
        assert_eq!(
            cond(&s, READY).message,
            "Polling is suspended (spec.suspend is true)"
        );
        assert_eq!(cond(&s, HEALTHY).status, "Unknown");
    }

    #[test]
    fn target_names_cloud_scale_set_and_credentials() {
        let mut spec: ScaleSetWatchSpec = serde_json::from_value(serde_json::json!({
            "subscriptionId": "00000000-0000-0000-0000-000000000001",
            "resourceGroup": "rg",
            "scaleSetName": "web"
        }))
        .expect("spec");
        assert_eq!(
            target_of(&spec, Cloud::AzureChina),
            "AzureChina/00000000-0000-0000-0000-000000000001/rg/web (controller identity)"
        );
        spec.cloud = Some(Cloud::AzurePublic);
        spec.credentials = Some(crate::api::Credentials {
            secret_ref: crate::api::SecretReference { name: "sp".into() },
        });
        assert_eq!(
            target_of(&spec, Cloud::AzureChina),
            "AzurePublic/00000000-0000-0000-0000-000000000001/rg/web (Secret sp)"
        );
    }
}
