//! Everything that talks to Azure: clouds and the shared HTTP client, credentials (and which
//! watches may borrow the controller's own), the ARM client and its wire model, and the
//! poller that fetches each scale set once for all the watches that name it.

pub mod ambient;
pub mod arm;
pub mod poller;
pub mod schedule;
mod setup;

pub use setup::*;
