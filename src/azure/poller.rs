//! Fetches each scale set on a schedule of its own, for every watch that names it: one paged
//! list per distinct (ARM endpoint, subscription, resource group, scale set, api-version,
//! credentials) per shortest interval of its watches. Knows Azure, not Kubernetes: watches
//! are names, and whoever runs the watches is told by name when a new result is there.
//!
//! A [`Scheduler`] owns one entry per scale set, with a task that sleeps until the set's next
//! fetch is due ([`crate::azure::schedule::Schedule`]), fetches, keeps the result and names the
//! set's watches on the trigger channel. Reconciles only read that result, so neither a
//! watch's own status write nor a watch added to a set already scheduled causes a fetch.

use crate::api::Cloud;
use crate::azure::arm::client::{ArmClient, ArmError, ScaleSetRef};
use crate::azure::arm::snapshot::ScaleSetSnapshot;
use crate::azure::schedule::{self, Schedule};
use crate::azure::{self, AzureSetupError, ClientSecret, EndpointOverrides};
use crate::controller::leader::{Fence, Permit};
use azure_core::credentials::TokenCredential;
use futures::channel::mpsc;
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// Fetches of one subscription running at once, by default (ARM budgets reads per
/// subscription and principal; Compute per scale set).
pub const DEFAULT_MAX_CONCURRENT_FETCHES_PER_SUBSCRIPTION: usize = 4;

/// Why a poll produced no instance list (`health::Reason::of_poll_error` names it).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PollError {
    #[error("{0}")]
    CredentialsNotFound(String),
    #[error(
        "credentials from Secrets are disabled in this installation (secretCredentials.enabled=false)"
    )]
    SecretCredentialsDisabled,
    /// The watch may not use the controller's own identity (see `crate::azure::ambient`).
    #[error("{0}")]
    CredentialsNotAllowed(String),
    /// Shared by every watch of the fetch, hence the `Arc`; the cause stays reachable.
    #[error("{0}")]
    CredentialSetup(#[source] Arc<AzureSetupError>),
    #[error(transparent)]
    Arm(#[from] ArmError),
}

impl PollError {
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Arm(e) => e.retry_after(),
            _ => None,
        }
    }
}

impl From<AzureSetupError> for PollError {
    fn from(e: AzureSetupError) -> Self {
        Self::CredentialSetup(Arc::new(e))
    }
}

/// Whose identity a poll uses.
#[derive(Clone, Debug)]
pub enum CredentialSource {
    /// The process's own identity: the controller's (workload identity, environment secret,
    /// managed identity) or, for `check`, see [`Poller::with_ambient_credential`].
    Ambient,
    ServicePrincipal(ClientSecret),
}

/// One watch, by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WatchId {
    pub namespace: String,
    pub name: String,
}

/// The outcome of one fetch of a scale set.
#[derive(Debug)]
pub struct Polled<T> {
    /// Unique to this fetch among all fetches of the scheduler: a watch that has seen `seq`
    /// has seen this result.
    pub seq: u64,
    /// When the fetch ended.
    pub at: jiff::Timestamp,
    pub result: Result<Arc<T>, PollError>,
}

impl<T> Clone for Polled<T> {
    fn clone(&self) -> Self {
        Self {
            seq: self.seq,
            at: self.at,
            result: self.result.clone(),
        }
    }
}

/// How a [`Scheduler`] fetches a scale set.
pub trait Fetch: Send + Sync + 'static {
    /// Identifies a scale set: watches with equal keys share its fetches.
    type Key: Clone + Eq + Hash + Send + Sync + 'static;
    /// What a fetch needs besides the key (credentials, say): the latest subscriber's.
    type Request: Clone + Send + 'static;
    type Value: Send + Sync + 'static;

    /// Held across one fetch.
    type Permit: Send;

    /// Sets of one group (a subscription) share the bound on concurrent fetches.
    fn group(key: &Self::Key) -> String;

    /// Whether a fetch may start now: `None` when this process does not lead (any more).
    fn permit(&self) -> Option<Self::Permit>;

    fn fetch(
        &self,
        request: Self::Request,
    ) -> impl Future<Output = Result<Self::Value, PollError>> + Send;
}

type Liveness = Arc<dyn Fn(&WatchId) -> bool + Send + Sync>;

/// Fetches each scale set on its own schedule and tells its watches when a result arrived.
pub struct Scheduler<F: Fetch> {
    inner: Arc<Inner<F>>,
}

struct Inner<F: Fetch> {
    fetcher: F,
    max_per_group: AtomicUsize,
    origin: Instant,
    seq: AtomicU64,
    stopped: AtomicBool,
    registry: Mutex<Registry<F>>,
    triggers: mpsc::UnboundedSender<WatchId>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<WatchId>>>,
    live: RwLock<Option<Liveness>>,
}

/// Locked before any set's state, never while holding one.
struct Registry<F: Fetch> {
    sets: HashMap<F::Key, Arc<SetEntry<F>>>,
    /// The set each watch is subscribed to.
    watches: HashMap<WatchId, F::Key>,
    groups: HashMap<String, Arc<Semaphore>>,
}

struct SetEntry<F: Fetch> {
    state: Mutex<SetState<F>>,
    /// Wakes the set's task when its interval shortened.
    wake: Notify,
    task: OnceLock<AbortHandle>,
}

struct SetState<F: Fetch> {
    request: F::Request,
    /// Each watch's own interval.
    subscribers: HashMap<WatchId, Duration>,
    schedule: Schedule,
    latest: Option<Polled<F::Value>>,
}

impl<F: Fetch> SetState<F> {
    /// The shortest interval of the set's watches.
    fn interval(&self) -> Duration {
        self.subscribers
            .values()
            .min()
            .copied()
            .unwrap_or(schedule::MAX_DELAY)
            .max(schedule::MIN_INTERVAL)
    }
}

/// Poisoning only means a panic elsewhere mid-update; the maps are still consistent enough
/// to go on scheduling.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<F: Fetch> Scheduler<F> {
    pub fn new(fetcher: F) -> Self {
        let (triggers, receiver) = mpsc::unbounded();
        Self {
            inner: Arc::new(Inner {
                fetcher,
                max_per_group: AtomicUsize::new(DEFAULT_MAX_CONCURRENT_FETCHES_PER_SUBSCRIPTION),
                origin: Instant::now(),
                seq: AtomicU64::new(0),
                stopped: AtomicBool::new(false),
                registry: Mutex::new(Registry {
                    sets: HashMap::new(),
                    watches: HashMap::new(),
                    groups: HashMap::new(),
                }),
                triggers,
                receiver: Mutex::new(Some(receiver)),
                live: RwLock::new(None),
            }),
        }
    }

    /// Bounds the fetches of one group (subscription) running at once; at least 1.
    pub fn set_max_concurrent_per_group(&self, max: usize) {
        self.inner
            .max_per_group
            .store(max.max(1), Ordering::Relaxed);
    }

    pub fn fetcher(&self) -> &F {
        &self.inner.fetcher
    }

    /// The watches to reconcile, each time a fetch of their set ended. Only the first call
    /// gets the channel.
    pub fn take_triggers(&self) -> Option<mpsc::UnboundedReceiver<WatchId>> {
        lock(&self.inner.receiver).take()
    }

    /// Tells the scheduler which watches still exist: before each fetch, a set forgets the
    /// watches that do not, and a set left without any is dropped unfetched.
    pub fn set_liveness(&self, live: impl Fn(&WatchId) -> bool + Send + Sync + 'static) {
        *self.inner.live.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(live));
    }

    /// Subscribes `watch` to the set `key` with its `interval`, leaving any set it named
    /// before; returns the set's latest result, or `None` before its first fetch ended (the
    /// trigger channel names the watch when it has).
    pub fn subscribe(
        &self,
        watch: &WatchId,
        key: F::Key,
        request: F::Request,
        interval: Duration,
    ) -> Option<Polled<F::Value>> {
        let inner = &self.inner;
        if inner.stopped.load(Ordering::Acquire) {
            return None;
        }
        let mut reg = lock(&inner.registry);
        if reg.watches.get(watch).is_some_and(|k| *k != key) {
            reg.leave(watch);
        }
        let running = reg
            .sets
            .get(&key)
            .filter(|e| e.task.get().is_none_or(|t| !t.is_finished()))
            .cloned();
        let entry = match running {
            Some(entry) => entry,
            None => {
                let mut h = DefaultHasher::new();
                key.hash(&mut h);
                let entry = Arc::new(SetEntry {
                    state: Mutex::new(SetState {
                        request: request.clone(),
                        subscribers: HashMap::new(),
                        schedule: Schedule::new(
                            inner.elapsed(),
                            schedule::phase(h.finish(), interval),
                        ),
                        latest: None,
                    }),
                    wake: Notify::new(),
                    task: OnceLock::new(),
                });
                let task = tokio::spawn(run_set(inner.clone(), key.clone(), entry.clone()));
                let _ = entry.task.set(task.abort_handle());
                reg.sets.insert(key.clone(), entry.clone());
                entry
            }
        };
        reg.watches.insert(watch.clone(), key);
        let mut state = lock(&entry.state);
        let before = state.interval();
        state.request = request;
        state.subscribers.insert(watch.clone(), interval);
        if state.interval() < before {
            entry.wake.notify_one();
        }
        state.latest.clone()
    }

    /// The watch no longer names any set (suspended, say); a set left without watches is
    /// dropped at once, with any fetch in flight.
    pub fn unsubscribe(&self, watch: &WatchId) {
        lock(&self.inner.registry).leave(watch);
    }

    /// Stops every set's task and fetch for good (shutdown, a lost lease).
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::Release);
        let mut reg = lock(&self.inner.registry);
        for entry in reg.sets.values() {
            entry.abort();
        }
        reg.sets.clear();
        reg.watches.clear();
        reg.groups.clear();
    }

    /// Scale sets scheduled now.
    pub fn scheduled_sets(&self) -> usize {
        lock(&self.inner.registry).sets.len()
    }
}

impl<F: Fetch> Drop for Scheduler<F> {
    fn drop(&mut self) {
        self.stop();
    }
}

impl<F: Fetch> SetEntry<F> {
    fn abort(&self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

impl<F: Fetch> Registry<F> {
    fn leave(&mut self, watch: &WatchId) {
        let Some(key) = self.watches.remove(watch) else {
            return;
        };
        let Some(entry) = self.sets.get(&key).cloned() else {
            return;
        };
        let empty = {
            let mut state = lock(&entry.state);
            state.subscribers.remove(watch);
            state.subscribers.is_empty()
        };
        if empty {
            entry.abort();
            self.sets.remove(&key);
            let used: HashSet<String> = self.sets.keys().map(F::group).collect();
            self.groups.retain(|g, _| used.contains(g));
        }
    }
}

impl<F: Fetch> Inner<F> {
    fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }

    fn instant(&self, offset: Duration) -> Instant {
        self.origin
            .checked_add(offset)
            .unwrap_or_else(|| Instant::now() + schedule::MAX_DELAY)
    }

    /// Forgets the set's watches that no longer exist; false when the set was dropped.
    fn prune(&self, key: &F::Key, entry: &Arc<SetEntry<F>>) -> bool {
        let live = self.live.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut reg = lock(&self.registry);
        if let Some(live) = live {
            let gone: Vec<WatchId> = lock(&entry.state)
                .subscribers
                .keys()
                .filter(|w| !live(w))
                .cloned()
                .collect();
            for watch in &gone {
                reg.leave(watch);
            }
        }
        reg.sets.get(key).is_some_and(|e| Arc::ptr_eq(e, entry))
    }

    fn semaphore(&self, key: &F::Key) -> Arc<Semaphore> {
        let max = self.max_per_group.load(Ordering::Relaxed);
        lock(&self.registry)
            .groups
            .entry(F::group(key))
            .or_insert_with(|| Arc::new(Semaphore::new(max)))
            .clone()
    }
}

/// The life of one scale set: sleep until due, fetch, publish, tell its watches; until no
/// watch names it.
async fn run_set<F: Fetch>(inner: Arc<Inner<F>>, key: F::Key, entry: Arc<SetEntry<F>>) {
    loop {
        let due = {
            let state = lock(&entry.state);
            state.schedule.next_due(state.interval())
        };
        if inner.elapsed() < due {
            // Recomputed after waking: the interval may have changed either way meanwhile.
            tokio::select! {
                () = tokio::time::sleep_until(inner.instant(due)) => {}
                () = entry.wake.notified() => {}
            }
            continue;
        }
        if !inner.prune(&key, &entry) {
            return;
        }
        let Ok(slot) = inner.semaphore(&key).acquire_owned().await else {
            return;
        };
        // Asked after the wait for a slot, and held through the fetch: a leader past its
        // renew deadline calls ARM no more, and one that ends waits for this fetch.
        let lead = inner.fetcher.permit();
        let request = {
            let mut state = lock(&entry.state);
            let interval = state.interval();
            state.schedule.started(due, inner.elapsed(), interval);
            state.request.clone()
        };
        let Some(lead) = lead else {
            // Not leading: this interval's fetch is skipped, and nobody is told anything.
            continue;
        };
        let result = inner.fetcher.fetch(request).await;
        drop(lead);
        drop(slot);
        let seq = inner.seq.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        let watches: Vec<WatchId> = {
            let mut state = lock(&entry.state);
            let interval = state.interval();
            match &result {
                Ok(_) => state.schedule.succeeded(),
                Err(e) => state
                    .schedule
                    .failed(inner.elapsed(), interval, e.retry_after()),
            }
            state.latest = Some(Polled {
                seq,
                at: jiff::Timestamp::now(),
                result: result.map(Arc::new),
            });
            state.subscribers.keys().cloned().collect()
        };
        for watch in watches {
            // Nobody listening (a scheduler used without triggers) is no reason to stop.
            let _ = inner.triggers.unbounded_send(watch);
        }
    }
}

/// Identifies a credential without holding the secret itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CredentialKey {
    authority: String,
    principal: Option<(String, String, u64)>,
}

impl CredentialKey {
    /// Who the credential signs in as, without its secret: ARM throttles per principal.
    fn principal_name(&self) -> String {
        match &self.principal {
            Some((tenant, client, _)) => format!("{tenant}/{client}"),
            None => "ambient".into(),
        }
    }
}

/// One scale set as fetched: equal keys share one fetch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PollKey {
    arm: String,
    subscription: String,
    resource_group: String,
    scale_set: String,
    api_version: String,
    /// A page trimmed by `$select` cannot serve a watch that asks for the model view.
    model_view: bool,
    credential: CredentialKey,
}

/// Everything one fetch needs.
#[derive(Clone, Debug)]
pub struct FetchRequest {
    endpoints: azure::CloudEndpoints,
    target: ScaleSetRef,
    source: CredentialSource,
    credential: CredentialKey,
    ambient: AmbientCredential,
}

/// Makes the process's own credential: the controller's or a person's at a terminal.
pub type AmbientCredential =
    fn(&reqwest::Client, &url::Url) -> Result<Arc<dyn TokenCredential>, AzureSetupError>;

/// Lists scale sets from ARM, with credentials kept per identity.
pub struct ArmFetcher {
    arm: ArmClient,
    http: reqwest::Client,
    credentials: Mutex<HashMap<CredentialKey, Arc<dyn TokenCredential>>>,
    /// Asked before each fetch (see [`Fetch::permit`]).
    fence: Mutex<Fence>,
}

impl Fetch for ArmFetcher {
    type Key = PollKey;
    type Request = FetchRequest;
    type Value = ScaleSetSnapshot;
    type Permit = Permit;

    fn group(key: &PollKey) -> String {
        format!("{} {}", key.arm, key.subscription)
    }

    fn permit(&self) -> Option<Permit> {
        lock(&self.fence).permit()
    }

    async fn fetch(&self, request: FetchRequest) -> Result<ScaleSetSnapshot, PollError> {
        let FetchRequest {
            endpoints,
            target,
            source,
            credential,
            ambient,
        } = request;
        let principal = credential.principal_name();
        let credential = self.credential(&endpoints, &source, credential, ambient)?;
        let (arm, scope) = (&endpoints.arm, endpoints.scope.as_str());
        let uniform = self
            .arm
            .list_instance_views(arm, &target, credential.as_ref(), &principal, scope)
            .await;
        let flexible = match &uniform {
            Ok(snapshot) => snapshot.lists_flexible_references(),
            // Before 2025-11-01 ARM refuses the scale set VM list of a Flexible set outright.
            Err(ArmError::Api {
                status: 400,
                code,
                message,
            }) => code.eq_ignore_ascii_case("OperationNotAllowed") && message.contains("Flexible"),
            Err(_) => false,
        };
        if flexible {
            return Ok(self
                .arm
                .list_flexible_instance_views(arm, &target, credential.as_ref(), &principal, scope)
                .await?);
        }
        Ok(uniform?)
    }
}

impl ArmFetcher {
    fn credential(
        &self,
        endpoints: &azure::CloudEndpoints,
        source: &CredentialSource,
        key: CredentialKey,
        ambient: AmbientCredential,
    ) -> Result<Arc<dyn TokenCredential>, PollError> {
        let mut creds = lock(&self.credentials);
        if let Some(c) = creds.get(&key) {
            return Ok(c.clone());
        }
        let credential = match source {
            CredentialSource::Ambient => ambient(&self.http, &endpoints.authority)?,
            CredentialSource::ServicePrincipal(secret) => {
                azure::client_secret_credential(&self.http, &endpoints.authority, secret)?
            }
        };
        // A rotated secret gets a new key; drop credentials of older rotations of the same principal.
        creds.retain(|k, _| {
            k.authority != key.authority
                || k.principal.as_ref().map(|p| (&p.0, &p.1))
                    != key.principal.as_ref().map(|p| (&p.0, &p.1))
        });
        creds.insert(key, credential.clone());
        Ok(credential)
    }
}

/// Scale sets fetched from ARM on their schedules, for the watches that name them.
pub struct Poller {
    overrides: EndpointOverrides,
    ambient: AmbientCredential,
    scheduler: Scheduler<ArmFetcher>,
}

impl Poller {
    pub fn new(arm: ArmClient, http: reqwest::Client, overrides: EndpointOverrides) -> Self {
        Self {
            scheduler: Scheduler::new(ArmFetcher {
                arm,
                http,
                credentials: Mutex::default(),
                fence: Mutex::new(Fence::unbounded()),
            }),
            overrides,
            ambient: azure::ambient_credential,
        }
    }

    /// Uses `ambient` for [`CredentialSource::Ambient`] instead of the controller's identity.
    pub fn with_ambient_credential(mut self, ambient: AmbientCredential) -> Self {
        self.ambient = ambient;
        self
    }

    /// Fetches start only with a permit of `fence`, held through the fetch.
    pub fn set_fence(&self, fence: Fence) {
        *lock(&self.scheduler.fetcher().fence) = fence;
    }

    /// Bounds the fetches of one subscription running at once (at least 1); for the sets
    /// scheduled from now on.
    pub fn set_max_concurrent_fetches_per_subscription(&self, max: usize) {
        self.scheduler.set_max_concurrent_per_group(max);
    }

    /// The key and request of a scale set as seen with `source`'s identity.
    fn request(
        &self,
        cloud: Cloud,
        target: &ScaleSetRef,
        source: &CredentialSource,
    ) -> (PollKey, FetchRequest) {
        let endpoints = azure::endpoints(cloud, &self.overrides);
        let credential = CredentialKey {
            authority: endpoints.authority.to_string(),
            principal: match source {
                CredentialSource::Ambient => None,
                CredentialSource::ServicePrincipal(s) => {
                    let mut h = DefaultHasher::new();
                    s.client_secret.hash(&mut h);
                    Some((s.tenant_id.clone(), s.client_id.clone(), h.finish()))
                }
            },
        };
        let key = PollKey {
            arm: endpoints.arm.to_string(),
            subscription: target.subscription_id.to_ascii_lowercase(),
            resource_group: target.resource_group.to_lowercase(),
            scale_set: target.scale_set_name.to_ascii_lowercase(),
            api_version: target.api_version.clone(),
            model_view: target.model_view,
            credential: credential.clone(),
        };
        let request = FetchRequest {
            endpoints,
            target: target.clone(),
            source: source.clone(),
            credential,
            ambient: self.ambient,
        };
        (key, request)
    }

    /// Fetches the scale set now, outside any schedule (for `check`).
    pub async fn fetch_once(
        &self,
        cloud: Cloud,
        target: &ScaleSetRef,
        source: &CredentialSource,
    ) -> Result<ScaleSetSnapshot, PollError> {
        let (_, request) = self.request(cloud, target, source);
        self.scheduler.fetcher().fetch(request).await
    }

    /// Puts `watch` on the schedule of the scale set it names (see [`Scheduler::subscribe`]).
    pub fn subscribe(
        &self,
        watch: &WatchId,
        cloud: Cloud,
        target: &ScaleSetRef,
        source: &CredentialSource,
        interval: Duration,
    ) -> Option<Polled<ScaleSetSnapshot>> {
        let (key, request) = self.request(cloud, target, source);
        self.scheduler.subscribe(watch, key, request, interval)
    }

    pub fn unsubscribe(&self, watch: &WatchId) {
        self.scheduler.unsubscribe(watch);
    }

    pub fn take_triggers(&self) -> Option<mpsc::UnboundedReceiver<WatchId>> {
        self.scheduler.take_triggers()
    }

    pub fn set_liveness(&self, live: impl Fn(&WatchId) -> bool + Send + Sync + 'static) {
        self.scheduler.set_liveness(live);
    }

    pub fn stop(&self) {
        self.scheduler.stop();
    }

    pub fn scheduled_sets(&self) -> usize {
        self.scheduler.scheduled_sets()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::collections::VecDeque;

    /// Records every fetch; keys are `group/name`.
    struct Fake {
        origin: Instant,
        latency: Duration,
        calls: Mutex<Vec<(String, Duration)>>,
        failures: Mutex<VecDeque<PollError>>,
        in_flight: Mutex<HashMap<String, usize>>,
        most_in_flight: Mutex<HashMap<String, usize>>,
        not_leading: AtomicBool,
    }

    impl Fetch for Arc<Fake> {
        type Key = String;
        type Request = String;
        type Value = usize;
        type Permit = ();

        fn group(key: &String) -> String {
            key.split('/').next().unwrap_or_default().to_owned()
        }

        fn permit(&self) -> Option<()> {
            (!self.not_leading.load(Ordering::Relaxed)).then_some(())
        }

        async fn fetch(&self, request: String) -> Result<usize, PollError> {
            let group = Self::group(&request);
            let n = {
                let mut calls = lock(&self.calls);
                calls.push((request.clone(), self.origin.elapsed()));
                calls.len()
            };
            {
                let mut in_flight = lock(&self.in_flight);
                let now = in_flight.entry(group.clone()).or_default();
                *now += 1;
                let most = *now;
                let mut record = lock(&self.most_in_flight);
                let top = record.entry(group.clone()).or_default();
                *top = (*top).max(most);
            }
            tokio::time::sleep(self.latency).await;
            *lock(&self.in_flight).entry(group).or_default() -= 1;
            match lock(&self.failures).pop_front() {
                Some(e) => Err(e),
                None => Ok(n),
            }
        }
    }

    fn fake(latency: Duration) -> (Arc<Fake>, Scheduler<Arc<Fake>>) {
        let fake = Arc::new(Fake {
            origin: Instant::now(),
            latency,
            calls: Mutex::default(),
            failures: Mutex::default(),
            in_flight: Mutex::default(),
            most_in_flight: Mutex::default(),
            not_leading: AtomicBool::new(false),
        });
        (fake.clone(), Scheduler::new(fake))
    }

    fn watch(name: &str) -> WatchId {
        WatchId {
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn sub(scheduler: &Scheduler<Arc<Fake>>, w: &str, set: &str, every: u64) -> Option<u64> {
        scheduler
            .subscribe(&watch(w), set.into(), set.into(), s(every))
            .map(|p| p.seq)
    }

    /// When each fetch of `set` started, in whole seconds since the test began.
    fn fetch_times(fake: &Fake, set: &str) -> Vec<Duration> {
        lock(&fake.calls)
            .iter()
            .filter(|(k, _)| k == set)
            .map(|(_, at)| *at)
            .collect()
    }

    /// Seconds between fetches.
    fn gaps(times: &[Duration]) -> Vec<u64> {
        times
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64().round() as u64)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn watches_of_one_set_share_one_fetch_per_interval_even_one_in_flight() {
        let (fake, scheduler) = fake(s(2));
        let mut triggers = scheduler.take_triggers().expect("first take");
        assert!(scheduler.take_triggers().is_none());
        for w in ["a", "b", "c"] {
            assert_eq!(
                sub(&scheduler, w, "sub/web", 60),
                None,
                "nothing fetched yet"
            );
        }
        // Wait until the first fetch is in flight, then a fourth watch arrives.
        while lock(&fake.calls).is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(sub(&scheduler, "d", "sub/web", 60), None, "still in flight");
        tokio::time::sleep(s(5 * 60)).await;
        // Every fetch reconciles all four watches, the late one included (5s: a fetch in
        // flight ends meanwhile, and the next is a minute away).
        let mut named = Vec::new();
        while let Ok(Some(w)) = tokio::time::timeout(s(5), triggers.next()).await {
            named.push(w.name);
        }
        let times = fetch_times(&fake, "sub/web");
        assert!(
            times[0] < s(30),
            "the first fetch comes within its phase window: {times:?}"
        );
        assert!(times.len() >= 5, "{times:?}");
        assert_eq!(
            gaps(&times),
            vec![60; times.len() - 1],
            "one fetch per interval"
        );
        assert_eq!(named.len(), 4 * times.len(), "{named:?}");
        for w in ["a", "b", "c", "d"] {
            assert_eq!(named.iter().filter(|n| *n == w).count(), times.len());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn adding_or_removing_a_watch_never_fetches_a_set_already_scheduled() {
        let (fake, scheduler) = fake(s(1));
        sub(&scheduler, "a", "sub/web", 60);
        tokio::time::sleep(s(45)).await;
        let first = fetch_times(&fake, "sub/web");
        assert_eq!(first.len(), 1);
        // A new watch reads the latest result at once; the one that leaves changes nothing.
        let seq = sub(&scheduler, "b", "sub/web", 60).expect("the latest result");
        assert_eq!(sub(&scheduler, "c", "sub/web", 60), Some(seq));
        scheduler.unsubscribe(&watch("a"));
        tokio::time::sleep(s(10)).await;
        assert_eq!(fetch_times(&fake, "sub/web"), first, "no extra fetch");
        tokio::time::sleep(s(3 * 60)).await;
        assert_eq!(gaps(&fetch_times(&fake, "sub/web")), vec![60; 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_that_shortens_its_interval_shortens_the_sets() {
        let (fake, scheduler) = fake(s(1));
        sub(&scheduler, "slow", "sub/web", 60);
        while lock(&fake.calls).is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Ten seconds after the first fetch, a second watch wants one every 20s.
        tokio::time::sleep(s(10)).await;
        sub(&scheduler, "fast", "sub/web", 20);
        tokio::time::sleep(s(100)).await;
        let times = fetch_times(&fake, "sub/web");
        assert_eq!(gaps(&times), vec![20; times.len() - 1], "{times:?}");
        // The same watch asking for 60s again: the set goes back to 60s.
        sub(&scheduler, "fast", "sub/web", 60);
        let before = times.len();
        tokio::time::sleep(s(180)).await;
        let times = fetch_times(&fake, "sub/web");
        assert_eq!(gaps(&times[before - 1..]), vec![60; times.len() - before]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_fetch_is_retried_for_real_after_5s_then_10s_and_retry_after_is_honoured() {
        let (fake, scheduler) = fake(s(1));
        {
            let mut failures = lock(&fake.failures);
            failures.push_back(PollError::Arm(ArmError::Unavailable("503".into())));
            failures.push_back(PollError::Arm(ArmError::Unavailable("503".into())));
            failures.push_back(PollError::Arm(ArmError::Throttled {
                retry_after: s(30),
                code: "SubscriptionRequestsThrottled".into(),
            }));
        }
        sub(&scheduler, "a", "sub/web", 60);
        tokio::time::sleep(s(30 + 7 + 12 + 32 + 61)).await;
        let times = fetch_times(&fake, "sub/web");
        // Each fetch takes 1s: retries 5s and 10s after the failures end, then Retry-After's
        // 30s; the success resumes the interval (fetches 4 and 5).
        assert_eq!(gaps(&times), vec![6, 11, 31, 60], "{times:?}");
        let latest = scheduler
            .subscribe(&watch("a"), "sub/web".into(), "sub/web".into(), s(60))
            .expect("a result");
        assert!(latest.result.is_ok());
        assert_eq!(latest.seq, 5, "every fetch is a result of its own");
    }

    #[tokio::test(start_paused = true)]
    async fn sets_no_live_watch_names_are_dropped_without_a_fetch() {
        let (fake, scheduler) = fake(s(1));
        let alive = Arc::new(Mutex::new(HashSet::from(["a".to_owned(), "b".to_owned()])));
        let check = alive.clone();
        scheduler.set_liveness(move |w| lock(&check).contains(&w.name));
        sub(&scheduler, "a", "sub/web", 60);
        sub(&scheduler, "b", "sub/api", 60);
        tokio::time::sleep(s(35)).await;
        assert_eq!(lock(&fake.calls).len(), 2);
        assert_eq!(scheduler.scheduled_sets(), 2);
        // "a" is deleted: its set goes at its next due time, unfetched.
        lock(&alive).remove("a");
        // "b" is suspended: its set goes at once.
        scheduler.unsubscribe(&watch("b"));
        assert_eq!(scheduler.scheduled_sets(), 1);
        tokio::time::sleep(s(120)).await;
        assert_eq!(
            lock(&fake.calls).len(),
            2,
            "no fetch for sets nobody watches"
        );
        assert_eq!(scheduler.scheduled_sets(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_that_moves_to_another_set_leaves_the_old_one() {
        let (fake, scheduler) = fake(s(1));
        sub(&scheduler, "a", "sub/web", 60);
        tokio::time::sleep(s(35)).await;
        sub(&scheduler, "a", "sub/api", 60);
        assert_eq!(scheduler.scheduled_sets(), 1);
        tokio::time::sleep(s(120)).await;
        assert_eq!(fetch_times(&fake, "sub/web").len(), 1);
        assert_eq!(fetch_times(&fake, "sub/api").len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn first_fetches_of_sets_created_together_are_spread_over_their_window() {
        let (fake, scheduler) = fake(s(1));
        for i in 0..40 {
            let set = format!("sub/set-{i}");
            sub(&scheduler, &set, &set, 60);
        }
        tokio::time::sleep(s(59)).await;
        let calls = lock(&fake.calls).clone();
        assert_eq!(calls.len(), 40, "one first fetch per set");
        assert!(calls.iter().all(|(_, at)| *at < s(30)), "{calls:?}");
        let seconds: HashSet<u64> = calls.iter().map(|(_, at)| at.as_secs()).collect();
        assert!(seconds.len() > 15, "not all at once: {calls:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded_per_subscription() {
        let (fake, scheduler) = fake(s(10));
        scheduler.set_max_concurrent_per_group(2);
        for group in ["one", "two"] {
            for i in 0..20 {
                let set = format!("{group}/set-{i}");
                sub(&scheduler, &set, &set, 60);
            }
        }
        tokio::time::sleep(s(59)).await;
        let most = lock(&fake.most_in_flight).clone();
        assert_eq!(most.get("one"), Some(&2), "{most:?}");
        assert_eq!(most.get("two"), Some(&2), "{most:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_fetch_starts_without_a_permit_and_nobody_is_told() {
        let (fake, scheduler) = fake(s(1));
        let mut triggers = scheduler.take_triggers().expect("first take");
        sub(&scheduler, "a", "sub/web", 60);
        tokio::time::sleep(s(35)).await;
        assert_eq!(lock(&fake.calls).len(), 1);
        assert!(triggers.next().await.is_some());
        // The term ended: the set's next fetches are skipped.
        fake.not_leading.store(true, Ordering::Relaxed);
        tokio::time::sleep(s(180)).await;
        assert_eq!(lock(&fake.calls).len(), 1);
        assert!(
            tokio::time::timeout(s(1), triggers.next()).await.is_err(),
            "no reconcile for a fetch that did not happen"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_fetched_after_stop() {
        let (fake, scheduler) = fake(s(1));
        sub(&scheduler, "a", "sub/web", 60);
        tokio::time::sleep(s(35)).await;
        scheduler.stop();
        assert_eq!(sub(&scheduler, "b", "sub/api", 60), None);
        tokio::time::sleep(s(300)).await;
        assert_eq!(lock(&fake.calls).len(), 1);
    }
}
