//! The checker: one task per credential that sleeps until its [`Schedule`] says the next
//! action is due, runs it (a probe or a refresh test) and hands the outcome back.
//!
//! Every decision (which check, when, backoff, refresh ahead of expiry, a token for the
//! probe, confirming a `gone`) lives in the pure [`crate::agent::credential::schedule`]; this task only does
//! the I/O and follows what happens outside it (a broker refresh, a re-authorization, a
//! pasted secret, the agent's `rejected` report) through the credential's flight counter.
//! A wake that finds nothing due sleeps again to the same instant, so it cannot spin.

use crate::agent::credential::runtime::Credential;
use crate::agent::credential::schedule::{Action, Observation, RefreshReason, Schedule};
use crate::agent::credential::transition::Outcome;
use crate::agent::daemon::Daemon;
use crate::agent::error::CheckError;
use crate::agent::metrics;
use crate::oauth::ProbeOutcome;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What the schedule observes of a refresh (or verification) result. The error is sorted
/// once, by the state machine's [`Outcome::of_error`]; the schedule only needs fewer kinds.
fn refresh_observation(cred: &Credential, r: &Result<(), CheckError>) -> Observation {
    match r {
        Ok(()) => Observation::Refreshed(
            cred.token_life()
                .unwrap_or(crate::agent::credential::schedule::TokenLife::NON_EXPIRING),
        ),
        Err(e) => match Outcome::of_error(e) {
            Outcome::Dead => Observation::Dead,
            Outcome::NoToken => Observation::NoToken,
            Outcome::Trouble | Outcome::ShuttingDown | Outcome::Worked(_) => Observation::Transient,
        },
    }
}

/// Follows what happened to the credential outside the checker since `seen` finished
/// flights: a refresh by the broker, a re-authorization, a pasted secret.
fn follow_flights(cred: &Credential, sched: &mut Schedule, seen: &mut u64) {
    let now_flights = cred.flights.load(Ordering::SeqCst);
    if now_flights == *seen {
        // The cached token may still have changed (dropped by a `rejected` report).
        sched.token_changed(cred.token_life());
        return;
    }
    *seen = now_flights;
    let last = cred.last_flight.lock().clone();
    match last {
        Some(Ok(_)) => sched.follow(Instant::now(), refresh_observation(cred, &Ok(()))),
        Some(Err(e)) => sched.follow(Instant::now(), refresh_observation(cred, &Err(e))),
        None => {}
    }
}

/// Counts one wake of the checker (the figure that shows it never spins).
fn wakeup(daemon: &Daemon, cred: &Credential) {
    daemon
        .metrics
        .inc(metrics::CHECKER_WAKEUPS, &[("credential", &cred.name)]);
}

/// Runs the checker of `cred` until the daemon shuts down.
pub async fn run(daemon: Arc<Daemon>, cred: Arc<Credential>) {
    let mut shutdown = std::pin::pin!(daemon.shutdown_signal());
    daemon.resolve_at_start(&cred).await;
    let mut sched = Schedule::new(
        cred.schedule_config(),
        Instant::now(),
        cred.token_life(),
        rand::random(),
    );
    if cred.status().state == crate::protocol::CredentialState::Dead {
        // A rotation cut by a crash was found at start: no refresh test with the old token.
        sched.observe(Instant::now(), Observation::Dead);
    }
    let mut seen = cred.flights.load(Ordering::SeqCst);
    loop {
        follow_flights(&cred, &mut sched, &mut seen);
        // Invariant: nothing is in flight between actions, so there is always a next one.
        let next = sched.next().expect("no action in flight between checks");
        if next.at > Instant::now() {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep_until(next.at) => {}
                // A re-auth, a pasted secret, a manual check or a `rejected` report:
                // follow it at the top of the loop.
                _ = cred.wake.notified() => {
                    wakeup(&daemon, &cred);
                    continue;
                }
            }
        }
        wakeup(&daemon, &cred);
        if daemon.is_shutting_down() {
            return;
        }
        // A broker refresh (or any other) may have landed while this task slept: the
        // action due now is decided from the token as it is now, not as it was when the
        // sleep began (else a probe planned for an expired token turns into a second
        // refresh of a rotating token the broker has just replaced).
        follow_flights(&cred, &mut sched, &mut seen);
        let Some(action) = sched.due(Instant::now()) else {
            continue;
        };
        tracing::debug!(credential = %cred.name, ?action, "check");
        let outcome = match action {
            Action::Probe => match daemon.probe(&cred).await {
                None => Observation::ProbeNoToken,
                Some(ProbeOutcome::Alive) => Observation::ProbeAlive,
                Some(ProbeOutcome::Gone(_)) => Observation::ProbeGone,
                Some(ProbeOutcome::Transient(_)) => Observation::ProbeTransient,
                Some(ProbeOutcome::Misconfigured(_) | ProbeOutcome::Unsupported) => {
                    Observation::ProbeMisconfigured
                }
            },
            Action::Refresh(RefreshReason::ConfirmGone) => {
                let (r, replaced) = daemon.confirm_gone(&cred).await;
                if replaced {
                    sched.set_probe(Instant::now(), cred.probe_interval());
                }
                refresh_observation(&cred, &r)
            }
            Action::Refresh(_) => {
                let r = daemon.refresh_test(&cred).await;
                refresh_observation(&cred, &r)
            }
        };
        // Our own refresh is one of the credential's flights: not an outside event.
        seen = cred.flights.load(Ordering::SeqCst);
        sched.observe(Instant::now(), outcome);
        if outcome == Observation::ProbeMisconfigured {
            sched.set_probe(Instant::now(), cred.probe_interval());
        }
    }
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
        daemon.send_settled_alerts();
        if let Err(e) = daemon.auth.flush_last_used() {
            tracing::warn!("cannot record device last-use times: {e}");
        }
    }
}
