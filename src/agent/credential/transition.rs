//! A credential's state transitions, as pure functions in the shape of
//! `companion::policy`: the outcome of a check and the previous state give the next state,
//! and a change of state gives the alert it calls for. [`Daemon::record`] applies them
//! (status, event, counter, alert); tests drive them without a daemon.
//!
//! [`Daemon::record`]: crate::agent::daemon::Daemon

use crate::agent::alerts::AlertKind;
use crate::agent::error::CheckError;
use crate::protocol::CredentialState;

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
}
