//! Recording what a check found: the state change ([`crate::agent::credential::transition`]), its event, its
//! counter and its alert; and the reminders for credentials that stay dead.

use crate::agent::alerts::damper::{self, Verdict};
use crate::agent::alerts::{Alert, AlertKind};
use crate::agent::credential::runtime::Credential;
use crate::agent::credential::transition::{self, Outcome};
use crate::agent::daemon::Daemon;
use crate::agent::error::CheckError;
use crate::agent::metrics;
use crate::protocol::{CredentialHealth, CredentialState, Event};
use chrono::Utc;
use std::sync::Arc;

/// Who sends the alert a state change calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alerting {
    /// [`Daemon::record`] sends what the transition calls for.
    ByTransition,
    /// The caller decides (a challenge post: whether it is news is not a question of the
    /// state alone).
    ByCaller,
}

impl Daemon {
    /// Records the result of a check or refresh and emits events and alerts.
    pub(crate) fn record(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
        result: Result<Option<chrono::DateTime<Utc>>, &CheckError>,
    ) {
        self.record_with(cred, result, Alerting::ByTransition)
    }

    /// [`record`](Self::record), with the alert sent as `alerting` says.
    pub(crate) fn record_with(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
        result: Result<Option<chrono::DateTime<Utc>>, &CheckError>,
        alerting: Alerting,
    ) {
        let (previous, mut health, blocked_before, was_scope_gap) = {
            let mut s = cred.status.lock();
            let previous = s.state;
            let now = Utc::now();
            let was_human_needed = s
                .last_error
                .as_ref()
                .is_some_and(|i| i.code == crate::agent::human::challenge::HUMAN_NEEDED);
            let was_scope_gap = previous == CredentialState::Degraded
                && s.last_error
                    .as_ref()
                    .is_some_and(|i| i.code == crate::agent::credential::scopes::MISSING_SCOPE);
            // An open challenge: only the agent can say its session works again, and it
            // stays the news whatever else a check met on the way.
            let challenge = cred.challenge_error();
            let outcome = match result {
                Ok(end) => {
                    s.refresh_expires_at = end.or(s.refresh_expires_at);
                    s.last_error = None;
                    s.failures = 0;
                    Outcome::Worked(cred.working_state(s.refresh_expires_at))
                }
                Err(e) => {
                    s.last_error = Some(e.info());
                    // The refresh test confirming a probe's `gone` is this very error: the
                    // health and event that say `dead` say the probe was confirmed too.
                    if e.is_dead() {
                        if let Some(p) = s.last_probe.as_mut().filter(|p| {
                            p.result == crate::agent::keep_alive::probe::GONE_CONFIRMING
                        }) {
                            p.result = crate::agent::keep_alive::probe::GONE_CONFIRMED.into();
                        }
                    }
                    Outcome::of_error(e)
                }
            };
            let scope_gap = cred.scope_error();
            let outcome = match (challenge, scope_gap.clone(), outcome) {
                (Some(info), _, Outcome::Worked(_) | Outcome::Trouble | Outcome::NoToken) => {
                    s.last_error = Some(info);
                    Outcome::Dead
                }
                // The grant works but lacks a configured scope: alive and useless.
                (None, Some(info), Outcome::Worked(_)) => {
                    s.last_error = Some(info);
                    Outcome::Trouble
                }
                (_, _, o) => o,
            };
            // Dead only because of a challenge the agent has since resolved: the grant was
            // never in doubt, so trouble now is trouble, not "still dead".
            let rule_from = if previous == CredentialState::Dead
                && ((was_human_needed && cred.challenge_error().is_none())
                    || (scope_gap.is_some() && outcome == Outcome::Trouble))
            {
                CredentialState::Ok
            } else {
                previous
            };
            let step = transition::next(rule_from, outcome);
            if step.failed {
                s.failures = s.failures.saturating_add(1);
            }
            let next = step.state;
            s.last_check = Some(now);
            // Dead because the agent asked for the owner, and now the provider says the
            // grant itself is gone: the same state, but news the owner must get (the
            // grant needs a re-authorization whatever the agent's session does).
            let grant_died_too = next == previous
                && previous == CredentialState::Dead
                && was_human_needed
                && alerting == Alerting::ByTransition
                && matches!(result, Err(e) if e.is_dead());
            if grant_died_too {
                s.last_alert = Some(now);
                drop(s);
                let health = cred.health();
                tracing::info!(
                    "credential {}: the grant is gone too ({})",
                    cred.name,
                    health
                        .last_error
                        .as_ref()
                        .map(|e| e.code.as_str())
                        .unwrap_or("dead")
                );
                self.announce_details(cred);
                self.alert(&health, AlertKind::Dead);
                return;
            }
            if next == previous {
                return;
            }
            s.state = next;
            s.since = now;
            let blocked_before = s.blocked;
            if previous == CredentialState::Dead {
                s.blocked = 0;
            }
            if next == CredentialState::Dead {
                s.last_alert = Some(now);
            }
            drop(s);
            (previous, cred.health(), blocked_before, was_scope_gap)
        };
        let state = health.state;
        self.metrics.inc(
            metrics::STATE_CHANGES,
            &[("credential", &cred.name), ("state", state.as_str())],
        );
        tracing::info!(
            "credential {}: {} -> {}{}",
            cred.name,
            previous,
            state,
            health
                .last_error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
        let _ = self.events.send(Event::StateChanged {
            agent: self.config.name.clone(),
            previous,
            credential: health.clone(),
        });
        if state == CredentialState::Dead
            && health
                .last_error
                .as_ref()
                .is_none_or(|e| e.code != crate::agent::human::challenge::HUMAN_NEEDED)
        {
            // Found dead (not waiting on a challenge already): a credential that
            // re-authorizes by device code starts its sign-in now, with no laptop.
            self.auto_device_reauth(cred);
        }
        let kind =
            transition::alert_for(previous, state).filter(|_| alerting == Alerting::ByTransition);
        let works = matches!(state, CredentialState::Ok | CredentialState::Expiring);
        if kind == Some(AlertKind::Recovered) || (was_scope_gap && works) {
            // The agent's own stream: resume now, not at the next cron run (also when a
            // grant that lacked a scope the agent was told of is replaced by a full one).
            self.emit_recovered(cred);
        }
        if let Some(kind) = kind {
            if kind == AlertKind::Recovered {
                // The recovery text tells how many requests waited while it was dead.
                health.blocked_requests = blocked_before;
            }
            self.alert(&health, kind);
        }
    }

    /// Sends an alert in the background (channels retry on their own schedule, and a slow
    /// SMTP server must not hold up a check), through the flap damper: a credential that
    /// keeps dying and recovering sends one "flapping" alert, and how it ended once steady.
    pub(crate) fn alert(self: &Arc<Self>, health: &CredentialHealth, kind: AlertKind) {
        if self.alerter().is_none() {
            return;
        }
        let alert = Alert {
            agent: self.config.name.clone(),
            credential: health.name.clone(),
            provider: health.provider.clone(),
            kind,
            reauth: health.reauth,
            error: health.last_error.clone(),
            blocked_requests: health.blocked_requests,
            since: health.since,
            refresh_expires_at: health.refresh_expires_at,
            detail: None,
            challenge: health.challenge.as_ref().map(|c| c.challenge.clone()),
            challenge_origin: health.challenge.as_ref().map(|c| c.origin),
            pending: health.pending.clone(),
        };
        let cause = match kind {
            AlertKind::Dead => health
                .last_error
                .as_ref()
                .map(|e| e.code.clone())
                .unwrap_or_else(|| "dead".into()),
            _ => String::new(),
        };
        let verdict = self.damper.lock().judge(
            tokio::time::Instant::now(),
            &health.name,
            kind,
            &cause,
            &alert,
        );
        match verdict {
            Verdict::Send => self.send_alert(alert),
            Verdict::Hold => {
                tracing::debug!(credential = %health.name, kind = kind.as_str(), "alert held: the credential is flapping");
            }
            Verdict::Flapping { changes } => {
                tracing::warn!(
                    "credential {}: {changes} changes of state within {} s; further alerts are held until it is steady",
                    health.name,
                    damper::FLAP_WINDOW.as_secs()
                );
                self.metrics
                    .inc(metrics::ALERTS_FLAPPING, &[("credential", &health.name)]);
                let detail = format!(
                    "it died and recovered {changes} times within {} minutes (last cause: {})",
                    damper::FLAP_WINDOW.as_secs() / 60,
                    health
                        .last_error
                        .as_ref()
                        .map(|e| e.code.as_str())
                        .unwrap_or("none")
                );
                self.send_alert(Alert {
                    kind: AlertKind::Flapping,
                    detail: Some(detail),
                    ..alert
                });
            }
        }
    }

    /// Sends how each flapping credential ended once it has been steady a while.
    pub(crate) fn send_settled_alerts(self: &Arc<Self>) {
        let settled = self.damper.lock().settled(tokio::time::Instant::now());
        for s in settled {
            tracing::info!(
                "credential {}: steady again; sending its state ({})",
                s.credential,
                s.alert.kind.as_str()
            );
            self.send_alert(s.alert);
        }
    }

    /// Sends reminders for credentials that stayed dead for another reminder interval.
    pub(crate) fn send_reminders(self: &Arc<Self>) {
        let interval = chrono::Duration::from_std(self.reminder_interval)
            .unwrap_or(chrono::Duration::hours(6));
        for cred in self.credentials.snapshot().values() {
            let due = {
                let mut s = cred.status.lock();
                let due = s.state == CredentialState::Dead
                    && match s.last_alert {
                        None => true,
                        Some(t) => Utc::now() - t >= interval,
                    };
                if due {
                    s.last_alert = Some(Utc::now());
                }
                due
            };
            if due {
                self.alert(&cred.health(), AlertKind::Reminder);
            }
        }
    }
}
