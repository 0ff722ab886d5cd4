//! The ARM simulator, driven over real HTTPS with reqwest (and with the
//! `azure_identity` credentials the controller uses), as the controller
//! would see it. One test binary, one module per topic.

mod admin;
mod azure_identity;
mod common;
mod faults;
mod paging;
mod requests;
mod scenarios;
mod shapes;
mod tokens;
mod workload_identity;
