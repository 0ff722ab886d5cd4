//! `scaleset-watch run`: its flags, and the wiring of the long-running controller process.

use crate::api::Cloud;
use crate::azure::ambient::AmbientPolicy;
use crate::azure::arm::client::{ArmClient, Limits};
use crate::azure::poller::Poller;
use crate::azure::{self, EndpointOverrides};
use crate::controller::leader::{Fence, LeaderElector, LeaseConfig, LeaseTimings};
use crate::controller::metrics::Metrics;
use crate::controller::reconcile::{self, Context, Scope};
use crate::controller::server::{self, ServerState};
use crate::controller::supervisor::{Leadership, Supervisor};
use futures::FutureExt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::info;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, env = "SSW_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// Cloud of the watches that name none.
    #[arg(long, env = "SSW_CLOUD", default_value = "AzurePublic")]
    cloud: Cloud,
    /// ARM endpoint for every cloud, instead of Azure's (for the simulator).
    #[arg(long, env = "SSW_ARM_ENDPOINT")]
    arm_endpoint: Option<url::Url>,
    /// Entra ID authority for every cloud, instead of Azure's (for the simulator).
    #[arg(long, env = "AZURE_AUTHORITY_HOST")]
    authority_host: Option<url::Url>,
    /// Extra CA bundle (PEM) to trust for ARM and Entra ID.
    #[arg(long, env = "SSW_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Watch only this namespace (default: all).
    #[arg(long, env = "SSW_NAMESPACE")]
    namespace: Option<String>,
    /// Watch only ScaleSetWatches matching this label selector.
    #[arg(long, env = "SSW_LABEL_SELECTOR")]
    label_selector: Option<String>,
    /// Whether ScaleSetWatches may name a Secret with their own credentials.
    #[arg(long, env = "SSW_ALLOW_SECRET_CREDENTIALS", default_value_t = true, action = clap::ArgAction::Set)]
    allow_secret_credentials: bool,
    /// Namespaces whose ScaleSetWatches without credentials may use the controller's own Azure
    /// identity: comma-separated, `*` for all, empty for none. Default: the controller's own
    /// namespace (POD_NAMESPACE) only.
    #[arg(long, env = "SSW_AMBIENT_NAMESPACES")]
    ambient_namespaces: Option<String>,
    /// Subscription IDs the controller's own Azure identity may be used for: comma-separated,
    /// `*` (the default) for all, empty for none.
    #[arg(long, env = "SSW_AMBIENT_SUBSCRIPTIONS")]
    ambient_subscriptions: Option<String>,
    /// Elect a leader through a Lease, so that several replicas are safe.
    #[arg(long, env = "SSW_LEADER_ELECT", default_value_t = false, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Name of the Lease that replicas compete for.
    #[arg(long, env = "SSW_LEASE_NAME", default_value = "scaleset-watch")]
    lease_name: String,
    /// Namespace of the Lease (the controller's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// This replica's name in the Lease.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// How long a Lease lasts unrenewed: a standby takes over once it has seen the Lease
    /// unchanged for this long (timed on its own clock).
    #[arg(long, env = "SSW_LEASE_DURATION_SECONDS", default_value_t = 15)]
    lease_duration_seconds: u64,
    /// Fetches of one subscription's scale sets running at once (each scale set is fetched
    /// once per shortest interval of its watches).
    #[arg(long, env = "SSW_MAX_CONCURRENT_FETCHES_PER_SUBSCRIPTION", default_value_t = 4,
          value_parser = clap::value_parser!(u64).range(1..=256))]
    max_concurrent_fetches_per_subscription: u64,
    /// How often an unchanged status is rewritten to refresh lastPollTime (a Go duration such
    /// as 5m; 0 = only when something changes).
    #[arg(long, env = "SSW_STATUS_HEARTBEAT", default_value = "5m", value_parser = parse_heartbeat)]
    status_heartbeat: Duration,
    /// A leader that could not renew for this long stops all work; shorter than the lease
    /// duration (default: two thirds of it, 10 s of 15 s).
    #[arg(long, env = "SSW_LEASE_RENEW_DEADLINE_SECONDS")]
    lease_renew_deadline_seconds: Option<u64>,
    /// Time between attempts to take or renew the Lease; shorter than the renew deadline
    /// (default: 2 s, at most a third of the renew deadline).
    #[arg(long, env = "SSW_LEASE_RETRY_PERIOD_SECONDS")]
    lease_retry_period_seconds: Option<u64>,
    /// After SIGTERM, how long in-flight reconciles may finish before they are aborted; keep
    /// it below the pod's terminationGracePeriodSeconds.
    #[arg(long, env = "SSW_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    shutdown_grace_seconds: u64,
    /// Log format: text or json.
    #[arg(long, env = "SSW_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    /// Log level or tracing filter (e.g. info, debug, scaleset_watch=debug).
    #[arg(long, env = "SSW_LOG_LEVEL", default_value = "info")]
    log_level: String,
}

/// Zero for none: clap cannot hold an `Option` as a value.
fn parse_heartbeat(s: &str) -> Result<Duration, String> {
    crate::azure::schedule::parse_heartbeat(s).map(Option::unwrap_or_default)
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| anyhow::anyhow!("invalid log level {level:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
    Ok(())
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_format, &args.log_level)?;
    let overrides = EndpointOverrides::new(args.arm_endpoint.clone(), args.authority_host.clone())?;
    let ambient = AmbientPolicy::from_flags(
        args.ambient_namespaces.as_deref(),
        args.ambient_subscriptions.as_deref(),
        &args.lease_namespace,
    )?;
    info!(policy = %ambient, "the controller's own Azure identity serves watches in");
    // Checked even without leader election: a bad value is a mistake either way.
    let timings = LeaseTimings::new(
        args.lease_duration_seconds,
        args.lease_renew_deadline_seconds,
        args.lease_retry_period_seconds,
    )?;
    // Registered before anything else, so that a SIGTERM during start-up is a clean shutdown.
    let shutdown = shutdown_signal()?;
    tokio::pin!(shutdown);
    let client = kube::Client::try_default().await?;
    let http = azure::http_client(args.ca_file.as_deref())?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let healthy = Arc::new(AtomicBool::new(true));

    let listener = tokio::net::TcpListener::bind(args.http_addr).await?;
    info!(addr = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    let app = server::router(ServerState {
        metrics: metrics.clone(),
        ready: ready.clone(),
        healthy: healthy.clone(),
    });
    let mut server = tokio::spawn(async move { axum::serve(listener, app).await });

    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("scaleset-watch-{}", std::process::id()));
    let poller = Poller::new(
        ArmClient::new(http.clone(), Limits::default()).with_observer(metrics.clone()),
        http,
        overrides,
    );
    poller.set_max_concurrent_fetches_per_subscription(
        usize::try_from(args.max_concurrent_fetches_per_subscription).unwrap_or(1),
    );
    let fence = if args.leader_elect {
        Fence::not_leading()
    } else {
        Fence::unbounded()
    };
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            poller,
            metrics,
            kube::runtime::events::Reporter {
                controller: "scaleset-watch".into(),
                instance: Some(identity.clone()),
            },
            args.cloud,
            args.allow_secret_credentials,
        )
        .with_ambient_policy(ambient)
        .with_fence(fence.clone()),
    );
    ctx.set_status_heartbeat((!args.status_heartbeat.is_zero()).then_some(args.status_heartbeat));
    let scope = Scope {
        namespace: args.namespace.clone(),
        label_selector: args.label_selector.clone(),
    };

    let leadership = if args.leader_elect {
        let mut elector = LeaderElector::new(
            client.clone(),
            LeaseConfig {
                namespace: args.lease_namespace.clone(),
                name: args.lease_name.clone(),
                identity: identity.clone(),
                timings,
            },
        );
        // A standby is ready: it is doing its job, which is waiting.
        ready.store(true, Ordering::Relaxed);
        tokio::select! {
            () = elector.acquire(&fence) => {}
            () = &mut shutdown => return Ok(()),
            r = &mut server => {
                healthy.store(false, Ordering::Relaxed);
                anyhow::bail!("the HTTP server stopped: {r:?}");
            }
        }
        let releaser = elector.clone();
        Some(Leadership {
            holder: tokio::spawn(elector.hold(fence.clone())),
            release: async move { releaser.release().await }.boxed(),
        })
    } else {
        None
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let controller = tokio::spawn(reconcile::run(ctx, scope, async move {
        let mut rx = stop_rx;
        let _ = rx.wait_for(|stop| *stop).await;
    }));
    ready.store(true, Ordering::Relaxed);
    info!("controller running");

    Supervisor {
        fence,
        ready,
        healthy,
        grace: Duration::from_secs(args.shutdown_grace_seconds),
    }
    .run(controller, stop_tx, leadership, &mut server, shutdown)
    .await?;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C. The SIGTERM handler is installed at once.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    })
}
