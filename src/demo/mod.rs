//! `tether demo`: the whole recovery loop on loopback, for newcomers (see [`provider`] for the
//! demo authorization server).

pub mod provider;
pub mod run;

pub use run::{run, DemoError, DemoOptions};
