//! scaleset-watch: a Kubernetes controller that reports the health of Azure VM Scale Sets.

pub mod arm;
pub mod crd;
pub mod health;
pub mod simulator;
