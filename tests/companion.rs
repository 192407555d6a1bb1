//! Integration tests for `tether::companion`.

mod cli;
mod client;
mod keyring;
mod notify;
mod policy;
pub mod support;
mod vault_trouble;
