//! ARM simulator: a stand-in for Azure Resource Manager and Entra ID on
//! loopback, over real HTTPS, speaking ARM's wire format, so that the
//! controller can be run and tested against it with only its URLs changed.
//!
//! It serves:
//! - `POST /{tenant}/oauth2/v2.0/token`: client credentials, with a client
//!   secret or a workload-identity assertion;
//! - `GET .../virtualMachineScaleSets/{vmss}/virtualMachines` (the VMSS VM
//!   list with instance views), `GET .../virtualMachineScaleSets/{vmss}` and
//!   the resource group's `GET .../virtualMachines?$filter=...` for Flexible
//!   sets;
//! - `/_sim/...`: an admin API for tests, unauthenticated (bodies are JSON
//!   or YAML, in the scenario's shapes):
//!   - `GET /_sim/healthz`;
//!   - `GET /_sim/requests` ([`RequestStats`]), `POST /_sim/requests/reset`;
//!   - `POST /_sim/tokens/expire`: every token issued so far expires;
//!   - `PUT|DELETE /_sim/tokens/outage`: with `{status: 503, body: entra|html,
//!     retryAfter?}` (429 or 5xx) every token request fails so until the outage
//!     is deleted;
//!   - `PUT|DELETE /_sim/tokens/fault`: with `{redirect: {status: 307, to: URL}}`
//!     or `{answer: {...}}` every token request is redirected, or answered 200
//!     with that body, until the fault is deleted;
//!   - `GET /_sim/scalesets/{sub}/{rg}/{vmss}`: instances and armed faults;
//!   - `PUT|PATCH|DELETE /_sim/scalesets/{sub}/{rg}/{vmss}/instances/{id}`:
//!     replace (or add), change some fields of, or remove an instance;
//!   - `GET|POST|DELETE /_sim/scalesets/{sub}/{rg}/{vmss}/faults`: list,
//!     replace (one fault or a list), or clear the faults.
//!
//! What it contains is a [`Scenario`] (YAML; see [`scenario`] for the
//! format). In-process tests start it with [`Simulator::start`]:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use ssw_simulator::{Scenario, Simulator};
//! let scenario = Scenario::from_file("examples/simulator/fleet.yaml".as_ref())?;
//! let sim = Simulator::start(scenario, "127.0.0.1:0".parse()?).await?;
//! println!("{} trusts {}", sim.base_url(), sim.ca_pem());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod arm;
mod render;
pub mod scenario;
mod server;
mod state;
mod tls;
mod tokens;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use arm::SUPPORTED_API_VERSIONS;
pub use scenario::{
    Fault, FaultKind, InstanceSpec, OutageBody, RedirectFault, Scenario, ScenarioError, TokenFault,
    TokenFaultKind, TokenOutage,
};
pub use state::{
    Counter, RequestRecord, RequestStats, ScaleSetCounters, ScaleSetRef, SimState, StateError,
    TokenCounters,
};
pub use tls::TlsError;

/// The demo fleet, served when no `--scenario` is given.
pub const DEMO_SCENARIO: &str = include_str!("../../examples/simulator/fleet.yaml");

/// Options of the `ssw-simulator` binary.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Scenario YAML (see examples/simulator/); the demo fleet when omitted.
    #[arg(long, env = "SSW_SIM_SCENARIO")]
    pub scenario: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Write the CA certificate (PEM) here, for the controller's --ca-file.
    #[arg(long)]
    pub ca_out: Option<PathBuf>,
    /// Write the base URL here once listening (after --ca-out is written),
    /// so that scripts can wait for this file.
    #[arg(long)]
    pub url_out: Option<PathBuf>,
}

/// Errors starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
}

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Listens on `bind` (port 0 picks one) and serves `scenario` until the
    /// handle is shut down or dropped.
    pub async fn start(
        scenario: Scenario,
        bind: SocketAddr,
    ) -> Result<SimulatorHandle, SimulatorError> {
        scenario.validate()?;
        // reqwest (JWKS fetches) is built without a default crypto
        // provider; an Err only means one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let material = tls::generate(bind.ip())?;
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|source| SimulatorError::Bind { addr: bind, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SimulatorError::Bind { addr: bind, source })?;
        let base_url = match addr {
            SocketAddr::V4(a) => format!("https://{}:{}", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("https://[{}]:{}", a.ip(), a.port()),
        };
        let state = Arc::new(SimState::new(&scenario));
        let (stop_tx, stop_rx) = watch::channel(false);
        let app = Arc::new(server::App {
            state: state.clone(),
            base_url: base_url.clone(),
            shutdown: stop_rx.clone(),
        });
        let router = server::router(app);
        let task = tokio::spawn(tls::serve(listener, material.config, router, stop_rx));
        tracing::info!(url = %base_url, "ARM simulator listening");
        Ok(SimulatorHandle {
            base_url,
            addr,
            ca_pem: material.ca_pem,
            state,
            stop: stop_tx,
            task: Some(task),
        })
    }
}

/// A running simulator. Dropping it stops the server (without waiting).
pub struct SimulatorHandle {
    base_url: String,
    addr: SocketAddr,
    ca_pem: String,
    state: Arc<SimState>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl SimulatorHandle {
    /// `https://127.0.0.1:PORT` (no trailing slash): both the ARM endpoint
    /// and the Entra authority host.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA that signed the server certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The live state, for direct inspection and changes.
    pub fn state(&self) -> &Arc<SimState> {
        &self.state
    }

    pub fn put_instance(&self, r: &ScaleSetRef, spec: InstanceSpec) -> Result<(), StateError> {
        self.state.put_instance(r, spec)
    }

    pub fn patch_instance(
        &self,
        r: &ScaleSetRef,
        id: &str,
        patch: InstanceSpec,
    ) -> Result<(), StateError> {
        self.state.patch_instance(r, id, patch)
    }

    pub fn remove_instance(&self, r: &ScaleSetRef, id: &str) -> Result<(), StateError> {
        self.state.remove_instance(r, id)
    }

    pub fn set_faults(&self, r: &ScaleSetRef, faults: Vec<Fault>) -> Result<(), StateError> {
        self.state.set_faults(r, faults)
    }

    pub fn clear_faults(&self, r: &ScaleSetRef) -> Result<(), StateError> {
        self.state.clear_faults(r)
    }

    pub fn request_stats(&self) -> RequestStats {
        self.state.request_stats()
    }

    pub fn reset_requests(&self) {
        self.state.reset_requests()
    }

    pub fn expire_tokens(&self) {
        self.state.expire_tokens()
    }

    /// Starts or ends (`None`) an outage of the token endpoint.
    pub fn set_token_outage(&self, outage: Option<TokenOutage>) -> Result<(), StateError> {
        self.state.set_token_outage(outage)
    }

    /// Starts or ends (`None`) a fault of the token endpoint.
    pub fn set_token_fault(&self, fault: Option<TokenFault>) -> Result<(), StateError> {
        self.state.set_token_fault(fault)
    }

    /// Stops accepting, gives open requests a moment, and waits for the
    /// server task.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Writes via a temporary file and a rename, so that a script polling for
/// the file never reads it half-written.
fn write_atomically(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// The `ssw-simulator` binary: serves until SIGINT or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    // An Err means the embedding program has set up logging already.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let scenario = match &args.scenario {
        Some(path) => Scenario::from_file(path)?,
        None => Scenario::from_yaml(DEMO_SCENARIO).context("the built-in demo scenario")?,
    };
    let sim = Simulator::start(scenario, args.listen).await?;
    if let Some(path) = &args.ca_out {
        write_atomically(path, sim.ca_pem())?;
    }
    if let Some(path) = &args.url_out {
        write_atomically(path, sim.base_url())?;
    }
    println!("{}", sim.base_url());
    wait_for_signal().await?;
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for ctrl-c")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    Ok(())
}
