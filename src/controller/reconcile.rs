//! The controller: for each ScaleSetWatch, poll (shared), judge, and write the status when it changed.

use crate::api::{Cloud, ScaleSetWatch, ScaleSetWatchStatus};
use crate::azure::ClientSecret;
use crate::azure::ambient::AmbientPolicy;
use crate::azure::arm::client::ScaleSetRef;
use crate::azure::poller::WatchId;
use crate::azure::poller::{CredentialSource, PollError, Poller};
use crate::azure::schedule;
use crate::controller::decide::{Note, Observed, Poll, decide};
use crate::controller::leader::Fence;
use crate::controller::metrics::Metrics;
use crate::health::status;
use crate::health::{self, Reason};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use rand::RngExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{Instrument, info, warn};

pub const FIELD_MANAGER: &str = "scaleset-watch";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write the status of {namespace}/{name}: {source}")]
    PatchStatus {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error("ScaleSetWatch has no namespace")]
    NoNamespace,
    #[error("not the leader (any more): no ARM call or status write")]
    NotLeading,
}

/// Everything a reconcile needs, shared by all of them.
pub struct Context {
    pub client: Client,
    pub poller: Poller,
    /// Who the Events say reported them.
    pub reporter: Reporter,
    pub metrics: Arc<Metrics>,
    /// The cloud of watches that name none.
    pub default_cloud: Cloud,
    pub allow_secret_credentials: bool,
    /// Which watches without credentials may use the controller's own identity.
    pub ambient: AmbientPolicy,
    /// Asked before each fetch and status write: a leader past its renew deadline gets no
    /// permit.
    pub fence: Fence,
    /// `lastPollTime` is rewritten at least this often while nothing changes, in
    /// milliseconds; 0: never.
    status_heartbeat_ms: AtomicU64,
    /// Consecutive failures per watch that happened before any fetch (credentials) or in the
    /// status write, for the watch's own backoff; failed fetches back off per scale set.
    failures: Mutex<HashMap<(String, String), u32>>,
    /// The last fetch each watch has seen, so that a result read again (after the watch's own
    /// status write, say) is not counted again.
    seen: Mutex<HashMap<(String, String), u64>>,
}

impl Context {
    pub fn new(
        client: Client,
        poller: Poller,
        metrics: Arc<Metrics>,
        reporter: Reporter,
        default_cloud: Cloud,
        allow_secret_credentials: bool,
    ) -> Self {
        Self {
            reporter,
            client,
            poller,
            metrics,
            default_cloud,
            allow_secret_credentials,
            ambient: AmbientPolicy::default(),
            fence: Fence::unbounded(),
            status_heartbeat_ms: AtomicU64::new(millis(schedule::DEFAULT_HEARTBEAT)),
            failures: Mutex::default(),
            seen: Mutex::default(),
        }
    }

    pub fn with_ambient_policy(mut self, ambient: AmbientPolicy) -> Self {
        self.ambient = ambient;
        self
    }

    /// The fence is the poller's too: its scheduled fetches each hold a permit.
    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.poller.set_fence(fence.clone());
        self.fence = fence;
        self
    }

    /// How often an unchanged status is rewritten to refresh `lastPollTime` (`None`: never).
    pub fn set_status_heartbeat(&self, heartbeat: Option<Duration>) {
        let ms = heartbeat.map_or(0, |h| millis(h).max(1));
        self.status_heartbeat_ms.store(ms, Ordering::Relaxed);
    }

    fn status_heartbeat(&self) -> Option<Duration> {
        let ms = self.status_heartbeat_ms.load(Ordering::Relaxed);
        (ms > 0).then(|| Duration::from_millis(ms))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Reconciles in flight at once. A reconcile never waits for ARM (it reads its scale set's
/// last fetch), only for its status write and Events, so a few dozen keep up with any fleet;
/// unbounded, the 2,000 watches that a fetch round or a start wakes together would each hold a
/// request to the API server at the same moment.
const MAX_CONCURRENT_RECONCILES: u16 = 32;

/// Where the controller looks for ScaleSetWatches.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    scope: Scope,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<ScaleSetWatch> = match &scope.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let mut config = watcher::Config::default();
    if let Some(sel) = &scope.label_selector {
        config = config.labels(sel);
    }
    // The cache keeps every watch for the reconciles (spec and last status) but not its
    // managedFields: the field sets of every writer, which nothing here reads, were the larger
    // part of each cached object (16 MB of a 2,000-watch fleet, hack/bench-scale.sh).
    let (store, writer) = reflector::store();
    let watches = watcher(api, config)
        .default_backoff()
        .modify(|w: &mut ScaleSetWatch| w.managed_fields_mut().clear())
        .reflect(writer)
        .applied_objects();
    let mut controller = Controller::for_stream(watches, store);
    // Each fetch of a scale set reconciles the watches that name it; deleted watches (and
    // those out of scope now) are dropped from their sets before the next fetch.
    if let Some(triggers) = ctx.poller.take_triggers() {
        controller = controller
            .reconcile_on(triggers.map(|w: WatchId| ObjectRef::new(&w.name).within(&w.namespace)));
    }
    let store = controller.store();
    let live = store.clone();
    ctx.poller.set_liveness(move |w| {
        live.get(&ObjectRef::new(&w.name).within(&w.namespace))
            .is_some()
    });
    // No fetch after shutdown begins, nor once the term ended: the supervisor revokes the
    // fence and then aborts this future, which would leave the scale sets' tasks running. A
    // weak reference, so that this task keeps nothing alive.
    let shutdown = shutdown.shared();
    let stopper = {
        let (weak, shutdown, fence) = (Arc::downgrade(&ctx), shutdown.clone(), ctx.fence.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown => {}
                () = fence.expired() => {}
            }
            if let Some(ctx) = weak.upgrade() {
                ctx.poller.stop();
            }
        })
    };
    // Deleted watches are never reconciled again; forget their metrics and backoff state.
    let sweep_ctx = ctx.clone();
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let watches = store.state();
            let live: std::collections::HashSet<(String, String)> = watches
                .iter()
                .map(|w| (w.namespace().unwrap_or_default(), w.name_any()))
                .collect();
            let watched: std::collections::HashSet<[String; 3]> = watches
                .iter()
                .map(|w| {
                    [
                        &w.spec.subscription_id,
                        &w.spec.resource_group,
                        &w.spec.scale_set_name,
                    ]
                    .map(|s| s.to_ascii_lowercase())
                })
                .collect();
            sweep_ctx
                .metrics
                .retain_watches(|ns, name| live.contains(&(ns.to_owned(), name.to_owned())));
            sweep_ctx.metrics.retain_scale_sets(|sub, rg, vmss| {
                watched.contains(&[sub, rg, vmss].map(str::to_owned))
            });
            sweep_ctx
                .failures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|key, _| live.contains(key));
            sweep_ctx
                .seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|key, _| live.contains(key));
        }
    });
    controller
        .with_config(controller::Config::default().concurrency(MAX_CONCURRENT_RECONCILES))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|res| async move {
            if let Err(e) = res {
                warn!(error = %e, "reconcile failed");
            }
        })
        .await;
    sweeper.abort();
    stopper.abort();
    ctx.poller.stop();
}

pub(crate) async fn reconcile(
    watch: Arc<ScaleSetWatch>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let namespace = watch.namespace().ok_or(Error::NoNamespace)?;
    let name = watch.name_any();
    // Not `name`: JSON logs write the span's own name ("reconcile") under that key too, and a
    // JSON reader keeps only the last of two equal keys, losing the watch's name.
    let span = tracing::info_span!("reconcile", namespace = %namespace, scalesetwatch = %name);
    let started = Instant::now();
    let result = reconcile_inner(&watch, &ctx, &namespace, &name)
        .instrument(span)
        .await;
    let error_reason = match &result {
        Ok((_, reason)) => *reason,
        Err(_) => Some("StatusUpdateFailed"),
    };
    ctx.metrics
        .record_reconcile(started.elapsed(), error_reason);
    result.map(|(action, _)| action)
}

/// Gathers what the decision reads (the credentials, the scale set's latest fetch), lets
/// `decide` choose, and carries the decision out. Returns the next action and, for a failed
/// poll seen for the first time, its reason.
async fn reconcile_inner(
    watch: &ScaleSetWatch,
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<(Action, Option<&'static str>), Error> {
    // Held through the reconcile: the process aborts the controller when the term ends.
    let _permit = ctx.fence.permit().ok_or(Error::NotLeading)?;
    let poll = observe(watch, ctx, namespace, name).await;
    if let Poll::Fetched { fleet, .. } = &poll {
        ctx.metrics
            .record_counts(namespace, name, &fleet.counts, fleet.healthy_percent);
    }
    let prev = watch.status.as_ref();
    let decision = decide(&Observed {
        spec: &watch.spec,
        status: prev,
        generation: watch.meta().generation,
        default_cloud: ctx.default_cloud,
        poll,
        now: jiff::Timestamp::now(),
        heartbeat: ctx.status_heartbeat(),
    });
    if let Some(current) = decision.status.as_ref().or(prev) {
        for c in &current.conditions {
            if let Some(kind) = [status::READY, status::HEALTHY, status::DEGRADED]
                .into_iter()
                .find(|k| *k == c.type_)
            {
                ctx.metrics
                    .record_condition(namespace, name, kind, &c.status, &c.reason);
            }
        }
    }
    if let Some(next) = &decision.status {
        write_status(ctx, watch, next, &decision.events).await?;
    }
    let action = decision
        .requeue
        .map_or_else(Action::await_change, Action::requeue);
    Ok((action, decision.failure.map(Reason::as_str)))
}

/// The watch's scale set as this reconcile finds it. Reconciles do not fetch: the set's
/// schedule does, and each fetch triggers the reconciles of its watches.
async fn observe(watch: &ScaleSetWatch, ctx: &Context, namespace: &str, name: &str) -> Poll {
    let spec = &watch.spec;
    let key = (namespace.to_owned(), name.to_owned());
    let watch_id = WatchId {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    };
    if spec.suspend {
        ctx.poller.unsubscribe(&watch_id);
        return Poll::Suspended;
    }
    let polled = match credential_source(ctx, spec, namespace).await {
        Ok(source) => {
            let target = ScaleSetRef {
                subscription_id: spec.subscription_id.clone(),
                resource_group: spec.resource_group.clone(),
                scale_set_name: spec.scale_set_name.clone(),
                api_version: spec.api_version().to_owned(),
                model_view: spec.model_view(),
            };
            let cloud = spec.cloud.unwrap_or(ctx.default_cloud);
            match ctx
                .poller
                .subscribe(&watch_id, cloud, &target, &source, spec.interval())
            {
                Some(polled) => Ok(polled),
                None => return Poll::Pending,
            }
        }
        Err(e) => {
            // Nothing to fetch with: the watch leaves its scale set and retries on its own.
            ctx.poller.unsubscribe(&watch_id);
            Err(e)
        }
    };
    let failed = |error: PollError, fresh: bool| {
        if fresh {
            warn!(reason = %Reason::of_poll_error(&error), error = %error, "poll failed");
        }
        let mut f = ctx.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = f.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        Poll::Failed {
            error,
            failures: *n,
            fresh,
        }
    };
    match polled {
        Err(e) => failed(e, true),
        Ok(polled) => {
            // A result read again (after this watch's own status write, say) is not fresh,
            // so that one failed fetch is reported once.
            let fresh = ctx
                .seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key.clone(), polled.seq)
                != Some(polled.seq);
            match polled.result {
                Ok(snapshot) => {
                    ctx.failures
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&key);
                    Poll::Fetched {
                        fleet: health::assess(&snapshot, &spec.health),
                        at: polled.at,
                    }
                }
                Err(e) => failed(e, fresh),
            }
        }
    }
}

async fn credential_source(
    ctx: &Context,
    spec: &crate::api::ScaleSetWatchSpec,
    namespace: &str,
) -> Result<CredentialSource, PollError> {
    let Some(creds) = &spec.credentials else {
        ctx.ambient
            .check(namespace, &spec.subscription_id)
            .map_err(PollError::CredentialsNotAllowed)?;
        return Ok(CredentialSource::Ambient);
    };
    if !ctx.allow_secret_credentials {
        return Err(PollError::SecretCredentialsDisabled);
    }
    let secret_name = &creds.secret_ref.name;
    // The schema refuses such names; a watch stored before it did must not reach the API path.
    if !crate::api::is_dns_subdomain(secret_name) {
        return Err(PollError::CredentialsNotFound(format!(
            "spec.credentials.secretRef.name {:?} is not a valid Secret name",
            status::truncate(secret_name, 300)
        )));
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = match secrets.get_opt(secret_name).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(PollError::CredentialsNotFound(format!(
                "Secret {namespace}/{secret_name} not found"
            )));
        }
        Err(e) => {
            return Err(PollError::CredentialsNotFound(format!(
                "cannot read Secret {namespace}/{secret_name}: {e}"
            )));
        }
    };
    let data = secret.data.unwrap_or_default();
    let field = |key: &str| -> Result<String, PollError> {
        let value = data
            .get(key)
            .map(|v| String::from_utf8_lossy(&v.0).trim().to_owned())
            .filter(|v| !v.is_empty());
        value.ok_or_else(|| {
            PollError::CredentialsNotFound(format!(
                "Secret {namespace}/{secret_name} has no non-empty key {key} (needs tenantId, clientId, clientSecret)"
            ))
        })
    };
    Ok(CredentialSource::ServicePrincipal(ClientSecret {
        tenant_id: field("tenantId")?,
        client_id: field("clientId")?,
        client_secret: field("clientSecret")?,
    }))
}

async fn write_status(
    ctx: &Context,
    watch: &ScaleSetWatch,
    next: &ScaleSetWatchStatus,
    events: &[Note],
) -> Result<(), Error> {
    // Asked again: the term may have ended during the poll.
    let _permit = ctx.fence.permit().ok_or(Error::NotLeading)?;
    let namespace = watch.namespace().unwrap_or_default();
    let name = watch.name_any();
    let api: Api<ScaleSetWatch> = Api::namespaced(ctx.client.clone(), &namespace);
    let written = patch_status(&api, watch, next)
        .await
        .map_err(|source| Error::PatchStatus {
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        })?;
    if written == StatusWrite::Gone {
        // Its successor, if any, has a reconcile of its own.
        info!("the ScaleSetWatch was deleted or replaced during the poll; its status is dropped");
        return Ok(());
    }
    for note in events {
        info!(event = note.reason, note = %note.message, "condition changed");
        if let Err(e) = publish(ctx, watch, note).await {
            warn!(error = %e, "cannot publish event");
        }
    }
    Ok(())
}

/// Creates an `events.k8s.io/v1` Event about `watch`.
///
/// Not kube's `Recorder`: it keeps every Event it sent for six minutes, to fold repeats into a
/// series, in a table that never shrinks (17.7 MB after 2,000 watches started together,
/// measured with heaptrack under hack/bench-scale.sh). These Events are transitions, which
/// `decide` already emits once each, so there is nothing to fold.
async fn publish(ctx: &Context, watch: &ScaleSetWatch, note: &Note) -> Result<(), kube::Error> {
    use k8s_openapi::api::events::v1::Event;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
    let now = jiff::Timestamp::now();
    let regarding = watch.object_ref(&());
    let event = Event {
        metadata: ObjectMeta {
            name: Some(event_name(&watch.name_any(), now.as_nanosecond())),
            namespace: regarding.namespace.clone(),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(if note.warning { "Warning" } else { "Normal" }.into()),
        reason: Some(note.reason.into()),
        note: Some(note.message.clone()),
        action: Some("Poll".into()),
        reporting_controller: Some(ctx.reporter.controller.clone()),
        reporting_instance: Some(
            ctx.reporter
                .instance
                .clone()
                .unwrap_or_else(|| ctx.reporter.controller.clone()),
        ),
        regarding: Some(regarding),
        ..Event::default()
    };
    let namespace = watch.namespace().unwrap_or_default();
    Api::<Event>::namespaced(ctx.client.clone(), &namespace)
        .create(&PostParams::default(), &event)
        .await
        .map(drop)
}

/// An Event's name: unique per watch and moment, as client-go names them, and a valid object
/// name even for a watch whose own name leaves no room for the suffix (names hold 253 bytes).
fn event_name(watch: &str, nanos: i128) -> String {
    let suffix = format!(".{nanos:x}");
    let room = 253usize.saturating_sub(suffix.len());
    // Object names are ASCII; a cut must not leave a label ending in '-' or '.'.
    let prefix = watch.get(..room.min(watch.len())).unwrap_or(watch);
    format!("{}{suffix}", prefix.trim_end_matches(['-', '.']))
}

/// How a status write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWrite {
    Written,
    /// The object read is gone: deleted, or deleted and created again under the same name.
    /// What was computed for it is not the new object's status.
    Gone,
}

/// Replaces the status of exactly the object `watch` (the same UID), never of another
/// ScaleSetWatch created under its name since it was read.
///
/// Neither server-side apply nor a merge patch can do that for a custom resource's status:
/// the status strategy copies the stored object's metadata over the request's, so a
/// `metadata.uid` in the body is silently ignored (kube-apiserver 1.34 writes such a patch to
/// the new object). A JSON patch's `test` operation runs on the stored object inside the same
/// compare-and-swap as the write, and a failed test is answered 422. Replacing `/status` as a
/// whole also removes fields left out now (say, an emptied `unhealthyInstances`), as the
/// server-side apply this replaced did; only this controller writes the status.
pub async fn patch_status(
    api: &Api<ScaleSetWatch>,
    watch: &ScaleSetWatch,
    status: &ScaleSetWatchStatus,
) -> Result<StatusWrite, kube::Error> {
    let name = watch.name_any();
    let uid = watch.meta().uid.clone().unwrap_or_default();
    let ops = serde_json::json!([
        {"op": "test", "path": "/metadata/uid", "value": uid},
        {"op": "add", "path": "/status", "value": status},
    ]);
    let patch: json_patch::Patch = serde_json::from_value(ops).map_err(kube::Error::SerdeError)?;
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    match api
        .patch_status(&name, &params, &Patch::<()>::Json(patch))
        .await
    {
        Ok(_) => Ok(StatusWrite::Written),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(StatusWrite::Gone),
        // A failed `test` is a bare 422 ("the server rejected our request due to an error in
        // our request", no details); an invalid status is a 422 too. Look, rather than read
        // the words.
        Err(kube::Error::Api(e)) if e.code == 422 => match api.get_opt(&name).await? {
            Some(current) if current.meta().uid == watch.meta().uid => Err(kube::Error::Api(e)),
            _ => Ok(StatusWrite::Gone),
        },
        Err(e) => Err(e),
    }
}

fn error_policy(watch: Arc<ScaleSetWatch>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = (watch.namespace().unwrap_or_default(), watch.name_any());
    let failures = {
        let mut f = ctx.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = f.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    warn!(error = %error, failures, "reconcile error");
    Action::requeue(schedule::write_retry_delay(
        failures,
        rand::rng().random_range(0.0..1.0),
    ))
}

#[cfg(test)]
mod tests {
    use super::event_name;

    #[test]
    fn event_names_are_unique_per_moment_and_valid_for_the_longest_watch_names() {
        assert_eq!(event_name("web", 255), "web.ff");
        assert_ne!(event_name("web", 1), event_name("web", 2));
        let now = 1_765_000_000_000_000_000_i128;
        // 236 bytes of name leave a '-' where the suffix is cut in.
        let longest = format!("{}-{}", "a".repeat(235), "b".repeat(17));
        let name = event_name(&longest, now);
        assert!(name.len() <= 253, "{}", name.len());
        assert!(name.starts_with(&"a".repeat(235)), "{name}");
        assert!(name.ends_with(&format!("a.{now:x}")), "{name}");
    }
}
