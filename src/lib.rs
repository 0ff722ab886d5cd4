//! scaleset-watch: a Kubernetes controller that reports the health of Azure VM Scale Sets.
//!
//! `crd` declares the API; `arm` speaks to Azure Resource Manager and `azure` sets up its
//! endpoints and credentials; `health` and `status` are the pure judgement; `poller` shares
//! fetches between watches; `reconciler` ties them to Kubernetes. The ARM simulator that
//! stands in for Azure in tests is a crate of its own (`simulator/`), not part of the product.

pub mod ambient;
pub mod arm;
pub mod azure;
pub mod check;
pub mod crd;
pub mod health;
pub mod leader;
pub mod metrics;
pub mod poller;
pub mod reconciler;
pub mod server;
pub mod status;
pub mod supervisor;
