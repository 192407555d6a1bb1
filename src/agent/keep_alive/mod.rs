//! Keeping each credential alive: the checker that follows the schedule, probes and refresh
//! tests, the single-flight refresh and its commit, the broker, and applying each result.
//!
//! - [`checker`]: the task per credential that follows [`schedule`](super::credential::schedule),
//!   and the daemon's chores;
//! - [`probe`]: one check, one probe, the refresh test that confirms a probe's `gone`;
//! - [`refresh`]: the single-flight refresh, the commit to the vault, cut rotations;
//! - [`registry`]: the checker task of each credential (stored by the daemon);
//! - [`token_record`]: a token answer as a vault record (first grant, refresh);
//! - [`broker`]: access tokens for the user's agent and its "token refused" report;
//! - [`record`]: applying a result: status, event, counter, alert; dead reminders.

pub mod broker;
pub mod checker;
pub mod probe;
pub mod record;
pub mod refresh;
pub mod registry;
pub mod token_record;
