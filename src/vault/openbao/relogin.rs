//! When the OpenBao client may log in again, as a pure rule over its login state.
//!
//! A 403 means either that the token expired or was revoked (a new login helps) or that
//! its policy does not allow the request (a new login changes nothing, and with AppRole
//! mints one more token and spends a use of the secret id every time). So the token that
//! met a 403 is replaced at most once: a token that has had a request answered and is then
//! refused reached the end of its life, and is replaced at once; a fresh token refused
//! before anything worked (or a login that failed) means the policy or the credentials are
//! wrong, and the next login waits, from 5 s doubling up to 10 minutes, while requests fail
//! at once with the denial.

use std::time::{Duration, Instant};

/// The wait after the first login that did not help.
pub(crate) const FIRST_WAIT: Duration = Duration::from_secs(5);
/// The longest wait between logins.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(600);

/// How long to wait before the next login after `failures` logins in a row that did not
/// help (zero when none failed).
pub(crate) fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
    FIRST_WAIT.saturating_mul(factor).min(MAX_WAIT)
}

/// The client's logins so far.
#[derive(Debug, Default)]
pub(crate) struct LoginState {
    /// Counts logins; a request remembers the login its token came from.
    pub generation: u64,
    /// When the last login was tried (successful or not).
    last_attempt: Option<Instant>,
    /// A request with the current token was answered with something else than 403.
    proven: bool,
    /// The current token's refusal was counted in `failures` already.
    counted: bool,
    /// Logins in a row that did not help (failed, or gave a token refused at once).
    failures: u32,
}

/// What to do after a 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDenied {
    /// Another request replaced the token meanwhile: try again with the new one.
    Retry,
    /// Log in again now (and revoke the refused token).
    Relogin,
    /// The denial stands; no login before this much time has passed.
    Wait(Duration),
}

impl LoginState {
    /// Whether a login may be tried at `now` (no token is held): `Err` with the time left
    /// while backing off.
    pub(crate) fn may_login(&self, now: Instant) -> Result<(), Duration> {
        match self.last_attempt {
            Some(at) if self.failures > 0 => {
                let ready = at + backoff(self.failures);
                if now < ready {
                    Err(ready - now)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// A login was tried at `now`; `ok` when it gave a token.
    pub(crate) fn logged_in(&mut self, ok: bool, now: Instant) {
        self.last_attempt = Some(now);
        if ok {
            self.generation += 1;
            self.proven = false;
            self.counted = false;
        } else {
            self.failures += 1;
        }
    }

    /// A request with the token of login `generation` was answered (not 403).
    pub(crate) fn answered(&mut self, generation: u64) {
        if generation == self.generation {
            self.proven = true;
            self.failures = 0;
        }
    }

    /// A request with the token of login `generation` was refused with 403 at `now`.
    pub(crate) fn denied(&mut self, generation: u64, now: Instant) -> OnDenied {
        if generation != self.generation {
            return OnDenied::Retry;
        }
        if self.proven {
            // It worked before: it expired or was revoked. Once per token, since the
            // next one is not proven yet.
            return OnDenied::Relogin;
        }
        if !self.counted {
            self.counted = true;
            self.failures += 1;
        }
        match self.may_login(now) {
            Ok(()) => OnDenied::Relogin,
            Err(left) => OnDenied::Wait(left),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_wait_doubles_from_five_seconds_up_to_ten_minutes() {
        let waits: Vec<u64> = (0..10).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [0, 5, 10, 20, 40, 80, 160, 320, 600, 600]);
        assert_eq!(backoff(u32::MAX), MAX_WAIT);
    }

    #[test]
    fn an_expired_token_is_replaced_once_and_a_refused_fresh_one_backs_off() {
        let t0 = Instant::now();
        let mut s = LoginState::default();
        assert_eq!(s.may_login(t0), Ok(()));
        s.logged_in(true, t0);
        let first = s.generation;
        s.answered(first);
        // Worked, then refused: the end of its life; log in again at once.
        assert_eq!(s.denied(first, t0 + 3600 * S), OnDenied::Relogin);
        s.logged_in(true, t0 + 3600 * S);
        let second = s.generation;
        // A request still holding the old token only retries with the new one.
        assert_eq!(s.denied(first, t0 + 3600 * S), OnDenied::Retry);
        // The fresh token is refused too: the policy, not the token. No login for 5 s,
        // however many requests are refused meanwhile.
        let t1 = t0 + 3600 * S;
        assert_eq!(s.denied(second, t1 + S), OnDenied::Wait(4 * S));
        assert_eq!(s.denied(second, t1 + 2 * S), OnDenied::Wait(3 * S));
        assert_eq!(s.denied(second, t1 + 5 * S), OnDenied::Relogin);
        s.logged_in(true, t1 + 5 * S);
        let third = s.generation;
        assert_eq!(s.denied(third, t1 + 6 * S), OnDenied::Wait(9 * S));
        assert_eq!(s.denied(third, t1 + 15 * S), OnDenied::Relogin);
        // A login that fails counts as well.
        s.logged_in(false, t1 + 15 * S);
        assert_eq!(s.may_login(t1 + 16 * S), Err(19 * S));
        assert_eq!(s.may_login(t1 + 35 * S), Ok(()));
        s.logged_in(true, t1 + 35 * S);
        // The policy was fixed: an answer resets the backoff.
        s.answered(s.generation);
        assert_eq!(s.denied(s.generation, t1 + 36 * S), OnDenied::Relogin);
    }
}
