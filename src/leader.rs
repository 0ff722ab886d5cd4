//! Leader election through a coordination.k8s.io Lease, the way client-go does it, so that
//! replicas never reconcile at the same time.
//!
//! Three durations make a hand-over safe:
//! - a standby takes the Lease only after it has seen the record unchanged for the record's
//!   lease duration, timed on its own monotonic clock from when it *observed* the last change.
//!   (Comparing its wall clock with the holder's `renewTime` would let a standby whose clock is
//!   ahead take a healthy lease.)
//! - a leader works only until `renew_deadline` after the start of its last successful renewal,
//!   and `renew_deadline < lease_duration`. Its [`Fence`] refuses permits from that instant on
//!   and the process aborts the controller then, so a leader that cannot renew (API server
//!   unreachable, RBAC revoked, a hung connection) has stopped every ARM call and status write
//!   before any standby may acquire. The difference is the margin for requests already sent.
//! - every Lease call has a timeout shorter than the renew deadline, so one dead connection
//!   cannot hold a renewal past it.
//!
//! The Lease is written with optimistic concurrency (resourceVersion): two replicas racing for
//! an expired lease cannot both win, because the second update conflicts. A conflict is not a
//! lost lease: the record is read again and the renewal retried within the deadline.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedRwLockReadGuard, RwLock, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// How long a lease lasts, how long a leader may go without renewing, and how often replicas
/// try. Defaults follow client-go: 15 s, 10 s, 2 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTimings {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimingError {
    #[error("the lease duration must be 1 to {max} seconds, not {0}", max = LeaseTimings::MAX.as_secs())]
    LeaseDuration(u64),
    #[error(
        "the renew deadline ({renew:?}) must be above zero and shorter than the lease duration ({lease:?}): a leader must stop before a standby may take over"
    )]
    RenewDeadline { renew: Duration, lease: Duration },
    #[error(
        "the retry period ({retry:?}) must be above zero and shorter than the renew deadline ({renew:?})"
    )]
    RetryPeriod { retry: Duration, renew: Duration },
}

impl LeaseTimings {
    /// The longest lease accepted: a day (a longer one only delays hand-overs).
    pub const MAX: Duration = Duration::from_secs(24 * 3600);

    /// From the command line, in seconds. An unset renew deadline is two thirds of the lease
    /// duration (10 s of 15 s); an unset retry period is 2 s, but at most a third of the renew
    /// deadline, so that short leases still get several attempts.
    pub fn new(
        lease_seconds: u64,
        renew_deadline_seconds: Option<u64>,
        retry_period_seconds: Option<u64>,
    ) -> Result<Self, TimingError> {
        if lease_seconds == 0 || lease_seconds > Self::MAX.as_secs() {
            return Err(TimingError::LeaseDuration(lease_seconds));
        }
        let lease = Duration::from_secs(lease_seconds);
        let renew = renew_deadline_seconds.map_or(lease * 2 / 3, Duration::from_secs);
        if renew.is_zero() || renew >= lease {
            return Err(TimingError::RenewDeadline { renew, lease });
        }
        let retry = retry_period_seconds
            .map_or((renew / 3).min(Duration::from_secs(2)), Duration::from_secs);
        if retry.is_zero() || retry >= renew {
            return Err(TimingError::RetryPeriod { retry, renew });
        }
        Ok(Self {
            lease_duration: lease,
            renew_deadline: renew,
            retry_period: retry,
        })
    }

    /// Each Lease API call's timeout: half the renew deadline, so that after one hung call
    /// there is time for another attempt.
    pub fn call_timeout(&self) -> Duration {
        self.renew_deadline / 2
    }
}

impl Default for LeaseTimings {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The fence: what a reconcile asks before each ARM call and status write.

/// Whether this process may act as the leader now. Cheap to clone; all clones are one fence.
///
/// A reconcile holds a [`Permit`] across each ARM poll and each status write. [`Fence::end`]
/// refuses new permits and waits until the outstanding ones are dropped, so that once it has
/// returned (after the controller was aborted) nothing more can be written, and the lease may
/// be released.
#[derive(Clone, Debug)]
pub struct Fence {
    term: Arc<watch::Sender<Term>>,
    in_flight: Arc<RwLock<()>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Term {
    /// No leader election: leads until ended.
    Unbounded,
    /// Waiting for the lease.
    NotYet,
    /// Leads until this instant unless the lease is renewed.
    Until(Instant),
    /// Ended; never leads again.
    Over,
}

/// Held while an ARM call or a status write is under way.
#[derive(Debug)]
pub struct Permit {
    _guard: OwnedRwLockReadGuard<()>,
}

impl Fence {
    /// For a process without leader election: it leads until [`Fence::end`].
    pub fn unbounded() -> Self {
        Self::with(Term::Unbounded)
    }

    /// For a standby: no permits until [`Fence::lead_until`].
    pub fn not_leading() -> Self {
        Self::with(Term::NotYet)
    }

    fn with(term: Term) -> Self {
        Self {
            term: Arc::new(watch::Sender::new(term)),
            in_flight: Arc::new(RwLock::new(())),
        }
    }

    /// Leads until `until` (or later, if already so): on acquiring or renewing the lease.
    /// Nothing revives an ended fence.
    pub fn lead_until(&self, until: Instant) {
        self.term.send_if_modified(|term| match *term {
            Term::NotYet => {
                *term = Term::Until(until);
                true
            }
            Term::Until(old) if until > old => {
                *term = Term::Until(until);
                true
            }
            _ => false,
        });
    }

    /// When the current term ends, for a leader elected through a lease.
    pub fn deadline(&self) -> Option<Instant> {
        match *self.term.borrow() {
            Term::Until(t) => Some(t),
            _ => None,
        }
    }

    /// A permit to make an ARM call or write a status, if this process leads now.
    pub fn permit(&self) -> Option<Permit> {
        // Taken before the term is read, so that `end`, which changes the term first and then
        // waits for the write lock, sees every permit granted under the old term.
        let guard = self.in_flight.clone().try_read_owned().ok()?;
        let leads = match *self.term.borrow() {
            Term::Unbounded => true,
            Term::Until(t) => Instant::now() < t,
            Term::NotYet | Term::Over => false,
        };
        leads.then_some(Permit { _guard: guard })
    }

    /// Refuses every permit from now on (synchronous, so it takes effect before anything else
    /// happens); [`Fence::drained`] then waits for those granted before.
    pub fn revoke(&self) {
        self.term.send_replace(Term::Over);
    }

    /// Resolves once no permit is held (after [`Fence::revoke`], once none can be granted).
    pub async fn drained(&self) {
        drop(self.in_flight.write().await);
    }

    /// Revokes, then waits until every permit granted before is dropped.
    pub async fn end(&self) {
        self.revoke();
        self.drained().await;
    }

    /// Resolves when the term is over: its deadline passed without a renewal, or it was
    /// revoked. Never resolves without leader election or before the lease is acquired.
    pub async fn expired(&self) {
        let mut rx = self.term.subscribe();
        loop {
            let term = *rx.borrow_and_update();
            match term {
                Term::Over => return,
                Term::Until(t) if Instant::now() >= t => return,
                Term::Until(t) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(t) => {}
                        _ = rx.changed() => {}
                    }
                }
                // `self` holds the sender, so `changed` cannot fail while we wait.
                Term::Unbounded | Term::NotYet => {
                    let _ = rx.changed().await;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What a replica saw of the lease (pure).

/// The fields of a Lease whose change shows that its holder is alive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: Option<String>,
    pub lease_duration_seconds: Option<i32>,
    pub acquire_time: Option<jiff::Timestamp>,
    pub renew_time: Option<jiff::Timestamp>,
    pub transitions: Option<i32>,
    pub resource_version: Option<String>,
}

impl LeaseRecord {
    pub fn of(lease: &Lease) -> Self {
        let spec = lease.spec.as_ref();
        Self {
            holder: spec
                .and_then(|s| s.holder_identity.clone())
                .filter(|h| !h.is_empty()),
            lease_duration_seconds: spec.and_then(|s| s.lease_duration_seconds),
            acquire_time: spec.and_then(|s| s.acquire_time.as_ref()).map(|t| t.0),
            renew_time: spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0),
            transitions: spec.and_then(|s| s.lease_transitions),
            resource_version: lease.metadata.resource_version.clone(),
        }
    }
}

/// The last record seen and when, on this replica's monotonic clock, it was first seen.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    last: Option<(LeaseRecord, Instant)>,
}

impl Observation {
    /// Notes `record`, read at `now`; the clock restarts only when the record changed.
    pub fn observe(&mut self, record: LeaseRecord, now: Instant) {
        if self.last.as_ref().is_none_or(|(seen, _)| *seen != record) {
            self.last = Some((record, now));
        }
    }

    /// Where `me` stands at `now` with respect to the last record observed.
    pub fn standing(&self, me: &str, now: Instant, default_duration: Duration) -> Standing {
        match &self.last {
            None => Standing::Free,
            Some((record, seen_at)) => standing(record, *seen_at, now, me, default_duration),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// `me` holds it.
    Ours,
    /// Nobody holds it (never held, or released).
    Free,
    /// Its holder has not renewed it for a whole lease duration, as timed here.
    Expired,
    HeldBy(String),
}

/// Whether `me` may take the lease described by `record`, which this replica first saw (in
/// this form) at `observed_at`. Only the local monotonic clock is used: the record's times were
/// written with another machine's wall clock. A record without a duration lasts
/// `default_duration`; a negative one, none.
pub fn standing(
    record: &LeaseRecord,
    observed_at: Instant,
    now: Instant,
    me: &str,
    default_duration: Duration,
) -> Standing {
    match &record.holder {
        None => Standing::Free,
        Some(holder) if holder == me => Standing::Ours,
        Some(holder) => {
            let duration = record.lease_duration_seconds.map_or(default_duration, |s| {
                Duration::from_secs(u64::try_from(s).unwrap_or(0))
            });
            if now.saturating_duration_since(observed_at) >= duration {
                Standing::Expired
            } else {
                Standing::HeldBy(holder.clone())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The elector.

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub timings: LeaseTimings,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("Lease {0} changed since it was read (409 Conflict)")]
    Conflict(String),
    #[error("Lease {name}: no answer within {timeout:?}")]
    Timeout { name: String, timeout: Duration },
    #[error("Lease {name}: {source}")]
    Api { name: String, source: kube::Error },
}

/// Why a leader stopped leading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseLost {
    #[error("could not renew the lease before the renew deadline")]
    DeadlinePassed,
    #[error("replica {0} holds the lease")]
    TakenBy(String),
}

enum Attempt {
    Held,
    HeldBy(String),
}

#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    seen: Observation,
}

impl LeaderElector {
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            seen: Observation::default(),
        }
    }

    /// Waits until this replica holds the lease, then lets `fence` grant permits until the
    /// renew deadline.
    pub async fn acquire(&mut self, fence: &Fence) {
        let mut logged = false;
        loop {
            let started = Instant::now();
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Held) => {
                    fence.lead_until(self.term_from(started));
                    info!(lease = %self.config.name, identity = %self.config.identity, "became leader");
                    return;
                }
                Ok(Attempt::HeldBy(holder)) => {
                    if !logged {
                        info!(lease = %self.config.name, %holder, "another replica leads; standing by");
                        logged = true;
                    }
                }
                Err(LeaseError::Conflict(_)) => debug!("another replica wrote the lease first"),
                Err(e) => warn!(error = %e, "cannot read or take the lease"),
            }
            tokio::time::sleep(self.config.timings.retry_period).await;
        }
    }

    /// Renews every retry period and moves `fence`'s deadline on with each renewal. Returns
    /// when the renew deadline passed without one, or another replica holds the lease; by
    /// then `fence` grants no permit any more (its deadline has passed) or the caller must
    /// revoke it.
    pub async fn hold(mut self, fence: Fence) -> LeaseLost {
        let t = self.config.timings;
        let Some(mut until) = fence.deadline() else {
            return LeaseLost::DeadlinePassed;
        };
        tokio::time::sleep_until(until.min(Instant::now() + t.retry_period)).await;
        loop {
            let started = Instant::now();
            let Some(left) = until
                .checked_duration_since(started)
                .filter(|d| !d.is_zero())
            else {
                return LeaseLost::DeadlinePassed;
            };
            let pause = match tokio::time::timeout(left, self.try_acquire_or_renew()).await {
                Err(_) => return LeaseLost::DeadlinePassed,
                Ok(Ok(Attempt::Held)) => {
                    until = self.term_from(started);
                    fence.lead_until(until);
                    t.retry_period
                }
                Ok(Ok(Attempt::HeldBy(holder))) => return LeaseLost::TakenBy(holder),
                Ok(Err(LeaseError::Conflict(_))) => {
                    // Not lost: someone touched the object; read it again soon.
                    debug!("the lease changed while renewing; reading it again");
                    t.retry_period / 4
                }
                Ok(Err(e)) => {
                    warn!(error = %e, "cannot renew the lease");
                    t.retry_period
                }
            };
            tokio::time::sleep_until(until.min(Instant::now() + pause)).await;
        }
    }

    /// Gives the lease up so that a standby takes over at once instead of after it expires.
    /// Call it only when nothing can be written any more ([`Fence::end`] returned).
    pub async fn release(&self) {
        let lease = match self.call(self.api.get_opt(&self.config.name)).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return,
            Err(e) => {
                warn!(error = %e, "cannot release the lease");
                return;
            }
        };
        let mut lease = lease;
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        match self
            .call(
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease),
            )
            .await
        {
            Ok(_) => info!("released the lease"),
            Err(e) => warn!(error = %e, "cannot release the lease"),
        }
    }

    /// A term that began at `started` (before the write that won or renewed the lease) ends
    /// `renew_deadline` later; a standby sees the write only after it happened, and waits a
    /// whole lease duration more.
    fn term_from(&self, started: Instant) -> Instant {
        started
            .checked_add(self.config.timings.renew_deadline)
            .unwrap_or(started)
    }

    /// One Lease API call, bounded by the call timeout.
    async fn call<T>(
        &self,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, LeaseError> {
        let timeout = self.config.timings.call_timeout();
        let name = || self.config.name.clone();
        match tokio::time::timeout(timeout, request).await {
            Err(_) => Err(LeaseError::Timeout {
                name: name(),
                timeout,
            }),
            Ok(Err(kube::Error::Api(s))) if s.code == 409 => Err(LeaseError::Conflict(name())),
            Ok(Err(source)) => Err(LeaseError::Api {
                name: name(),
                source,
            }),
            Ok(Ok(v)) => Ok(v),
        }
    }

    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, LeaseError> {
        let t = self.config.timings;
        let now = jiff::Timestamp::now();
        let duration_secs = i32::try_from(t.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.call(self.api.get_opt(&self.config.name)).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.config.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            let created = self
                .call(self.api.create(&PostParams::default(), &lease))
                .await?;
            self.seen.observe(LeaseRecord::of(&created), Instant::now());
            return Ok(Attempt::Held);
        };
        self.seen.observe(LeaseRecord::of(&lease), Instant::now());
        let standing = self
            .seen
            .standing(&self.config.identity, Instant::now(), t.lease_duration);
        if let Standing::HeldBy(holder) = standing {
            return Ok(Attempt::HeldBy(holder));
        }
        let spec = lease.spec.get_or_insert_with(Default::default);
        if standing != Standing::Ours {
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.holder_identity = Some(self.config.identity.clone());
        spec.lease_duration_seconds = Some(duration_secs);
        spec.renew_time = Some(MicroTime(now));
        // `replace` carries the resourceVersion we read: a concurrent change makes it fail with 409.
        let updated = self
            .call(
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease),
            )
            .await?;
        self.seen.observe(LeaseRecord::of(&updated), Instant::now());
        Ok(Attempt::Held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: &str, renewed: &str, rv: &str) -> LeaseRecord {
        LeaseRecord {
            holder: Some(holder.to_owned()).filter(|h| !h.is_empty()),
            lease_duration_seconds: Some(15),
            acquire_time: Some("2025-01-01T00:00:00Z".parse().unwrap()),
            renew_time: Some(renewed.parse().unwrap()),
            transitions: Some(3),
            resource_version: Some(rv.to_owned()),
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn expiry_is_timed_from_when_the_record_was_seen_not_from_its_renew_time() {
        let t0 = Instant::now();
        // renewTime an hour in the past: a standby whose clock runs an hour ahead (or a holder
        // whose clock runs behind). Comparing wall clocks would call this lease long expired.
        let skewed = record("a", "2025-01-01T00:00:00Z", "100");
        let mut seen = Observation::default();
        seen.observe(skewed.clone(), t0);
        assert_eq!(
            seen.standing("b", t0, 15 * SECOND),
            Standing::HeldBy("a".into())
        );
        assert_eq!(
            seen.standing("b", t0 + 14 * SECOND, 15 * SECOND),
            Standing::HeldBy("a".into())
        );
        // Unchanged for the record's duration on our clock: expired.
        assert_eq!(
            seen.standing("b", t0 + 15 * SECOND, 15 * SECOND),
            Standing::Expired
        );
    }

    #[test]
    fn any_change_of_the_record_restarts_the_clock() {
        let t0 = Instant::now();
        let mut seen = Observation::default();
        seen.observe(record("a", "2025-01-01T00:00:00Z", "100"), t0);
        // Read again unchanged: the clock keeps running from t0.
        seen.observe(record("a", "2025-01-01T00:00:00Z", "100"), t0 + 10 * SECOND);
        assert_eq!(
            seen.standing("b", t0 + 15 * SECOND, 15 * SECOND),
            Standing::Expired
        );
        // A renewal (new renewTime) restarts it, and so does a new resourceVersion alone.
        seen.observe(record("a", "2025-01-01T00:00:02Z", "101"), t0 + 15 * SECOND);
        assert_eq!(
            seen.standing("b", t0 + 29 * SECOND, 15 * SECOND),
            Standing::HeldBy("a".into())
        );
        seen.observe(record("a", "2025-01-01T00:00:02Z", "102"), t0 + 29 * SECOND);
        assert_eq!(
            seen.standing("b", t0 + 43 * SECOND, 15 * SECOND),
            Standing::HeldBy("a".into())
        );
        assert_eq!(
            seen.standing("b", t0 + 44 * SECOND, 15 * SECOND),
            Standing::Expired
        );
    }

    #[test]
    fn a_released_or_own_lease_needs_no_wait_and_odd_durations_are_safe() {
        let t0 = Instant::now();
        let released = record("", "2025-01-01T00:00:00Z", "1");
        assert_eq!(standing(&released, t0, t0, "b", SECOND), Standing::Free);
        let own = record("b", "2025-01-01T00:00:00Z", "1");
        assert_eq!(standing(&own, t0, t0, "b", SECOND), Standing::Ours);
        let mut odd = record("a", "2025-01-01T00:00:00Z", "1");
        odd.lease_duration_seconds = None;
        assert_eq!(
            standing(&odd, t0, t0 + 14 * SECOND, "b", 15 * SECOND),
            Standing::HeldBy("a".into())
        );
        odd.lease_duration_seconds = Some(-5);
        assert_eq!(standing(&odd, t0, t0, "b", SECOND), Standing::Expired);
        odd.lease_duration_seconds = Some(i32::MAX);
        assert_eq!(
            standing(&odd, t0, t0 + 3600 * SECOND, "b", SECOND),
            Standing::HeldBy("a".into())
        );
        // A clock that went backwards (an observation "after" now) does not panic.
        assert_eq!(
            standing(&odd, t0 + SECOND, t0, "b", SECOND),
            Standing::HeldBy("a".into())
        );
        assert_eq!(
            Observation::default().standing("b", t0, SECOND),
            Standing::Free
        );
    }

    #[test]
    fn timings_default_like_client_go_and_refuse_a_deadline_past_the_lease() {
        let d = LeaseTimings::new(15, None, None).unwrap();
        assert_eq!(d, LeaseTimings::default());
        assert_eq!(d.call_timeout(), 5 * SECOND);
        assert!(d.call_timeout() < d.renew_deadline);
        let short = LeaseTimings::new(6, None, None).unwrap();
        assert_eq!(short.renew_deadline, 4 * SECOND);
        assert!(short.retry_period < short.renew_deadline);
        let one = LeaseTimings::new(1, None, None).unwrap();
        assert!(!one.retry_period.is_zero() && one.retry_period < one.renew_deadline);
        assert_eq!(
            LeaseTimings::new(15, Some(15), None),
            Err(TimingError::RenewDeadline {
                renew: 15 * SECOND,
                lease: 15 * SECOND
            })
        );
        assert!(LeaseTimings::new(15, Some(0), None).is_err());
        assert!(LeaseTimings::new(15, Some(10), Some(10)).is_err());
        assert!(LeaseTimings::new(15, Some(10), Some(0)).is_err());
        assert!(LeaseTimings::new(0, None, None).is_err());
        assert!(LeaseTimings::new(u64::MAX, None, None).is_err());
        assert!(LeaseTimings::new(20, Some(12), Some(3)).is_ok());
    }

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn the_fence_grants_permits_only_within_the_term() {
        let fence = Fence::not_leading();
        assert!(fence.permit().is_none(), "a standby gets no permit");
        let t0 = Instant::now();
        fence.lead_until(t0 + 40 * MS);
        assert!(fence.permit().is_some());
        // An older deadline never shortens the term; a newer one extends it.
        fence.lead_until(t0 + 20 * MS);
        assert_eq!(fence.deadline(), Some(t0 + 40 * MS));
        tokio::time::sleep_until(t0 + 40 * MS).await;
        assert!(
            fence.permit().is_none(),
            "no permit once the renew deadline passed, whether or not anyone noticed"
        );
        fence.lead_until(Instant::now() + SECOND);
        assert!(fence.permit().is_some());
        fence.revoke();
        fence.lead_until(Instant::now() + 2 * SECOND);
        assert!(fence.permit().is_none(), "an ended fence stays ended");
    }

    #[tokio::test]
    async fn expiry_is_noticed_at_the_deadline_and_follows_renewals() {
        let fence = Fence::not_leading();
        let t0 = Instant::now();
        fence.lead_until(t0 + 40 * MS);
        let f = fence.clone();
        let expired = tokio::spawn(async move {
            f.expired().await;
            Instant::now()
        });
        tokio::time::sleep(20 * MS).await;
        fence.lead_until(t0 + 80 * MS);
        let at = expired.await.unwrap();
        assert!(at >= t0 + 80 * MS, "expired {:?} after the start", at - t0);
        // Without election, never (until revoked).
        let unbounded = Fence::unbounded();
        assert!(
            tokio::time::timeout(50 * MS, unbounded.expired())
                .await
                .is_err()
        );
        unbounded.revoke();
        unbounded.expired().await;
    }

    #[tokio::test]
    async fn ending_the_fence_waits_for_permits_granted_before() {
        let fence = Fence::unbounded();
        let permit = fence.permit().expect("leads");
        let f = fence.clone();
        let ended = tokio::spawn(async move { f.end().await });
        tokio::task::yield_now().await;
        assert!(fence.permit().is_none(), "no new permit while ending");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!ended.is_finished(), "ended while a permit was held");
        drop(permit);
        tokio::time::timeout(SECOND, ended)
            .await
            .expect("ends once the permit is dropped")
            .unwrap();
        assert!(fence.permit().is_none());
    }
}
