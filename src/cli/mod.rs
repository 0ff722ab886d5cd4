//! Commands for people at a terminal.

pub mod check;
