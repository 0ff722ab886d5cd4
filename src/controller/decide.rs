//! What a reconcile does, decided without I/O or a clock: from what it found (the spec, the
//! previous status, the scale set's latest fetch, how many polls failed in a row, the time)
//! to the status to write, when to come back and which Events to publish. The reconciler is
//! the shell that gathers the input and carries the decision out; the timings themselves
//! (interval, backoff, Retry-After, heartbeat, stale rule) live in `azure::schedule` and
//! `health::status`, and this is the one place that combines them.

use crate::api::{Cloud, ScaleSetWatchSpec, ScaleSetWatchStatus};
use crate::azure::poller::PollError;
use crate::azure::schedule;
use crate::health::status::{self, Outcome, StaleAfter};
use crate::health::{FleetHealth, Reason};
use std::time::Duration;

/// What the watch's scale set gave this reconcile.
#[derive(Debug)]
pub enum Poll {
    /// `spec.suspend`: nothing is fetched.
    Suspended,
    /// The set's first fetch is scheduled; when it ends, it reconciles the watch.
    Pending,
    /// The latest fetch, judged against the watch's policy; `at` is when the fetch ended.
    Fetched {
        fleet: FleetHealth,
        at: jiff::Timestamp,
    },
    /// No instance list: the fetch failed, or there were no credentials to fetch with.
    /// `failures` counts this one; `fresh` is false when this watch has seen this same
    /// failure before (read again after its own status write), so it is reported once.
    Failed {
        error: PollError,
        failures: u32,
        fresh: bool,
    },
}

/// Everything the decision reads.
#[derive(Debug)]
pub struct Observed<'a> {
    pub spec: &'a ScaleSetWatchSpec,
    pub status: Option<&'a ScaleSetWatchStatus>,
    pub generation: Option<i64>,
    /// The cloud of watches that name none.
    pub default_cloud: Cloud,
    pub poll: Poll,
    pub now: jiff::Timestamp,
    /// How often an unchanged status is written again (`None`: never).
    pub heartbeat: Option<Duration>,
}

/// An Event about the watch, published once its status is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// What the reconcile does.
#[derive(Debug, PartialEq)]
pub struct Decision {
    /// The status to write; `None` when it would not change.
    pub status: Option<ScaleSetWatchStatus>,
    /// When to reconcile again at the latest; `None`: only when the watch changes.
    pub requeue: Option<Duration>,
    /// Condition changes worth an Event, in the order they should appear.
    pub events: Vec<Note>,
    /// A failed poll this watch had not reported yet: logged and counted once.
    pub failure: Option<Reason>,
}

/// An Event's note holds at most this many bytes (the API server refuses more than 1 KiB).
const MAX_NOTE_BYTES: usize = 1000;

pub fn decide(o: &Observed<'_>) -> Decision {
    let interval = o.spec.interval();
    let target = status::target_of(o.spec, o.default_cloud);
    let next = |outcome: &Outcome<'_>, at: jiff::Timestamp| {
        status::next_status_with_heartbeat(
            o.status,
            outcome,
            Some(&target),
            o.generation,
            at,
            o.heartbeat,
        )
    };
    let (next, requeue, failure) = match &o.poll {
        Poll::Pending => {
            return Decision {
                status: None,
                requeue: Some(schedule::backstop(interval)),
                events: Vec::new(),
                failure: None,
            };
        }
        // Polling resumes when the spec changes.
        Poll::Suspended => (next(&Outcome::Suspended, o.now), None, None),
        Poll::Fetched { fleet, at } => {
            let outcome = Outcome::Polled {
                health: fleet,
                scale_set: &o.spec.scale_set_name,
                min_healthy_percent: o.spec.health.min_healthy_percent,
            };
            // lastPollTime is when the fetch ended, whichever reconcile reads it. The set's
            // own schedule triggers the next reconcile; the backstop only covers a lost one.
            let status = next(&outcome, *at);
            (status, Some(schedule::backstop(interval)), None)
        }
        Poll::Failed {
            error,
            failures,
            fresh,
        } => {
            let reason = Reason::of_poll_error(error);
            let stale_after = StaleAfter::of(o.spec);
            let outcome = Outcome::Failed {
                reason,
                message: error.to_string(),
                stale_after,
            };
            // Now, not when the fetch ended: the same failure read again later (a scale set
            // told by ARM to come back in ten minutes is not fetched meanwhile) still turns
            // Healthy and Degraded Unknown once the stale rule says so.
            let status = next(&outcome, o.now);
            let retry = schedule::retry_delay(interval, *failures, error.retry_after());
            // A long Retry-After must not keep old health standing past the stale rule: the
            // watch comes back by then, even if its scale set is not fetched before.
            let retry = status::until_stale(&status, stale_after, o.now)
                .map_or(retry, |left| retry.min(left + Duration::from_secs(1)));
            (status, Some(retry), fresh.then_some(reason))
        }
    };
    Decision {
        events: notes(o.status, &next),
        status: (o.status != Some(&next)).then_some(next),
        requeue,
        failure,
    }
}

/// One Event per change of Ready or Healthy.
fn notes(prev: Option<&ScaleSetWatchStatus>, next: &ScaleSetWatchStatus) -> Vec<Note> {
    status::transitions(prev, next)
        .into_iter()
        .map(|t| {
            let (warning, reason) = match (t.type_.as_str(), t.to.as_str()) {
                (status::READY, "True") => (false, "PollSucceeded"),
                (status::READY, _) => (true, "PollFailed"),
                (_, "True") => (false, "Healthy"),
                (_, "False") => (true, "Unhealthy"),
                _ => (false, "HealthUnknown"),
            };
            Note {
                warning,
                reason,
                message: status::truncate(&format!("{}: {}", t.reason, t.message), MAX_NOTE_BYTES),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ScaleSetWatchSpec;
    use crate::azure::arm::client::ArmError;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn spec(interval_secs: u64) -> ScaleSetWatchSpec {
        serde_json::from_value(serde_json::json!({
            "subscriptionId": "00000000-0000-0000-0000-0000000000aa",
            "resourceGroup": "rg",
            "scaleSetName": "web",
            "interval": format!("{interval_secs}s"),
        }))
        .expect("a valid spec")
    }

    fn t(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + secs).expect("in range")
    }

    fn fleet(healthy: u32, total: u32) -> FleetHealth {
        FleetHealth::example(healthy, total, 100)
    }

    fn observed<'a>(
        spec: &'a ScaleSetWatchSpec,
        status: Option<&'a ScaleSetWatchStatus>,
        poll: Poll,
        now: i64,
    ) -> Observed<'a> {
        Observed {
            spec,
            status,
            generation: Some(1),
            default_cloud: Cloud::AzurePublic,
            poll,
            now: t(now),
            heartbeat: Some(Duration::from_secs(300)),
        }
    }

    fn fetched(healthy: u32, total: u32, at: i64) -> Poll {
        Poll::Fetched {
            fleet: fleet(healthy, total),
            at: t(at),
        }
    }

    fn failed(error: ArmError, failures: u32, fresh: bool) -> Poll {
        Poll::Failed {
            error: PollError::Arm(error),
            failures,
            fresh,
        }
    }

    fn condition<'s>(s: &'s ScaleSetWatchStatus, type_: &str) -> (&'s str, &'s str) {
        let c = s
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap_or_else(|| panic!("no {type_}"));
        (c.status.as_str(), c.reason.as_str())
    }

    fn reasons(events: &[Note]) -> Vec<(&'static str, bool)> {
        events.iter().map(|e| (e.reason, e.warning)).collect()
    }

    #[test]
    fn a_scheduled_first_fetch_writes_nothing_and_comes_back_by_the_backstop() {
        let s = spec(60);
        let d = decide(&observed(&s, None, Poll::Pending, 0));
        assert_eq!(
            d,
            Decision {
                status: None,
                requeue: Some(schedule::backstop(Duration::from_secs(60))),
                events: vec![],
                failure: None,
            }
        );
    }

    #[test]
    fn the_first_fetch_writes_the_status_and_announces_ready_and_healthy() {
        let s = spec(60);
        let d = decide(&observed(&s, None, fetched(3, 3, 5), 7));
        let status = d.status.expect("a status to write");
        assert_eq!(status.summary.as_deref(), Some("3/3"));
        assert_eq!(
            status.last_poll_time,
            Some(Time(t(5))),
            "when the fetch ended"
        );
        assert_eq!(condition(&status, "Ready"), ("True", "PollSucceeded"));
        assert_eq!(
            condition(&status, "Healthy"),
            ("True", "AllInstancesHealthy")
        );
        assert_eq!(
            reasons(&d.events),
            [("PollSucceeded", false), ("Healthy", false)]
        );
        assert_eq!(d.requeue, Some(schedule::backstop(Duration::from_secs(60))));
        assert_eq!(d.failure, None);
    }

    #[test]
    fn the_same_health_again_writes_nothing_until_the_heartbeat() {
        let s = spec(60);
        let first = decide(&observed(&s, None, fetched(3, 3, 0), 0))
            .status
            .expect("first");
        let again = decide(&observed(&s, Some(&first), fetched(3, 3, 60), 60));
        assert_eq!(again.status, None);
        assert!(again.events.is_empty());
        let beat = decide(&observed(&s, Some(&first), fetched(3, 3, 300), 300));
        let beat = beat.status.expect("the heartbeat rewrites lastPollTime");
        assert_eq!(beat.last_poll_time, Some(Time(t(300))));
        let mut off = observed(&s, Some(&first), fetched(3, 3, 86_400), 86_400);
        off.heartbeat = None;
        assert_eq!(
            decide(&off).status,
            None,
            "heartbeat off: a day later, still nothing"
        );
    }

    #[test]
    fn an_instance_turning_unhealthy_is_one_warning() {
        let s = spec(60);
        let first = decide(&observed(&s, None, fetched(3, 3, 0), 0))
            .status
            .expect("first");
        let d = decide(&observed(&s, Some(&first), fetched(2, 3, 60), 60));
        let status = d.status.expect("changed");
        assert_eq!(condition(&status, "Healthy"), ("False", "BelowMinHealthy"));
        assert_eq!(
            condition(&status, "Degraded"),
            ("True", "InstancesUnhealthy")
        );
        assert_eq!(reasons(&d.events), [("Unhealthy", true)]);
        assert!(d.events[0].message.starts_with("BelowMinHealthy: 2 of 3"));
    }

    #[test]
    fn a_failed_poll_backs_off_from_5s_but_never_before_retry_after() {
        let s = spec(60);
        let first = decide(&observed(&s, None, fetched(3, 3, 0), 0))
            .status
            .expect("first");
        let unavailable = || ArmError::Unavailable("timed out".into());
        let d = decide(&observed(
            &s,
            Some(&first),
            failed(unavailable(), 1, true),
            10,
        ));
        assert_eq!(d.requeue, Some(Duration::from_secs(5)));
        assert_eq!(d.failure, Some(Reason::AzureUnavailable));
        let status = d.status.expect("Ready turns False");
        assert_eq!(condition(&status, "Ready"), ("False", "AzureUnavailable"));
        assert_eq!(
            condition(&status, "Healthy"),
            ("True", "AllInstancesHealthy"),
            "health stands while it is not stale"
        );
        assert_eq!(reasons(&d.events), [("PollFailed", true)]);
        let d = decide(&observed(
            &s,
            Some(&first),
            failed(unavailable(), 3, true),
            10,
        ));
        assert_eq!(d.requeue, Some(Duration::from_secs(20)));
        let throttled = ArmError::Throttled {
            retry_after: Duration::from_secs(45),
            code: "TooManyRequests".into(),
        };
        let d = decide(&observed(&s, Some(&first), failed(throttled, 1, true), 10));
        assert_eq!(d.requeue, Some(Duration::from_secs(45)));
        assert_eq!(d.failure, Some(Reason::Throttled));
    }

    #[test]
    fn a_failure_read_again_is_not_reported_again() {
        let s = spec(60);
        let d = decide(&observed(
            &s,
            None,
            failed(ArmError::Unavailable("x".into()), 1, false),
            0,
        ));
        assert_eq!(d.failure, None);
        assert!(d.status.is_some(), "the status still says so");
    }

    #[test]
    fn a_long_retry_after_does_not_keep_health_standing_past_the_stale_rule() {
        let s = spec(60);
        let first = decide(&observed(&s, None, fetched(3, 3, 0), 0))
            .status
            .expect("first");
        let throttled = || ArmError::Throttled {
            retry_after: Duration::from_secs(600),
            code: "TooManyRequests".into(),
        };
        // Ready turns False at 10 s; three intervals later Healthy is due to be Unknown.
        let failing = decide(&observed(
            &s,
            Some(&first),
            failed(throttled(), 1, true),
            10,
        ))
        .status
        .expect("failing");
        let d = decide(&observed(
            &s,
            Some(&failing),
            failed(throttled(), 2, false),
            70,
        ));
        let left = d.requeue.expect("comes back");
        assert!(left <= Duration::from_secs(121), "{left:?}");
        let d = decide(&observed(
            &s,
            Some(&failing),
            failed(throttled(), 4, false),
            190,
        ));
        let status = d.status.expect("stale");
        assert_eq!(condition(&status, "Healthy"), ("Unknown", "PollsFailing"));
        assert_eq!(reasons(&d.events), [("HealthUnknown", false)]);
    }

    #[test]
    fn a_suspended_watch_says_so_and_waits_for_a_change() {
        let s = spec(60);
        let d = decide(&observed(&s, None, Poll::Suspended, 0));
        assert_eq!(d.requeue, None);
        let status = d.status.expect("written");
        assert_eq!(condition(&status, "Ready"), ("False", "Suspended"));
        assert_eq!(condition(&status, "Healthy"), ("Unknown", "NotYetPolled"));
        assert_eq!(
            reasons(&d.events),
            [("PollFailed", true), ("HealthUnknown", false)]
        );
        assert_eq!(d.failure, None);
    }

    #[test]
    fn an_event_note_is_bounded_whatever_arm_said() {
        let s = spec(60);
        let huge = ArmError::Api {
            status: 400,
            code: "BadRequest".into(),
            message: "x".repeat(100_000),
        };
        let d = decide(&observed(&s, None, failed(huge, 1, true), 0));
        assert!(!d.events.is_empty());
        for e in &d.events {
            assert!(e.message.len() <= MAX_NOTE_BYTES, "{}", e.message.len());
        }
    }
}
