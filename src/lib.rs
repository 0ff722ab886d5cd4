//! scaleset-watch: a Kubernetes controller that reports the health of Azure VM Scale Sets.
//!
//! Read top-down, from a spec to a status: `api` declares the ScaleSetWatch resource;
//! `azure` fetches a scale set's instance views (credentials, the ARM client, and the poller
//! that fetches each scale set on its own schedule for all the watches that name it);
//! `health` judges them and derives the next status, with no I/O; `controller` ties this to
//! Kubernetes (reconcile, leader election, metrics, endpoints); `cli` holds `check`.
//! The ARM simulator that tests and the demo run against is a crate of its own
//! (`simulator/`, `ssw-simulator`), not part of the product.

pub mod api;
pub mod azure;
pub mod cli;
pub mod controller;
pub mod health;
