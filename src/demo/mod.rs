//! `tether demo`: the whole recovery loop on loopback, for newcomers (see [`provider`] for the
//! demo authorization server).
//!
//! `run.rs` is the script itself: the daemon, the paired companion and the scripted
//! revocation.

pub mod provider;
pub mod run;

pub use run::{run, DemoError, DemoOptions};
