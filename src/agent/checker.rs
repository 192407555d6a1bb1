//! The checker: one task per credential running two cadences with jitter.
//!
//! - a **probe** (when the provider has one) every `probe_interval`: asks whether the grant
//!   is alive without minting anything; `gone` is confirmed by one refresh test before the
//!   credential is called dead (see [`Daemon::probe`]);
//! - a **refresh test** at start, every `refresh_interval`, and (with `keep_fresh`) ahead
//!   of the access token's expiry.
//!
//! Transient failures put the credential in `degraded` and retry with exponential backoff
//! (never `dead`). A dead credential is re-tested only at the refresh interval; a re-auth
//! wakes the task to recompute its schedule.

use super::credential::Credential;
use super::daemon::Daemon;
use crate::protocol::CredentialState;
use chrono::Utc;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// First retry delay after a transient failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// Longest retry delay after transient failures.
pub const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

/// `d` scaled by a random factor in [0.9, 1.1], so many credentials (and many daemons)
/// do not hit a provider in lockstep.
pub fn jitter(d: Duration) -> Duration {
    let f: f64 = rand::thread_rng().gen_range(0.9..=1.1);
    d.mul_f64(f)
}

/// The delay before retry number `failures` (1-based), capped by `cap`.
pub fn backoff(failures: u32, cap: Duration) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    exp.min(BACKOFF_MAX).min(cap.max(BACKOFF_BASE))
}

/// Runs the checker of `cred` until the daemon shuts down.
pub async fn run(daemon: Arc<Daemon>, cred: Arc<Credential>) {
    let mut shutdown = std::pin::pin!(daemon.shutdown_signal());
    // A refresh test at start, spread over a second so a daemon with many credentials
    // does not open them all against the provider in the same millisecond.
    let spread = Duration::from_millis(rand::thread_rng().gen_range(0..1000));
    let mut next_refresh = Instant::now() + spread;
    let mut next_probe: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let refresh_at = effective_refresh_at(&cred, next_refresh);
        let wake_at = match next_probe {
            Some(p) if p < refresh_at => p,
            _ => refresh_at,
        };
        if wake_at > now {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep_until(wake_at) => {}
                _ = cred.wake.notified() => {
                    // The credential was just verified (re-auth, pasted secret, manual
                    // check): the next refresh test is one interval away.
                    next_refresh = Instant::now() + jitter(cred.config.refresh_interval);
                    if let Some(p) = cred.probe_interval() {
                        next_probe = Some(Instant::now() + jitter(p));
                    }
                    continue;
                }
            }
        }
        if daemon.is_shutting_down() {
            return;
        }
        let now = Instant::now();
        if now >= effective_refresh_at(&cred, next_refresh) {
            let r = daemon.check(&cred).await;
            next_refresh =
                Instant::now() + after_check(&cred, r.is_ok(), cred.config.refresh_interval);
            next_probe = cred.probe_interval().map(|p| Instant::now() + jitter(p));
        } else if next_probe.is_some_and(|p| now >= p) {
            let outcome = daemon.probe(&cred).await;
            let interval = cred
                .probe_interval()
                .unwrap_or(cred.config.refresh_interval);
            next_probe = match outcome {
                None if cred.probe_interval().is_none() => None,
                // No usable token to probe with: the refresh cadence covers it.
                None => Some(Instant::now() + jitter(interval)),
                Some(crate::oauth::ProbeOutcome::Transient(_)) => {
                    let failures = cred.status().failures.max(1);
                    Some(Instant::now() + jitter(backoff(failures, interval)))
                }
                Some(crate::oauth::ProbeOutcome::Gone(_)) => {
                    // The confirming refresh test ran: it counts as the refresh test.
                    let ok = cred.status().state != CredentialState::Dead;
                    next_refresh =
                        Instant::now() + after_check(&cred, ok, cred.config.refresh_interval);
                    Some(Instant::now() + jitter(interval))
                }
                Some(_) => Some(Instant::now() + jitter(interval)),
            };
            if cred.status().state == CredentialState::Dead {
                // Probing a dead grant tells nothing new.
                next_probe = None;
            }
        }
    }
}

/// Delay until the next refresh test after one finished.
fn after_check(cred: &Credential, ok: bool, interval: Duration) -> Duration {
    let s = cred.status();
    if ok || s.state == CredentialState::Dead || s.state == CredentialState::Unchecked {
        jitter(interval)
    } else {
        jitter(backoff(s.failures.max(1), interval))
    }
}

/// The refresh test is due at `next`, or earlier when the access token is about to expire
/// and the credential keeps its token fresh.
fn effective_refresh_at(cred: &Credential, next: Instant) -> Instant {
    if !cred.config.keep_fresh || cred.status().state == CredentialState::Dead {
        return next;
    }
    let Some(exp) = cred.cached_token().and_then(|t| t.expires_at) else {
        return next;
    };
    let ahead = chrono::Duration::from_std(cred.config.refresh_ahead).unwrap_or_default();
    let until = (exp - ahead - Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    next.min(Instant::now() + until)
}

/// Runs the daemon-wide chores until shutdown: alert reminders and device last-use times
/// (the vault has its own cadence, `vault_watch::run`).
pub async fn maintenance(daemon: Arc<Daemon>, period: Duration) {
    let mut shutdown = std::pin::pin!(daemon.shutdown_signal());
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        daemon.send_reminders();
        if let Err(e) = daemon.auth.flush_last_used() {
            tracing::warn!("cannot record device last-use times: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let cap = Duration::from_secs(3600);
        assert_eq!(backoff(1, cap), Duration::from_secs(5));
        assert_eq!(backoff(2, cap), Duration::from_secs(10));
        assert_eq!(backoff(4, cap), Duration::from_secs(40));
        assert_eq!(backoff(30, cap), BACKOFF_MAX);
        assert_eq!(
            backoff(30, Duration::from_secs(60)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(100));
            assert!(j >= Duration::from_secs(90) && j <= Duration::from_secs(110));
        }
    }
}
