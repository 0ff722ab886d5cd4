//! scaleset-watch: a Kubernetes controller that reports the health of Azure VM Scale Sets.
//!
//! `crd` declares the API; `arm` speaks to Azure Resource Manager and `azure` sets up its
//! endpoints and credentials; `health` and `status` are the pure judgement; `poller` fetches
//! each scale set on its own schedule (`schedule`, pure) for all the watches that name it;
//! `reconciler` ties them to Kubernetes; `simulator` stands in for Azure.

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
pub mod schedule;
pub mod server;
pub mod simulator;
pub mod status;
pub mod supervisor;
