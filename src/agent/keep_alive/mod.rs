//! Keeping each credential alive: the checker that follows the schedule, probes and refresh
//! tests, the single-flight refresh and its commit, the broker, and applying each result.
//!
//! - [`checker`]: the task per credential that follows [`schedule`](super::credential::schedule),
//!   and the daemon's chores;
//! - [`probe`]: one check, one probe, the refresh test that confirms a probe's `gone`;
//! - [`refresh`]: the single-flight refresh and the note of the token being spent;
//! - [`commit`]: reading the stored record, room for the next one, the commit;
//! - [`recovery`]: a refresh cut off mid-spend (never replayed blindly), a stored paste
//!   checked at start;
//! - [`registry`]: the checker task of each credential (stored by the daemon);
//! - [`on_change`]: the hook that tells the agent its token changed (after the commit);
//! - [`token_record`]: a token answer as a vault record (first grant, refresh);
//! - [`broker`]: access tokens for the user's agent and its "token refused" report;
//! - [`apply`]: applying a result (`Daemon::apply_result`): the status by the credential's
//!   rules, then the event, counter and alert; dead reminders; the alert dispatch.

pub mod apply;
pub mod broker;
pub mod checker;
pub mod commit;
pub mod on_change;
pub mod probe;
pub mod recovery;
pub mod refresh;
pub mod registry;
pub mod token_record;
