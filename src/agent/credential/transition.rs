//! A credential's state transitions, as pure functions in the shape of
//! `companion::policy`: the outcome of a check and the previous state give the next state,
//! and a change of state gives the alert it calls for; [`decide`] adds the rules that
//! override it (an open challenge, a scope gap). `Credential::apply` applies them to the
//! status and `Daemon::apply_result` sends the event, counter and alert; tests drive them
//! without a daemon.

use crate::agent::alerts::AlertKind;
use crate::agent::error::CheckError;
use crate::protocol::{CredentialState, ErrorInfo};

/// What a check, refresh or probe found, as the state machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It worked; the credential is in this working state (`ok`, or `expiring` when the
    /// refresh token ends inside the warning window).
    Worked(CredentialState),
    /// The provider says the grant is gone.
    Dead,
    /// Transient trouble (network, 5xx, a vault write that failed).
    Trouble,
    /// No token is stored yet.
    NoToken,
    /// The daemon is shutting down: nothing was learnt.
    ShuttingDown,
}

impl Outcome {
    /// The outcome of a failed check.
    pub fn of_error(e: &CheckError) -> Outcome {
        if e.is_dead() {
            Outcome::Dead
        } else {
            match e {
                CheckError::ShuttingDown => Outcome::ShuttingDown,
                CheckError::NoToken => Outcome::NoToken,
                _ => Outcome::Trouble,
            }
        }
    }
}

/// The next state, and whether the outcome counts as one more consecutive failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The state after the outcome.
    pub state: CredentialState,
    /// True when the failure counter goes up (transient trouble of a live credential).
    pub failed: bool,
}

/// The state after `outcome`, from `previous`. A known dead credential stays dead until a
/// check that works (a re-authorization or a refresh); trouble never makes it anything
/// else.
pub fn next(previous: CredentialState, outcome: Outcome) -> Step {
    let state = match outcome {
        Outcome::Worked(working) => working,
        Outcome::Dead => CredentialState::Dead,
        Outcome::ShuttingDown => previous,
        // Nothing to check: the owner still has to authorize it once.
        Outcome::NoToken if previous == CredentialState::Dead => previous,
        Outcome::NoToken => CredentialState::Unchecked,
        Outcome::Trouble if previous == CredentialState::Dead => CredentialState::Dead,
        Outcome::Trouble => CredentialState::Degraded,
    };
    Step {
        state,
        failed: outcome == Outcome::Trouble && previous != CredentialState::Dead,
    }
}

/// The alert a change from `previous` to `next` calls for: death, a refresh token about to
/// end (not right after death: that is a recovery), or recovery from death.
pub fn alert_for(previous: CredentialState, next: CredentialState) -> Option<AlertKind> {
    use CredentialState as S;
    if previous == next {
        return None;
    }
    match (previous, next) {
        (_, S::Dead) => Some(AlertKind::Dead),
        (S::Dead, S::Ok | S::Expiring) => Some(AlertKind::Recovered),
        (_, S::Expiring) => Some(AlertKind::Expiring),
        _ => None,
    }
}

/// What is known when a result is applied, besides the result itself: the rules that
/// override the plain [`next`] (an open challenge, a grant without a configured scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The state before.
    pub previous: CredentialState,
    /// The error shown before was `human_needed` (a challenge made it dead).
    pub was_human_needed: bool,
    /// The error of the challenge open now, if any.
    pub challenge: Option<ErrorInfo>,
    /// The error of the scope gap of the newest grant, if any.
    pub scope_gap: Option<ErrorInfo>,
    /// What the result was.
    pub outcome: Outcome,
    /// The result's own error (`None` when it worked).
    pub error: Option<ErrorInfo>,
    /// True when the state's alert is the transition's to send (not the caller's).
    pub alert_by_transition: bool,
}

/// What applying a result does to the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The state after.
    pub state: CredentialState,
    /// The error the status shows after.
    pub last_error: Option<ErrorInfo>,
    /// True when the failure counter goes up.
    pub failed: bool,
    /// Dead because a challenge asked for the owner, and now the provider says the grant
    /// itself is gone: the same state, but news the owner must hear (the grant needs a
    /// re-authorization whatever the agent's session does).
    pub grant_died_too: bool,
}

/// The state and error after a result, with the overrides: an open challenge keeps the
/// credential dead whatever else a check met (only the agent can say its session works),
/// and a working grant that lacks a configured scope is `degraded` (alive and useless).
/// A credential dead only because of a challenge since resolved, or only because of a
/// scope gap, was never in doubt: trouble now is trouble, not "still dead".
pub fn decide(f: Facts) -> Decision {
    let mut last_error = f.error;
    let outcome = match (&f.challenge, &f.scope_gap, f.outcome) {
        (Some(info), _, Outcome::Worked(_) | Outcome::Trouble | Outcome::NoToken) => {
            last_error = Some(info.clone());
            Outcome::Dead
        }
        (None, Some(info), Outcome::Worked(_)) => {
            last_error = Some(info.clone());
            Outcome::Trouble
        }
        (_, _, o) => o,
    };
    let rule_from = if f.previous == CredentialState::Dead
        && ((f.was_human_needed && f.challenge.is_none())
            || (f.scope_gap.is_some() && outcome == Outcome::Trouble))
    {
        CredentialState::Ok
    } else {
        f.previous
    };
    let step = next(rule_from, outcome);
    let grant_died_too = step.state == f.previous
        && f.previous == CredentialState::Dead
        && f.was_human_needed
        && f.alert_by_transition
        && f.outcome == Outcome::Dead;
    Decision {
        state: step.state,
        last_error,
        failed: step.failed,
        grant_died_too,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CredentialState as S;

    const ALL: [S; 5] = [S::Unchecked, S::Ok, S::Expiring, S::Degraded, S::Dead];

    #[test]
    fn dead_stays_dead_until_something_works() {
        for o in [
            Outcome::Trouble,
            Outcome::NoToken,
            Outcome::ShuttingDown,
            Outcome::Dead,
        ] {
            assert_eq!(next(S::Dead, o).state, S::Dead, "{o:?}");
            assert!(!next(S::Dead, o).failed, "{o:?}");
        }
        assert_eq!(next(S::Dead, Outcome::Worked(S::Ok)).state, S::Ok);
        assert_eq!(
            next(S::Dead, Outcome::Worked(S::Expiring)).state,
            S::Expiring
        );
    }

    #[test]
    fn trouble_degrades_a_live_credential_and_counts() {
        for p in [S::Unchecked, S::Ok, S::Expiring, S::Degraded] {
            let s = next(p, Outcome::Trouble);
            assert_eq!(s.state, S::Degraded, "{p:?}");
            assert!(s.failed, "{p:?}");
        }
    }

    #[test]
    fn no_token_is_unchecked_and_shutdown_changes_nothing() {
        for p in [S::Unchecked, S::Ok, S::Expiring, S::Degraded] {
            assert_eq!(next(p, Outcome::NoToken).state, S::Unchecked, "{p:?}");
        }
        for p in ALL {
            assert_eq!(next(p, Outcome::ShuttingDown).state, p, "{p:?}");
        }
    }

    #[test]
    fn dead_from_anywhere_and_work_from_anywhere() {
        for p in ALL {
            assert_eq!(next(p, Outcome::Dead).state, S::Dead);
            assert_eq!(next(p, Outcome::Worked(S::Ok)).state, S::Ok);
            assert!(!next(p, Outcome::Worked(S::Ok)).failed);
        }
    }

    #[test]
    fn alerts_for_death_expiry_and_recovery_only() {
        for p in ALL {
            let want_dead = (p != S::Dead).then_some(AlertKind::Dead);
            assert_eq!(alert_for(p, S::Dead), want_dead, "{p:?}");
            assert_eq!(alert_for(p, p), None, "no change, no alert: {p:?}");
        }
        assert_eq!(alert_for(S::Dead, S::Ok), Some(AlertKind::Recovered));
        assert_eq!(alert_for(S::Dead, S::Expiring), Some(AlertKind::Recovered));
        assert_eq!(alert_for(S::Ok, S::Expiring), Some(AlertKind::Expiring));
        assert_eq!(
            alert_for(S::Degraded, S::Expiring),
            Some(AlertKind::Expiring)
        );
        assert_eq!(alert_for(S::Degraded, S::Ok), None);
        assert_eq!(alert_for(S::Ok, S::Degraded), None);
        assert_eq!(alert_for(S::Dead, S::Unchecked), None);
    }

    fn info(code: &str) -> ErrorInfo {
        ErrorInfo {
            code: code.into(),
            description: code.into(),
        }
    }

    fn facts(previous: S, outcome: Outcome) -> Facts {
        Facts {
            previous,
            was_human_needed: false,
            challenge: None,
            scope_gap: None,
            outcome,
            error: match outcome {
                Outcome::Worked(_) => None,
                _ => Some(info("e")),
            },
            alert_by_transition: true,
        }
    }

    #[test]
    fn an_open_challenge_keeps_it_dead_whatever_a_check_meets() {
        for o in [Outcome::Worked(S::Ok), Outcome::Trouble, Outcome::NoToken] {
            for p in ALL {
                let d = decide(Facts {
                    challenge: Some(info("human_needed")),
                    ..facts(p, o)
                });
                assert_eq!(d.state, S::Dead, "{p:?} {o:?}");
                assert_eq!(d.last_error, Some(info("human_needed")), "{p:?} {o:?}");
            }
        }
        // The provider's own death stays the provider's words.
        let d = decide(Facts {
            challenge: Some(info("human_needed")),
            ..facts(S::Ok, Outcome::Dead)
        });
        assert_eq!((d.state, d.last_error), (S::Dead, Some(info("e"))));
    }

    #[test]
    fn a_working_grant_without_a_scope_is_degraded_not_ok() {
        for p in [S::Unchecked, S::Ok, S::Expiring, S::Degraded, S::Dead] {
            let d = decide(Facts {
                scope_gap: Some(info("missing_scope")),
                ..facts(p, Outcome::Worked(S::Ok))
            });
            assert_eq!(
                d.state,
                S::Degraded,
                "{p:?}: dead only for a scope gap is not still dead"
            );
            assert_eq!(d.last_error, Some(info("missing_scope")));
        }
        let d = decide(facts(S::Ok, Outcome::Worked(S::Ok)));
        assert_eq!((d.state, d.last_error), (S::Ok, None));
    }

    #[test]
    fn a_resolved_challenge_turns_trouble_into_degraded_not_still_dead() {
        let resolved = Facts {
            was_human_needed: true,
            ..facts(S::Dead, Outcome::Trouble)
        };
        assert_eq!(decide(resolved.clone()).state, S::Degraded);
        // Without the challenge in its past, a dead credential with trouble stays dead.
        assert_eq!(decide(facts(S::Dead, Outcome::Trouble)).state, S::Dead);
        // While the challenge is still open it stays dead.
        let open = Facts {
            challenge: Some(info("human_needed")),
            ..resolved
        };
        assert_eq!(decide(open).state, S::Dead);
    }

    #[test]
    fn the_grant_dying_under_a_challenge_is_news_once_by_the_transition() {
        let f = Facts {
            was_human_needed: true,
            challenge: Some(info("human_needed")),
            ..facts(S::Dead, Outcome::Dead)
        };
        assert!(decide(f.clone()).grant_died_too);
        assert!(
            !decide(Facts {
                alert_by_transition: false,
                ..f.clone()
            })
            .grant_died_too
        );
        assert!(
            !decide(Facts {
                outcome: Outcome::Trouble,
                ..f.clone()
            })
            .grant_died_too
        );
        assert!(
            !decide(Facts {
                was_human_needed: false,
                ..f
            })
            .grant_died_too
        );
    }
}
