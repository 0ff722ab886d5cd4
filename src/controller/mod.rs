//! The running controller: reconcile (Kubernetes in, status out), leader election, the
//! supervisor that makes a dead controller visible, metrics and the HTTP endpoints.

pub mod decide;
#[cfg(test)]
mod fixtures;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod server;
pub mod supervisor;
