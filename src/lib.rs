//! scaleset-watch: a Kubernetes controller that reports the health of Azure VM Scale Sets.
//!
//! Read top-down, from a spec to a status: `api` declares the ScaleSetWatch resource;
//! `azure` fetches a scale set's instance views (credentials, the ARM client, and the poller
//! that fetches each scale set on its own schedule for all the watches that name it);
//! `health` judges them and derives the next status, with no I/O; `controller` ties this to
//! Kubernetes (reconcile, leader election, metrics, endpoints); `cli` holds `check`.
//! `simulator` stands in for Azure in tests and the demo.

pub mod api;
pub mod azure;
pub mod cli;
pub mod controller;
pub mod health;
pub mod simulator;
