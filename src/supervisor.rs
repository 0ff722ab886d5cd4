//! How `scaleset-watch run` ends once its controller runs.
//!
//! Three tasks must keep running: the controller, the lease holder (with leader election) and
//! the HTTP server. Whichever way one of them ends, the outcome is decided here:
//! - SIGTERM: no new reconciles; in-flight ones get the grace period while the lease is still
//!   renewed; then whatever is left is aborted, the fence waits until no permit is held, and
//!   only then is the lease released. `Ok`.
//! - leadership lost (the holder gave up, or the fence's deadline passed even if the holder
//!   did not notice): the fence is revoked and the controller aborted at once; nothing is
//!   released. `Err`.
//! - the controller or the HTTP server ended or panicked: `/healthz` answers 503, the
//!   controller (if alive) is aborted, and the lease is released once nothing can write any
//!   more, so that a standby takes over at once. `Err`.
//!
//! `Err` makes the process exit non-zero, so that the kubelet restarts it.

use crate::leader::{Fence, LeaseLost};
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};
use tracing::{error, info};

/// After the controller is aborted, how long its reconciles may take to let go of their
/// permits before the lease is left to expire instead of being released.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the process must exit non-zero.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    #[error("leadership lost: {0}")]
    LeaseLost(#[from] LeaseLost),
    #[error("the lease holder task died: {0}")]
    LeaseHolderDied(String),
    #[error("the controller stopped by itself")]
    ControllerEnded,
    #[error("the controller died: {0}")]
    ControllerDied(String),
    #[error("the HTTP server stopped: {0}")]
    ServerStopped(String),
}

/// The lease side of a leader: the task renewing it, and how to give it up.
pub struct Leadership {
    pub holder: JoinHandle<LeaseLost>,
    pub release: BoxFuture<'static, ()>,
}

pub struct Supervisor {
    /// Shared with the reconciler, which asks it before each ARM call and status write.
    pub fence: Fence,
    pub ready: Arc<AtomicBool>,
    pub healthy: Arc<AtomicBool>,
    /// How long in-flight reconciles may finish after SIGTERM.
    pub grace: Duration,
}

enum Ended {
    Signal,
    Holder(Result<LeaseLost, JoinError>),
    TermExpired,
    Controller(Result<(), JoinError>),
    Server(Result<std::io::Result<()>, JoinError>),
}

/// A task's outcome; never, when there is no task (any more).
async fn outcome<T>(task: &mut Option<JoinHandle<T>>) -> Result<T, JoinError> {
    match task {
        Some(t) => t.await,
        None => std::future::pending().await,
    }
}

impl Supervisor {
    /// Runs until SIGTERM (`shutdown`) or a failure; see the module docs. `controller` stops
    /// taking work when `stop` says true. `server` keeps running after this returns, so that
    /// `/healthz` can still say what happened.
    pub async fn run(
        self,
        controller: JoinHandle<()>,
        stop: watch::Sender<bool>,
        leadership: Option<Leadership>,
        server: &mut JoinHandle<std::io::Result<()>>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Fatal> {
        let (mut holder, release) = match leadership {
            Some(l) => (Some(l.holder), Some(l.release)),
            None => (None, None),
        };
        let mut controller = Some(controller);
        tokio::pin!(shutdown);
        let ended = tokio::select! {
            () = &mut shutdown => Ended::Signal,
            r = outcome(&mut holder) => Ended::Holder(r),
            () = self.fence.expired() => Ended::TermExpired,
            r = outcome(&mut controller) => Ended::Controller(r),
            r = &mut *server => Ended::Server(r),
        };
        let (fatal, may_release) = match ended {
            Ended::Signal => {
                info!(grace = ?self.grace, "shutting down: no new reconciles; in-flight ones may finish");
                self.ready.store(false, Ordering::Relaxed);
                let _ = stop.send(true);
                // The holder keeps renewing meanwhile: a lease that lapsed during the grace
                // period would let a standby start while these reconciles still write.
                tokio::select! {
                    r = tokio::time::timeout(self.grace, outcome(&mut controller)) => match r {
                        Ok(Ok(())) => { controller = None; (None, true) }
                        Ok(Err(e)) => { controller = None; (Some(Fatal::ControllerDied(e.to_string())), true) }
                        Err(_) => { info!("grace period over; aborting in-flight reconciles"); (None, true) }
                    },
                    r = outcome(&mut holder) => { holder = None; (Some(holder_fatal(r)), false) }
                    () = self.fence.expired() => (Some(Fatal::LeaseLost(LeaseLost::DeadlinePassed)), false),
                }
            }
            Ended::Holder(r) => {
                holder = None;
                (Some(holder_fatal(r)), false)
            }
            Ended::TermExpired => (Some(Fatal::LeaseLost(LeaseLost::DeadlinePassed)), false),
            Ended::Controller(r) => {
                controller = None;
                let fatal = match r {
                    Ok(()) => Fatal::ControllerEnded,
                    Err(e) => Fatal::ControllerDied(e.to_string()),
                };
                (Some(fatal), true)
            }
            Ended::Server(r) => {
                let why = match r {
                    Ok(Ok(())) => "it returned".to_owned(),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                };
                (Some(Fatal::ServerStopped(why)), true)
            }
        };
        if let Some(f) = &fatal {
            if !matches!(f, Fatal::LeaseLost(_)) {
                self.healthy.store(false, Ordering::Relaxed);
            }
            error!(error = %f, "stopping");
        }
        self.ready.store(false, Ordering::Relaxed);

        // Nothing may be written from here on: refuse permits, abort the controller (its
        // reconciles are aborted with it), and wait for the permits already granted.
        self.fence.revoke();
        if let Some(c) = controller {
            c.abort();
            let _ = c.await;
        }
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, self.fence.drained())
            .await
            .is_ok();
        if !drained {
            error!(
                "reconciles still hold permits {DRAIN_TIMEOUT:?} after the controller was aborted; the lease is left to expire"
            );
        }
        if let Some(h) = holder {
            h.abort();
            let _ = h.await;
        }
        if may_release
            && drained
            && let Some(release) = release
        {
            release.await;
        }
        fatal.map_or(Ok(()), Err)
    }
}

fn holder_fatal(r: Result<LeaseLost, JoinError>) -> Fatal {
    match r {
        Ok(lost) => Fatal::LeaseLost(lost),
        Err(e) => Fatal::LeaseHolderDied(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::server::{ServerState, router};
    use futures::FutureExt;
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    const MS: Duration = Duration::from_millis(1);

    struct Probes {
        addr: std::net::SocketAddr,
        server: JoinHandle<std::io::Result<()>>,
        ready: Arc<AtomicBool>,
        healthy: Arc<AtomicBool>,
    }

    /// The real endpoints on a loopback port.
    async fn serve() -> Probes {
        let ready = Arc::new(AtomicBool::new(true));
        let healthy = Arc::new(AtomicBool::new(true));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(ServerState {
            metrics: Arc::new(Metrics::default()),
            ready: ready.clone(),
            healthy: healthy.clone(),
        });
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        Probes {
            addr,
            server,
            ready,
            healthy,
        }
    }

    async fn status_of(addr: std::net::SocketAddr, path: &str) -> u16 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        text.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    impl Probes {
        fn supervisor(&self, fence: Fence, grace: Duration) -> Supervisor {
            Supervisor {
                fence,
                ready: self.ready.clone(),
                healthy: self.healthy.clone(),
                grace,
            }
        }
    }

    type Log = Arc<Mutex<Vec<Instant>>>;

    /// A controller that ignores the stop signal and the fence and "writes" every 5 ms: only
    /// aborting it stops it.
    fn stubborn_writer() -> (JoinHandle<()>, Log) {
        let log = Log::default();
        let l = log.clone();
        let task = tokio::spawn(async move {
            loop {
                l.lock().unwrap().push(Instant::now());
                tokio::time::sleep(5 * MS).await;
            }
        });
        (task, log)
    }

    fn leadership(holder: impl Future<Output = LeaseLost> + Send + 'static) -> (Leadership, Log) {
        let released = Log::default();
        let r = released.clone();
        let l = Leadership {
            holder: tokio::spawn(holder),
            release: async move { r.lock().unwrap().push(Instant::now()) }.boxed(),
        };
        (l, released)
    }

    fn last(log: &Log) -> Option<Instant> {
        log.lock().unwrap().last().copied()
    }

    /// Writes after `t`, and after waiting a while more.
    async fn writes_after(log: &Log, t: Instant) -> usize {
        tokio::time::sleep(50 * MS).await;
        log.lock().unwrap().iter().filter(|w| **w > t).count()
    }

    #[tokio::test]
    async fn a_panicking_controller_fails_healthz_ends_in_error_and_releases_the_lease() {
        let mut p = serve().await;
        assert_eq!(status_of(p.addr, "/healthz").await, 200);
        // The injected death: a panic in the controller task, as a panic in a reconcile
        // reaches it (kube-runtime resumes a reconcile's panic in the controller's stream).
        let controller = tokio::spawn(async {
            tokio::time::sleep(20 * MS).await;
            panic!("injected: the controller loop dies");
        });
        let fence = Fence::not_leading();
        fence.lead_until(Instant::now() + Duration::from_secs(3600));
        let (lead, released) = leadership(std::future::pending());
        let (stop, _) = watch::channel(false);
        let result = p
            .supervisor(fence.clone(), Duration::from_secs(20))
            .run(
                controller,
                stop,
                Some(lead),
                &mut p.server,
                std::future::pending(),
            )
            .await;
        assert!(
            matches!(&result, Err(Fatal::ControllerDied(m)) if m.contains("panic")),
            "{result:?}"
        );
        assert_eq!(status_of(p.addr, "/healthz").await, 503);
        assert_eq!(status_of(p.addr, "/readyz").await, 503);
        assert!(fence.permit().is_none());
        assert_eq!(
            released.lock().unwrap().len(),
            1,
            "a dead controller writes nothing, so the lease is given up"
        );
    }

    #[tokio::test]
    async fn a_controller_that_returns_by_itself_is_a_death_too() {
        let mut p = serve().await;
        let controller = tokio::spawn(async {});
        let (stop, _) = watch::channel(false);
        let result = p
            .supervisor(Fence::unbounded(), Duration::from_secs(20))
            .run(
                controller,
                stop,
                None,
                &mut p.server,
                std::future::pending(),
            )
            .await;
        assert!(matches!(result, Err(Fatal::ControllerEnded)), "{result:?}");
        assert_eq!(status_of(p.addr, "/healthz").await, 503);
    }

    #[tokio::test]
    async fn after_the_grace_period_the_controller_is_aborted_before_the_lease_is_released() {
        let mut p = serve().await;
        let (controller, writes) = stubborn_writer();
        let fence = Fence::not_leading();
        fence.lead_until(Instant::now() + Duration::from_secs(3600));
        let (lead, released) = leadership(std::future::pending());
        let (stop, stopping) = watch::channel(false);
        let sigterm = tokio::time::sleep(30 * MS);
        let result = p
            .supervisor(fence, 60 * MS)
            .run(controller, stop, Some(lead), &mut p.server, sigterm)
            .await;
        assert!(result.is_ok(), "{result:?}");
        assert!(*stopping.borrow(), "the controller was asked to stop first");
        let released_at = last(&released).expect("released");
        assert_eq!(
            writes_after(&writes, released_at).await,
            0,
            "a write followed the release"
        );
        assert_eq!(
            status_of(p.addr, "/healthz").await,
            200,
            "SIGTERM is not a failure"
        );
    }

    #[tokio::test]
    async fn losing_the_lease_aborts_the_controller_at_once_and_releases_nothing() {
        let mut p = serve().await;
        let (controller, writes) = stubborn_writer();
        let fence = Fence::not_leading();
        fence.lead_until(Instant::now() + Duration::from_secs(3600));
        let (lead, released) = leadership(async {
            tokio::time::sleep(30 * MS).await;
            LeaseLost::TakenBy("b".into())
        });
        let (stop, _) = watch::channel(false);
        let result = p
            .supervisor(fence, Duration::from_secs(20))
            .run(
                controller,
                stop,
                Some(lead),
                &mut p.server,
                std::future::pending(),
            )
            .await;
        let returned = Instant::now();
        assert!(
            matches!(&result, Err(Fatal::LeaseLost(LeaseLost::TakenBy(b))) if b == "b"),
            "{result:?}"
        );
        assert_eq!(writes_after(&writes, returned).await, 0);
        assert!(released.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_passed_renew_deadline_stops_the_controller_even_if_the_holder_is_stuck() {
        let mut p = serve().await;
        let fence = Fence::not_leading();
        let deadline = Instant::now() + 50 * MS;
        fence.lead_until(deadline);
        // A controller that asks the fence before each write, as the reconciler does.
        let writes = Log::default();
        let (w, f) = (writes.clone(), fence.clone());
        let controller = tokio::spawn(async move {
            loop {
                if let Some(_permit) = f.permit() {
                    w.lock().unwrap().push(Instant::now());
                }
                tokio::time::sleep(2 * MS).await;
            }
        });
        let (lead, released) = leadership(std::future::pending());
        let (stop, _) = watch::channel(false);
        let result = p
            .supervisor(fence, Duration::from_secs(20))
            .run(
                controller,
                stop,
                Some(lead),
                &mut p.server,
                std::future::pending(),
            )
            .await;
        assert!(
            matches!(result, Err(Fatal::LeaseLost(LeaseLost::DeadlinePassed))),
            "{result:?}"
        );
        assert!(last(&writes).is_some_and(|w| w < deadline));
        assert_eq!(writes_after(&writes, deadline).await, 0);
        assert!(released.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_dead_http_server_stops_the_controller_and_ends_in_error() {
        let p = serve().await;
        let mut server: JoinHandle<std::io::Result<()>> = tokio::spawn(async {
            tokio::time::sleep(20 * MS).await;
            Err(std::io::Error::other("accept failed"))
        });
        let (controller, writes) = stubborn_writer();
        let (stop, _) = watch::channel(false);
        let result = p
            .supervisor(Fence::unbounded(), Duration::from_secs(20))
            .run(controller, stop, None, &mut server, std::future::pending())
            .await;
        let returned = Instant::now();
        assert!(
            matches!(&result, Err(Fatal::ServerStopped(m)) if m.contains("accept failed")),
            "{result:?}"
        );
        assert!(!p.healthy.load(Ordering::Relaxed));
        assert_eq!(writes_after(&writes, returned).await, 0);
    }
}
