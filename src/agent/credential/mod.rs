//! One credential at run time and its pure rules: below the daemon, which stores the set.
//!
//! - [`runtime`]: [`Credential`]: its provider, client, status, cached token and flight;
//! - [`human_state`]: its human side (open challenge, pending work) and the errors shown
//!   while a human must act;
//! - [`set`]: the credentials by name, swapped whole on a reload;
//! - [`status_change`]: the one writer of a credential's status (applying a result by
//!   the transition rules, reminders, generation, account);
//! - [`transition`]: pure: outcome + previous state → next state, and the alert it calls for;
//! - [`scopes`]: the granted scopes against the configured ones (a gap is `degraded`);
//! - [`session_rule`]: pure rules of a `kind = "session"` credential (cadence, staleness code);
//! - [`schedule`]: pure, clock-driven: when to probe and when to test the refresh token;
//! - [`intent`]: durable notes of refresh tokens being spent (a cut rotation is never
//!   replayed blindly).

pub mod human_state;
pub mod intent;
pub mod runtime;
pub mod schedule;
pub mod scopes;
pub mod session_rule;
pub mod set;
pub mod status_change;
pub mod transition;

pub use runtime::{CachedToken, Credential, Status};
