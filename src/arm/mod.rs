//! Azure Resource Manager: the wire format of the list call and the client that pages through it.

pub mod client;
pub mod json;
pub mod model;
