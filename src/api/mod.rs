//! The Kubernetes API of scaleset-watch: the ScaleSetWatch custom resource, its spec (what
//! to watch, how often, with which credentials and health policy) and its status.

mod watch;

pub use watch::*;
