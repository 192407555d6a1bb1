//! The one writer of a credential's [`Status`](super::runtime::Status): every change of
//! state, error, failure count, generation, account or alert time goes through a method
//! here, so the rules of [`transition`](super::transition) are the only way a state moves.

use super::human_state::HUMAN_NEEDED;
use super::runtime::Credential;
use super::scopes::MISSING_SCOPE;
use super::transition::{self, Facts, Outcome};
use crate::agent::error::CheckError;
use crate::protocol::{CredentialState, ErrorInfo};
use chrono::{DateTime, Utc};

/// What a probe's `gone` says while a refresh test confirms it.
pub const GONE_CONFIRMING: &str = "gone (confirming with a refresh test)";
/// What a probe's `gone` says once a refresh test confirmed it.
pub const GONE_CONFIRMED: &str = "gone (confirmed by a refresh test)";

/// What [`Credential::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The state stayed.
    Unchanged,
    /// The state stayed dead, but the grant died under an open challenge: news.
    GrantDiedToo,
    /// The state changed.
    Changed {
        /// The state before.
        previous: CredentialState,
        /// Requests refused while it was dead (counted again from 0 on leaving dead).
        blocked_before: u64,
        /// It was degraded for a scope gap before.
        was_scope_gap: bool,
    },
}

impl Credential {
    /// Applies the result of a check or refresh (`Ok` with the refresh token's known end)
    /// by [`transition::decide`]; `alert_by_transition` is false when the caller decides
    /// the alert itself. Marks the alert time when the result calls for a death alert.
    pub(crate) fn apply(
        &self,
        result: Result<Option<DateTime<Utc>>, &CheckError>,
        alert_by_transition: bool,
    ) -> Applied {
        // An open challenge: read before the status lock (the two locks are never nested
        // the other way).
        let challenge = self.challenge_error();
        let scope_gap = self.scope_error();
        let mut s = self.status.lock();
        let previous = s.state;
        let now = Utc::now();
        let was_human_needed = s
            .last_error
            .as_ref()
            .is_some_and(|i| i.code == HUMAN_NEEDED);
        let was_scope_gap = previous == CredentialState::Degraded
            && s.last_error
                .as_ref()
                .is_some_and(|i| i.code == MISSING_SCOPE);
        let (outcome, error) = match result {
            Ok(end) => {
                s.refresh_expires_at = end.or(s.refresh_expires_at);
                s.failures = 0;
                (
                    Outcome::Worked(self.working_state(s.refresh_expires_at)),
                    None,
                )
            }
            Err(e) => {
                // The refresh test confirming a probe's `gone` is this very error: the
                // health and event that say `dead` say the probe was confirmed too.
                if e.is_dead() {
                    if let Some(p) = s
                        .last_probe
                        .as_mut()
                        .filter(|p| p.result == GONE_CONFIRMING)
                    {
                        p.result = GONE_CONFIRMED.into();
                    }
                }
                (Outcome::of_error(e), Some(e.info()))
            }
        };
        let d = transition::decide(Facts {
            previous,
            was_human_needed,
            challenge,
            scope_gap,
            outcome,
            error,
            alert_by_transition,
        });
        s.last_error = d.last_error;
        if d.failed {
            s.failures = s.failures.saturating_add(1);
        }
        s.last_check = Some(now);
        if d.grant_died_too {
            s.last_alert = Some(now);
            return Applied::GrantDiedToo;
        }
        if d.state == previous {
            return Applied::Unchanged;
        }
        s.state = d.state;
        s.since = now;
        let blocked_before = s.blocked;
        if previous == CredentialState::Dead {
            s.blocked = 0;
        }
        if d.state == CredentialState::Dead {
            s.last_alert = Some(now);
        }
        drop(s);
        self.changed.notify_one();
        Applied::Changed {
            previous,
            blocked_before,
            was_scope_gap,
        }
    }

    /// True, and the alert time marked, when a dead credential's reminder is due.
    pub(crate) fn reminder_due(&self, interval: chrono::Duration) -> bool {
        let mut s = self.status.lock();
        let now = Utc::now();
        let due =
            s.state == CredentialState::Dead && s.last_alert.is_none_or(|t| now - t >= interval);
        if due {
            s.last_alert = Some(now);
        }
        due
    }

    /// Marks that the owner was alerted at `at` (a challenge the caller announced).
    pub(crate) fn mark_alerted(&self, at: DateTime<Utc>) {
        self.status.lock().last_alert = Some(at);
    }

    /// The newest vault generation, after a commit (durable in every location, outputs
    /// rendered) or a follower's read; a new one wakes the `on_change` hook.
    pub(crate) fn set_generation(&self, generation: u64) {
        let newer = {
            let mut s = self.status.lock();
            let newer = generation > s.generation;
            s.generation = generation;
            newer
        };
        if newer {
            self.changed.notify_one();
        }
    }

    /// The last run of the `on_change` hook.
    pub(crate) fn set_hook_result(&self, run: crate::protocol::HookHealth) {
        *self.hook.lock() = Some(run);
    }

    /// The last run of the `on_change` hook, if it ran.
    pub fn hook_result(&self) -> Option<crate::protocol::HookHealth> {
        self.hook.lock().clone()
    }

    /// A new grant (a re-authorization or a pasted token): its account and refresh end.
    pub(crate) fn set_grant(
        &self,
        account: Option<String>,
        refresh_expires_at: Option<DateTime<Utc>>,
    ) {
        let mut s = self.status.lock();
        s.account = account;
        s.refresh_expires_at = refresh_expires_at;
    }

    /// The account label the newest grant names.
    pub(crate) fn set_account(&self, account: Option<String>) {
        self.status.lock().account = account;
    }

    /// A refused access-token request while dead: counts it and returns the error shown,
    /// or `None` when the credential is not dead.
    pub(crate) fn block_if_dead(&self) -> Option<Option<ErrorInfo>> {
        let mut s = self.status.lock();
        if s.state != CredentialState::Dead {
            return None;
        }
        s.blocked += 1;
        Some(s.last_error.clone())
    }

    /// A probe found the grant alive: earlier unconfirmed `gone`s no longer run in a row.
    pub(crate) fn probe_alive(&self) {
        self.status.lock().unconfirmed_gones = 0;
    }

    /// A check that changed nothing finished now.
    pub(crate) fn checked_now(&self) {
        self.status.lock().last_check = Some(Utc::now());
    }

    /// A refresh test contradicted the probe's `gone` once more: true when that made
    /// `limit` in a row (the count starts again).
    pub(crate) fn gone_contradicted(&self, limit: u32) -> bool {
        let mut s = self.status.lock();
        s.unconfirmed_gones += 1;
        if s.unconfirmed_gones >= limit {
            s.unconfirmed_gones = 0;
            return true;
        }
        false
    }
}
