//! The pure judgement, with no I/O: each instance's health from its instance view
//! (`judge`), and from the fleet's health the next status and conditions (`status`).

mod judge;
mod reason;
pub mod status;

pub use judge::*;
pub use reason::Reason;
