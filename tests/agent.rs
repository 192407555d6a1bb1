//! Integration tests for `tether::agent`: the real daemon over real HTTPS (pinned
//! self-signed certificate), against the real oidc-provider fixture, a webhook receiver
//! and a real SMTP server on loopback, and the real `tether` binary for the CLI and the
//! crash test.

mod api;
pub(crate) mod challenges;
mod check;
mod cli;
mod config_edit;
mod device_flow;
mod edges;
mod fair_connections;
mod flows;
mod ha;
mod hardening;
pub mod harness;
mod hostile;
pub(crate) mod identity;
mod lifetimes;
mod on_change;
mod output_wipes;
mod paste_shell;
mod python_client;
mod reload;
mod restart;
mod simulated_life;
mod token_client;
mod trust;
mod vault_cadence;
