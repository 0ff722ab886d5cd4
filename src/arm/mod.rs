//! Azure Resource Manager: the wire format of the list call, the compact snapshot each page is
//! reduced to, and the client that pages through it.

pub mod client;
pub mod model;
pub mod snapshot;
