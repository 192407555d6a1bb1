//! One credential at run time and its pure rules: below the daemon, which stores the set.
//!
//! - [`runtime`]: [`Credential`]: its provider, client, status, cached token and flight;
//! - [`set`]: the credentials by name, swapped whole on a reload;
//! - [`transition`]: pure: outcome + previous state → next state, and the alert it calls for;
//! - [`scopes`]: the granted scopes against the configured ones (a gap is `degraded`);
//! - [`schedule`]: pure, clock-driven: when to probe and when to test the refresh token;
//! - [`intent`]: durable notes of refresh tokens being spent (a cut rotation is never
//!   replayed blindly).

pub mod intent;
pub mod runtime;
pub mod schedule;
pub mod scopes;
pub mod set;
pub mod transition;

pub use runtime::{CachedToken, Credential, Status};
