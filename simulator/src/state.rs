//! The simulator's mutable world: scale sets and their instances, faults,
//! issued tokens, and request statistics. Shared by the HTTP handlers, the
//! admin API and in-process tests.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::scenario::{
    Fault, FederatedIdentity, InstanceSpec, RateLimits, ScaleSetSpec, Scenario, ServicePrincipal,
    TokenFault, TokenOutage, TokenSettings,
};

/// Errors of the state-changing operations (admin API and handle methods).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no scale set {0}")]
    ScaleSetNotFound(String),
    #[error("scale set {scale_set} has no instance {id}")]
    InstanceNotFound { scale_set: String, id: String },
    #[error("{0}")]
    Invalid(String),
}

/// Names one scale set; compared case-insensitively, as ARM does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScaleSetRef {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
}

impl ScaleSetRef {
    pub fn new(
        subscription: impl Into<String>,
        resource_group: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            subscription: subscription.into(),
            resource_group: resource_group.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ScaleSetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.subscription, self.resource_group, self.name
        )
    }
}

/// Orders instance ids numerically when they are numbers ("2" before "10"),
/// after that by name; used as the paging key too.
pub(crate) fn sort_key(id: &str) -> String {
    if !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()) {
        format!("0{id:0>20}")
    } else {
        format!("1{}", id.to_lowercase())
    }
}

pub(crate) struct InstanceRecord {
    /// The instance as described (scale-set defaults not applied), id set.
    pub spec: InstanceSpec,
    /// Stands in for the number in default fault/update domains when the
    /// id is not numeric.
    pub ordinal: u64,
    pub changed_at: Timestamp,
    /// When the instance first appeared (its `timeCreated` unless the spec sets one).
    pub created_at: Timestamp,
}

impl InstanceRecord {
    pub fn id(&self) -> &str {
        self.spec.id.as_deref().unwrap_or_default()
    }
}

pub(crate) struct ThrottleWindow {
    pub until: Instant,
    pub policy: String,
}

pub(crate) struct ScaleSetState {
    pub subscription: String,
    pub resource_group: String,
    /// Settings only: `instances`, `generate` and `faults` live below.
    pub spec: ScaleSetSpec,
    pub instances: BTreeMap<String, InstanceRecord>,
    pub faults: Vec<Fault>,
    pub throttled: Option<ThrottleWindow>,
    pub unique_id: String,
    /// Times of recent reads, for Compute's 3- and 30-minute budgets.
    pub reads: VecDeque<Instant>,
    next_ordinal: u64,
}

impl ScaleSetState {
    fn new(subscription: &str, resource_group: &str, spec: &ScaleSetSpec) -> Self {
        let now = Timestamp::now();
        let mut settings = spec.clone();
        settings.instances.clear();
        settings.generate = None;
        settings.faults.clear();
        let mut state = Self {
            subscription: subscription.to_owned(),
            resource_group: resource_group.to_owned(),
            unique_id: stable_uuid(&format!("{subscription}/{resource_group}/{}", spec.name)),
            spec: settings,
            instances: BTreeMap::new(),
            faults: spec.faults.clone(),
            throttled: None,
            reads: VecDeque::new(),
            next_ordinal: 0,
        };
        for inst in spec.expanded_instances() {
            state.upsert(inst, now);
        }
        state
    }

    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.subscription, self.resource_group, self.spec.name
        )
    }

    fn upsert(&mut self, spec: InstanceSpec, now: Timestamp) {
        let id = spec.id.clone().unwrap_or_default();
        let key = sort_key(&id);
        let (ordinal, created_at) = match self.instances.get(&key) {
            Some(old) => (old.ordinal, old.created_at),
            None => {
                self.next_ordinal += 1;
                (id.parse().unwrap_or(self.next_ordinal - 1), now)
            }
        };
        self.instances.insert(
            key,
            InstanceRecord {
                spec,
                ordinal,
                changed_at: now,
                created_at,
            },
        );
    }

    /// Counts one read against Compute's budgets and returns what remains of
    /// the 3- and 30-minute ones.
    pub fn count_read(&mut self, now: Instant, limits: &RateLimits) -> (u32, u32) {
        let (r3, r30) = self.remaining_reads(now, limits);
        self.reads.push_back(now);
        // Entries beyond the larger budget cannot change the answer.
        while self.reads.len() > limits.scale_set_vm_30min.max(limits.scale_set_vm_3min) as usize {
            self.reads.pop_front();
        }
        (r3.saturating_sub(1), r30.saturating_sub(1))
    }

    pub fn remaining_reads(&mut self, now: Instant, limits: &RateLimits) -> (u32, u32) {
        while self
            .reads
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1800))
        {
            self.reads.pop_front();
        }
        let in_3 = self
            .reads
            .iter()
            .filter(|t| now.duration_since(**t) <= Duration::from_secs(180))
            .count() as u32;
        let in_30 = self.reads.len() as u32;
        (
            limits.scale_set_vm_3min.saturating_sub(in_3),
            limits.scale_set_vm_30min.saturating_sub(in_30),
        )
    }

    /// When the oldest read in the 3-minute window leaves it.
    pub fn three_minute_window_frees_in(&self, now: Instant) -> Duration {
        self.reads
            .iter()
            .find(|t| now.duration_since(**t) <= Duration::from_secs(180))
            .map(|t| Duration::from_secs(180).saturating_sub(now.duration_since(*t)))
            .unwrap_or_default()
    }
}

pub(crate) struct ResourceGroupState {
    pub scale_sets: BTreeMap<String, ScaleSetState>,
}

pub(crate) struct SubscriptionState {
    pub tenant_id: Option<String>,
    pub resource_groups: BTreeMap<String, ResourceGroupState>,
}

/// ARM's subscription read budget: a token bucket per subscription and
/// principal.
pub(crate) struct Bucket {
    tokens: f64,
    at: Instant,
}

pub(crate) struct World {
    pub principals: Vec<ServicePrincipal>,
    pub federated: Vec<FederatedIdentity>,
    pub subscriptions: BTreeMap<String, SubscriptionState>,
    pub token_settings: TokenSettings,
    pub rate_limits: RateLimits,
    buckets: HashMap<(String, String), Bucket>,
}

impl World {
    fn new(scenario: &Scenario) -> Self {
        let mut subscriptions = BTreeMap::new();
        for s in &scenario.subscriptions {
            let mut resource_groups = BTreeMap::new();
            for rg in &s.resource_groups {
                let scale_sets = rg
                    .scale_sets
                    .iter()
                    .map(|ss| {
                        (
                            ss.name.to_lowercase(),
                            ScaleSetState::new(&s.id, &rg.name, ss),
                        )
                    })
                    .collect();
                resource_groups.insert(rg.name.to_lowercase(), ResourceGroupState { scale_sets });
            }
            subscriptions.insert(
                s.id.to_lowercase(),
                SubscriptionState {
                    tenant_id: s.tenant_id.clone(),
                    resource_groups,
                },
            );
        }
        Self {
            principals: scenario.service_principals.clone(),
            federated: scenario.federated_identities.clone(),
            subscriptions,
            token_settings: scenario.tokens.clone(),
            rate_limits: scenario.rate_limits.clone(),
            buckets: HashMap::new(),
        }
    }

    pub fn principal(&self, tenant_id: &str, client_id: &str) -> Option<&ServicePrincipal> {
        self.principals.iter().find(|p| {
            p.tenant_id.eq_ignore_ascii_case(tenant_id)
                && p.client_id.eq_ignore_ascii_case(client_id)
        })
    }

    pub fn knows_tenant(&self, tenant_id: &str) -> bool {
        self.principals
            .iter()
            .any(|p| p.tenant_id.eq_ignore_ascii_case(tenant_id))
    }

    pub fn scale_set_mut(&mut self, r: &ScaleSetRef) -> Option<&mut ScaleSetState> {
        self.subscriptions
            .get_mut(&r.subscription.to_lowercase())?
            .resource_groups
            .get_mut(&r.resource_group.to_lowercase())?
            .scale_sets
            .get_mut(&r.name.to_lowercase())
    }

    /// Takes one token from the subscription budget; `None` when it is empty.
    pub fn take_subscription_read(
        &mut self,
        subscription: &str,
        principal: &str,
        now: Instant,
    ) -> Option<u32> {
        let cap = f64::from(self.rate_limits.subscription_reads);
        let rate = f64::from(self.rate_limits.subscription_reads_per_second);
        let bucket = self
            .buckets
            .entry((subscription.to_lowercase(), principal.to_lowercase()))
            .or_insert(Bucket {
                tokens: cap,
                at: now,
            });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(cap);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return None;
        }
        bucket.tokens -= 1.0;
        Some(bucket.tokens.floor() as u32)
    }
}

/// A token issued by the simulated Entra ID.
#[derive(Debug, Clone)]
pub(crate) struct IssuedToken {
    pub tenant_id: String,
    pub client_id: String,
    pub object_id: String,
    pub expires_at: Instant,
    pub expires_at_utc: Timestamp,
}

/// What kind of request arrived; the keys of [`RequestStats::kinds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    Token,
    ListVmssVms,
    ListVms,
    GetScaleSet,
    Other,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::ListVmssVms => "listVmssVms",
            Self::ListVms => "listVms",
            Self::GetScaleSet => "getScaleSet",
            Self::Other => "other",
        }
    }
}

/// A number of requests and when the last arrived (RFC 3339).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counter {
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<String>,
}

impl Counter {
    fn hit(&mut self, at: &str) {
        self.count += 1;
        self.last_at = Some(at.to_owned());
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenCounters {
    pub count: u64,
    pub issued: u64,
    pub rejected: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<String>,
}

/// Requests per scale set. `listPages` counts every page of the VMSS VM
/// list, `firstPages` those without a skiptoken (i.e. full listings begun).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleSetCounters {
    pub list_pages: Counter,
    pub first_pages: u64,
    pub flex_list_pages: Counter,
    pub scale_set_gets: Counter,
    /// Answered 429, by a fault, its Retry-After window or an enforced budget.
    pub throttled: u64,
    /// Answered with another injected fault.
    pub faulted: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub at: String,
    pub method: String,
    pub path: String,
    pub kind: String,
    pub status: u16,
}

/// What `GET /_sim/requests` answers. Admin requests are not counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestStats {
    pub total: u64,
    pub tokens: TokenCounters,
    /// Per kind: `token`, `listVmssVms`, `listVms`, `getScaleSet`, `other`.
    pub kinds: BTreeMap<String, Counter>,
    /// Keyed `subscription/resourceGroup/scaleSet`, spelled as in the scenario.
    pub scale_sets: BTreeMap<String, ScaleSetCounters>,
    /// The last requests answered, oldest first.
    pub recent: Vec<RequestRecord>,
}

impl RequestStats {
    /// Counters of one scale set, zero when it saw no request.
    pub fn scale_set(&self, r: &ScaleSetRef) -> ScaleSetCounters {
        self.scale_sets
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&r.to_string()))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    pub fn kind(&self, kind: &str) -> u64 {
        self.kinds.get(kind).map_or(0, |c| c.count)
    }
}

const RECENT_REQUESTS: usize = 200;

/// The shared state behind a running simulator.
pub struct SimState {
    pub(crate) world: Mutex<World>,
    pub(crate) tokens: Mutex<HashMap<String, IssuedToken>>,
    stats: Mutex<RequestStats>,
}

/// Poisoning only means another handler panicked mid-update; the state is
/// still the best we have, and a simulator should keep answering.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn now_rfc3339() -> String {
    Timestamp::now().to_string()
}

impl SimState {
    pub fn new(scenario: &Scenario) -> Self {
        Self {
            world: Mutex::new(World::new(scenario)),
            tokens: Mutex::new(HashMap::new()),
            stats: Mutex::new(RequestStats::default()),
        }
    }

    fn with_scale_set<T>(
        &self,
        r: &ScaleSetRef,
        f: impl FnOnce(&mut ScaleSetState) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut world = lock(&self.world);
        let ss = world
            .scale_set_mut(r)
            .ok_or_else(|| StateError::ScaleSetNotFound(r.to_string()))?;
        f(ss)
    }

    /// Adds or replaces an instance; its id must be set.
    pub fn put_instance(&self, r: &ScaleSetRef, spec: InstanceSpec) -> Result<(), StateError> {
        if spec.id.as_deref().is_none_or(str::is_empty) {
            return Err(StateError::Invalid("the instance needs an id".into()));
        }
        self.with_scale_set(r, |ss| {
            ss.upsert(spec, Timestamp::now());
            Ok(())
        })
    }

    /// Changes the fields set in `patch`, keeping the others.
    pub fn patch_instance(
        &self,
        r: &ScaleSetRef,
        id: &str,
        patch: InstanceSpec,
    ) -> Result<(), StateError> {
        if patch
            .id
            .as_deref()
            .is_some_and(|p| !p.eq_ignore_ascii_case(id))
        {
            return Err(StateError::Invalid(
                "the id in the body differs from the path".into(),
            ));
        }
        self.with_scale_set(r, |ss| {
            let old =
                ss.instances
                    .get(&sort_key(id))
                    .ok_or_else(|| StateError::InstanceNotFound {
                        scale_set: r.to_string(),
                        id: id.to_owned(),
                    })?;
            let merged = patch.merged_over(&old.spec);
            ss.upsert(merged, Timestamp::now());
            Ok(())
        })
    }

    pub fn remove_instance(&self, r: &ScaleSetRef, id: &str) -> Result<(), StateError> {
        self.with_scale_set(r, |ss| {
            ss.instances
                .remove(&sort_key(id))
                .map(|_| ())
                .ok_or_else(|| StateError::InstanceNotFound {
                    scale_set: r.to_string(),
                    id: id.to_owned(),
                })
        })
    }

    /// The instances as described (without the scale set's `defaults`), in
    /// list order.
    pub fn instances(&self, r: &ScaleSetRef) -> Result<Vec<InstanceSpec>, StateError> {
        self.with_scale_set(r, |ss| {
            Ok(ss.instances.values().map(|i| i.spec.clone()).collect())
        })
    }

    /// Replaces the scale set's faults (and ends any Retry-After window).
    pub fn set_faults(&self, r: &ScaleSetRef, faults: Vec<Fault>) -> Result<(), StateError> {
        for f in &faults {
            f.validate().map_err(StateError::Invalid)?;
        }
        self.with_scale_set(r, |ss| {
            ss.faults = faults;
            ss.throttled = None;
            Ok(())
        })
    }

    pub fn clear_faults(&self, r: &ScaleSetRef) -> Result<(), StateError> {
        self.set_faults(r, Vec::new())
    }

    /// The faults still armed (counts decrease as they fire).
    pub fn faults(&self, r: &ScaleSetRef) -> Result<Vec<Fault>, StateError> {
        self.with_scale_set(r, |ss| Ok(ss.faults.clone()))
    }

    /// Starts or ends (`None`) an outage of the token endpoint.
    pub fn set_token_outage(&self, outage: Option<TokenOutage>) -> Result<(), StateError> {
        if let Some(o) = &outage {
            o.validate().map_err(StateError::Invalid)?;
        }
        lock(&self.world).token_settings.outage = outage;
        Ok(())
    }

    /// Starts or ends (`None`) a fault of the token endpoint.
    pub fn set_token_fault(&self, fault: Option<TokenFault>) -> Result<(), StateError> {
        if let Some(f) = &fault {
            f.validate().map_err(StateError::Invalid)?;
        }
        lock(&self.world).token_settings.fault = fault;
        Ok(())
    }

    /// Makes every access token issued so far expired, as if an hour passed.
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for t in lock(&self.tokens).values_mut() {
            t.expires_at = now;
            t.expires_at_utc = Timestamp::now();
        }
    }

    pub fn request_stats(&self) -> RequestStats {
        lock(&self.stats).clone()
    }

    pub fn reset_requests(&self) {
        *lock(&self.stats) = RequestStats::default();
    }

    pub(crate) fn record_arrival(
        &self,
        kind: RequestKind,
        scale_set: Option<&str>,
        first_page: bool,
    ) {
        let at = now_rfc3339();
        let mut stats = lock(&self.stats);
        stats.total += 1;
        stats
            .kinds
            .entry(kind.as_str().to_owned())
            .or_default()
            .hit(&at);
        if kind == RequestKind::Token {
            stats.tokens.count += 1;
            stats.tokens.last_at = Some(at.clone());
        }
        if let Some(key) = scale_set {
            let c = stats.scale_sets.entry(key.to_owned()).or_default();
            c.last_at = Some(at.clone());
            match kind {
                RequestKind::ListVmssVms => {
                    c.list_pages.hit(&at);
                    if first_page {
                        c.first_pages += 1;
                    }
                }
                RequestKind::ListVms => c.flex_list_pages.hit(&at),
                RequestKind::GetScaleSet => c.scale_set_gets.hit(&at),
                RequestKind::Token | RequestKind::Other => {}
            }
        }
    }

    pub(crate) fn record_token_outcome(&self, issued: bool) {
        let mut stats = lock(&self.stats);
        if issued {
            stats.tokens.issued += 1;
        } else {
            stats.tokens.rejected += 1;
        }
    }

    pub(crate) fn record_fault(&self, scale_set: &str, throttled: bool) {
        let mut stats = lock(&self.stats);
        let c = stats.scale_sets.entry(scale_set.to_owned()).or_default();
        if throttled {
            c.throttled += 1;
        } else {
            c.faulted += 1;
        }
    }

    pub(crate) fn record_response(&self, method: &str, path: &str, kind: RequestKind, status: u16) {
        let mut stats = lock(&self.stats);
        if stats.recent.len() >= RECENT_REQUESTS {
            stats.recent.remove(0);
        }
        stats.recent.push(RequestRecord {
            at: now_rfc3339(),
            method: method.to_owned(),
            path: path.to_owned(),
            kind: kind.as_str().to_owned(),
            status,
        });
    }
}

/// A UUID that stays the same across restarts for the same name, so that a
/// controller keying on vmId or uniqueId sees stable values.
pub(crate) fn stable_uuid(name: &str) -> String {
    // Two FNV-1a passes with different offsets give 128 well-mixed bits;
    // nothing here needs cryptographic strength, and (unlike a v5 UUID) no
    // hash crate is needed. The bytes are marked as version 4 / variant 1,
    // so parsers that check those bits are content.
    let fnv = |seed: u64| {
        name.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let hi = fnv(0xcbf2_9ce4_8422_2325);
    let lo = fnv(0x8422_2325_cbf2_9ce4 ^ hi);
    let bytes = (u128::from(hi) << 64 | u128::from(lo)).to_be_bytes();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

pub(crate) fn random_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_key_orders_numbers_numerically() {
        let mut ids = vec!["10", "2", "abc", "1"];
        ids.sort_by_key(|i| sort_key(i));
        assert_eq!(ids, ["1", "2", "10", "abc"]);
    }

    #[test]
    fn uuids_look_like_uuids() {
        let u = stable_uuid("x");
        assert_eq!(u, stable_uuid("x"));
        assert_ne!(u, stable_uuid("y"));
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        // Ids already handed out (in saved responses, in the fixtures of tests that compare
        // them) keep their values: the same bits as the hand-written formatting gave.
        assert_eq!(stable_uuid("x"), "af63f54c-8602-4707-b16a-efef6fbd3861");
        let parsed = uuid::Uuid::parse_str(&u).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(random_uuid(), random_uuid());
    }

    #[test]
    fn compute_budget_counts_down() {
        let limits = RateLimits {
            scale_set_vm_3min: 3,
            scale_set_vm_30min: 5,
            ..RateLimits::default()
        };
        let spec: ScaleSetSpec = yaml_serde::from_str("name: s").unwrap();
        let mut ss = ScaleSetState::new("sub", "rg", &spec);
        let now = Instant::now();
        assert_eq!(ss.count_read(now, &limits), (2, 4));
        assert_eq!(ss.count_read(now, &limits), (1, 3));
        assert_eq!(ss.count_read(now, &limits), (0, 2));
        assert_eq!(ss.count_read(now, &limits), (0, 1));
        assert!(ss.three_minute_window_frees_in(now) > Duration::from_secs(170));
    }
}
