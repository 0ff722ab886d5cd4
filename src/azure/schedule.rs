//! Every timing decision of polling and status writes, in one place and pure: when a scale set
//! is fetched (interval, its fixed phase, retries after a failure, `Retry-After`) and when an
//! unchanged status is written again (the heartbeat). Times are offsets from an origin the
//! caller chooses, so that all of this is tested with plain numbers.

use std::time::Duration;

/// The first retry after a failed fetch; each further failure doubles it, up to the interval.
pub const RETRY_BASE: Duration = Duration::from_secs(5);

/// The first fetch of a scale set comes within this long (or half its interval, if shorter)
/// of a watch first naming it, at a phase fixed by the scale set's identity. Sets created
/// together (a controller start, a batch of new watches) are thereby spread out instead of
/// all fetched at once, while a new watch still gets its first status within half a minute.
pub const FIRST_FETCH_SPREAD: Duration = Duration::from_secs(30);

/// No wait this module computes is longer, whatever a server asked for: a bound that keeps
/// time arithmetic far from overflow and a scale set from being parked for a year.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 3600);

/// How often an unchanged status is rewritten to refresh `lastPollTime`, by default.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(300);

/// No scale set is fetched more often, whatever its watches say (the CRD's own minimum is
/// 10s; this only keeps a bad value from turning into a busy loop).
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// A watch on a schedule is reconciled again after this long even if no result of its scale
/// set arrived: a safety net only, since every fetch triggers its watches' reconciles, and
/// such a reconcile reads the latest result without fetching.
pub fn backstop(interval: Duration) -> Duration {
    interval.saturating_mul(3).min(MAX_DELAY)
}

/// The offset of a scale set's first fetch from the moment a watch first named it: `hash`
/// (of the scale set's identity) scaled into `[0, min(interval / 2, FIRST_FETCH_SPREAD))`.
pub fn phase(hash: u64, interval: Duration) -> Duration {
    let window = (interval / 2).min(FIRST_FETCH_SPREAD);
    // window < 2^64 ns, so the product fits in u128 and the quotient in u64.
    let nanos = (window.as_nanos() * u128::from(hash)) >> 64;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The wait after the `failures`-th failed fetch in a row (1 for the first): 5s, 10s, 20s...
/// but never longer than the interval, never shorter than ARM's `Retry-After`, and never
/// longer than [`MAX_DELAY`].
pub fn retry_delay(interval: Duration, failures: u32, retry_after: Option<Duration>) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    let backoff = RETRY_BASE
        .saturating_mul(1 << doublings)
        .min(interval.max(MIN_INTERVAL));
    retry_after
        .map_or(backoff, |after| backoff.max(after))
        .min(MAX_DELAY)
}

/// After the `failures`-th failed status write in a row: 1s, 2s, 4s... up to 256s, and up to
/// a tenth later by `jitter` (in `[0, 1)`), so that watches failing together (an API server
/// outage) come back spread out.
pub fn write_retry_delay(failures: u32, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(8);
    let delay = Duration::from_secs(1).saturating_mul(1 << doublings);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    delay.mul_f64(1.0 + jitter / 10.0)
}

/// The heartbeat as given on the command line: a Go duration such as `300s` or `5m`, or `0`
/// for none.
pub fn parse_heartbeat(s: &str) -> Result<Option<Duration>, String> {
    if s.trim() == "0" {
        return Ok(None);
    }
    let d = crate::api::parse_duration(s)
        .ok_or_else(|| format!("{s:?} is not a duration such as 300s, 5m or 0"))?;
    Ok((!d.is_zero()).then_some(d))
}

/// Whether an unchanged status is due for a rewrite of `lastPollTime`: `since_last` is the
/// time since the last one (`None`: there is none yet, so it is due), `heartbeat` `None`
/// means never (0 on the command line).
pub fn heartbeat_due(since_last: Option<Duration>, heartbeat: Option<Duration>) -> bool {
    match (since_last, heartbeat) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(elapsed), Some(h)) => elapsed >= h,
    }
}

/// When one scale set is fetched. Fetches follow a grid (`phase`, `phase + interval`, ...)
/// anchored on when each fetch was due rather than when it started, so that waiting for a
/// concurrency slot does not push every later fetch back; a failure switches to fast
/// retries, and the next success re-anchors the grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    first: Duration,
    last_due: Option<Duration>,
    retry_at: Option<Duration>,
    failures: u32,
}

impl Schedule {
    /// A scale set first named at `created`, with its fixed `phase`.
    pub fn new(created: Duration, phase: Duration) -> Self {
        Self {
            first: created.saturating_add(phase),
            last_due: None,
            retry_at: None,
            failures: 0,
        }
    }

    /// When the next fetch is due, given the set's current interval (the shortest of its
    /// watches'; a watch that shortens it makes the next fetch come sooner).
    pub fn next_due(&self, interval: Duration) -> Duration {
        let interval = interval.clamp(MIN_INTERVAL, MAX_DELAY);
        if let Some(at) = self.retry_at {
            return at;
        }
        match self.last_due {
            Some(due) => due.saturating_add(interval),
            None => self.first,
        }
    }

    /// The fetch due at `due` starts at `now`.
    pub fn started(&mut self, due: Duration, now: Duration, interval: Duration) {
        // A fetch more than an interval late (the process was starved, say) re-anchors the
        // grid instead of being followed by catch-up fetches.
        let late = now.saturating_sub(due) >= interval;
        self.last_due = Some(if late { now } else { due });
        self.retry_at = None;
    }

    /// The fetch ended well.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// The fetch ended at `now` in a failure; ARM may have said when to come back.
    pub fn failed(&mut self, now: Duration, interval: Duration, retry_after: Option<Duration>) {
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now.saturating_add(retry_delay(interval, self.failures, retry_after)));
    }

    /// Failed fetches in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    /// Runs `fetches` successful fetches, each starting `delay` after it was due; returns
    /// their due times.
    fn run(
        schedule: &mut Schedule,
        interval: Duration,
        delay: Duration,
        fetches: usize,
    ) -> Vec<u64> {
        (0..fetches)
            .map(|_| {
                let due = schedule.next_due(interval);
                schedule.started(due, due + delay, interval);
                schedule.succeeded();
                due.as_secs()
            })
            .collect()
    }

    #[test]
    fn phases_spread_within_half_the_interval_capped_at_the_spread() {
        assert_eq!(phase(0, s(60)), Duration::ZERO);
        assert!(phase(u64::MAX, s(60)) < s(30));
        assert!(phase(u64::MAX, s(60)) > s(29));
        assert!(phase(u64::MAX, s(10)) < s(5), "half of a short interval");
        assert!(phase(u64::MAX, s(3600)) < FIRST_FETCH_SPREAD);
        assert_eq!(phase(1 << 63, s(60)), s(15), "the middle of the window");
        // Huge intervals do not overflow.
        assert!(phase(u64::MAX, Duration::MAX) < FIRST_FETCH_SPREAD);
    }

    #[test]
    fn first_fetch_at_the_phase_then_exactly_one_per_interval() {
        let mut schedule = Schedule::new(s(100), s(7));
        assert_eq!(
            run(&mut schedule, s(60), Duration::ZERO, 4),
            vec![107, 167, 227, 287]
        );
    }

    #[test]
    fn a_late_start_does_not_shift_the_grid_but_a_starved_one_re_anchors() {
        let mut schedule = Schedule::new(s(0), s(10));
        // Waiting 3s for a concurrency slot every time: the grid stays put.
        assert_eq!(run(&mut schedule, s(60), s(3), 3), vec![10, 70, 130]);
        // Starting more than an interval late: no burst of catch-up fetches.
        let due = schedule.next_due(s(60));
        schedule.started(due, due + s(100), s(60));
        assert_eq!(schedule.next_due(s(60)), due + s(160));
    }

    #[test]
    fn a_shorter_interval_brings_the_next_fetch_forward_and_a_longer_one_pushes_it_back() {
        let mut schedule = Schedule::new(s(0), s(0));
        run(&mut schedule, s(60), Duration::ZERO, 2);
        assert_eq!(schedule.next_due(s(60)), s(120));
        assert_eq!(schedule.next_due(s(20)), s(80), "a watch asked for 20s");
        assert_eq!(
            run(&mut schedule, s(20), Duration::ZERO, 3),
            vec![80, 100, 120]
        );
        assert_eq!(schedule.next_due(s(60)), s(180), "the 20s watch left");
    }

    #[test]
    fn failures_retry_fast_then_back_off_to_the_interval_and_success_resumes_the_grid() {
        let mut schedule = Schedule::new(s(0), s(0));
        let interval = s(60);
        let mut retries = Vec::new();
        let mut now = Duration::ZERO;
        for _ in 0..6 {
            let due = schedule.next_due(interval);
            schedule.started(due, due, interval);
            // Each failed fetch takes 2s (the client's own retries).
            now = due + s(2);
            schedule.failed(now, interval, None);
            retries.push((schedule.next_due(interval) - now).as_secs());
        }
        assert_eq!(retries, vec![5, 10, 20, 40, 60, 60]);
        assert_eq!(schedule.failures(), 6);
        let due = schedule.next_due(interval);
        assert_eq!(due, now + s(60));
        schedule.started(due, due, interval);
        schedule.succeeded();
        assert_eq!(schedule.failures(), 0);
        assert_eq!(schedule.next_due(interval), due + interval);
    }

    #[test]
    fn a_failed_fetch_is_retried_after_5s_not_at_the_next_interval() {
        // Issue 7, item 10: the retry is a real fetch 5s after the failure, where a cached
        // error used to be served until 90% of the interval had passed.
        let mut schedule = Schedule::new(s(0), s(0));
        schedule.started(s(0), s(0), s(60));
        schedule.failed(s(1), s(60), None);
        assert_eq!(schedule.next_due(s(60)), s(6));
    }

    #[test]
    fn retry_after_is_honoured_even_beyond_the_interval_but_bounded() {
        let interval = s(60);
        assert_eq!(retry_delay(interval, 1, Some(s(300))), s(300));
        assert_eq!(
            retry_delay(interval, 1, Some(s(2))),
            s(5),
            "never sooner than the backoff"
        );
        assert_eq!(retry_delay(interval, 1, Some(Duration::MAX)), MAX_DELAY);
        assert_eq!(retry_delay(interval, u32::MAX, None), interval);
        assert_eq!(
            retry_delay(s(10), 3, None),
            s(10),
            "capped by a short interval"
        );
        let mut schedule = Schedule::new(s(0), s(0));
        schedule.started(s(0), s(0), interval);
        schedule.failed(s(1), interval, Some(Duration::MAX));
        assert_eq!(schedule.next_due(interval), s(1) + MAX_DELAY);
    }

    #[test]
    fn failed_status_writes_back_off_to_256s_with_at_most_a_tenth_of_jitter() {
        let delays: Vec<u64> = [1, 2, 3, 9, 10, u32::MAX]
            .map(|n| write_retry_delay(n, 0.0).as_secs())
            .to_vec();
        assert_eq!(delays, vec![1, 2, 4, 256, 256, 256]);
        assert_eq!(write_retry_delay(1, 0.5), Duration::from_millis(1050));
        assert!(write_retry_delay(100, 1.0) <= s(282));
        assert_eq!(
            write_retry_delay(1, f64::NAN),
            s(1),
            "a bad jitter is no jitter"
        );
    }

    #[test]
    fn heartbeat_flag_takes_go_durations_and_zero_for_off() {
        assert_eq!(parse_heartbeat("5m"), Ok(Some(s(300))));
        assert_eq!(parse_heartbeat("90s"), Ok(Some(s(90))));
        assert_eq!(parse_heartbeat("0"), Ok(None));
        assert_eq!(parse_heartbeat("0s"), Ok(None));
        assert!(parse_heartbeat("5 minutes").is_err());
        assert!(parse_heartbeat("").is_err());
    }

    #[test]
    fn heartbeat_zero_is_off_otherwise_due_after_it_elapsed() {
        let h = Some(DEFAULT_HEARTBEAT);
        assert!(heartbeat_due(None, h), "never written");
        assert!(!heartbeat_due(Some(s(299)), h));
        assert!(heartbeat_due(Some(s(300)), h));
        assert!(!heartbeat_due(Some(s(100_000)), None), "off");
        assert!(
            heartbeat_due(None, None),
            "a first lastPollTime is always written"
        );
    }
}
