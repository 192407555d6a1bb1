//! Integration tests for `tether::companion`.

mod challenge_cli;
mod cli;
mod client;
mod hostile;
mod keyring;
mod notify;
mod pairing;
mod policy;
pub mod support;
mod vault_trouble;
mod wrong_account_tab;
