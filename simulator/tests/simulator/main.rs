//! The ARM simulator, driven over real HTTPS with reqwest (and with the
//! `azure_identity` credentials the controller uses), as the controller
//! would see it. One test binary, one module per topic.

mod admin;
mod azure_identity;
mod binary;
mod common;
mod faults;
mod paging;
mod requests;
mod scenarios;
mod shapes;
mod tokens;
mod workload_identity;

// Shared with the product's tests (tests/support), which test them in tests/harness.
#[path = "../../../tests/support/reaper.rs"]
mod reaper;
#[path = "../../../tests/support/sim_admin.rs"]
mod sim_admin;
