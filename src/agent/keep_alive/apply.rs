//! Recording what a check found: the state change ([`crate::agent::credential::transition`]), its event, its
//! counter and its alert; and the reminders for credentials that stay dead.

use crate::agent::alerts::damper::{self, Verdict};
use crate::agent::alerts::{Alert, AlertKind};
use crate::agent::credential::runtime::Credential;
use crate::agent::credential::scopes;
use crate::agent::credential::status_change::Applied;
use crate::agent::credential::transition;
use crate::agent::daemon::Daemon;
use crate::agent::error::CheckError;
use crate::agent::metrics;
use crate::protocol::{CredentialHealth, CredentialState, Event};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Who sends the alert a state change calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alerting {
    /// [`Daemon::apply_result`] sends what the transition calls for.
    ByTransition,
    /// The caller decides (a challenge post: whether it is news is not a question of the
    /// state alone).
    ByCaller,
}

impl Daemon {
    /// Records the result of a check or refresh and emits events and alerts.
    pub(crate) fn apply_result(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
        result: Result<Option<chrono::DateTime<Utc>>, &CheckError>,
    ) {
        self.apply_result_as(cred, result, Alerting::ByTransition)
    }

    /// [`apply_result`](Self::apply_result), with the alert sent as `alerting` says.
    pub(crate) fn apply_result_as(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
        result: Result<Option<chrono::DateTime<Utc>>, &CheckError>,
        alerting: Alerting,
    ) {
        let (previous, blocked_before, was_scope_gap) =
            match cred.apply(result, alerting == Alerting::ByTransition) {
                Applied::Unchanged => return,
                Applied::GrantDiedToo => {
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
                Applied::Changed {
                    previous,
                    blocked_before,
                    was_scope_gap,
                } => (previous, blocked_before, was_scope_gap),
            };
        let mut health = cred.health();
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
                .is_none_or(|e| e.code != crate::agent::credential::human_state::HUMAN_NEEDED)
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

    /// Sends `alert` in the background (channels retry on their own schedule, and a slow
    /// SMTP server must not hold up a check); failures are logged per channel.
    pub(in crate::agent) fn send_alert(self: &Arc<Self>, alert: Alert) {
        let Some(alerter) = self.alerter() else {
            return;
        };
        tokio::spawn(async move {
            let report = alerter.send(&alert).await;
            for o in &report.outcomes {
                if let Err(e) = &o.result {
                    tracing::warn!("alert to channel {} failed: {}", o.channel, e.chain());
                }
            }
        });
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
            if cred.reminder_due(interval) {
                self.alert(&cred.health(), AlertKind::Reminder);
            }
        }
    }
}

impl Daemon {
    /// Records a working exchange or refresh whose answer granted `granted`: `ok` (or
    /// `expiring`) when it covers the configured scopes, `degraded` naming the missing ones
    /// otherwise. The agent's own stream hears of a gap (`scopes_missing`) when a new grant
    /// (`new_grant`: a re-authorization) has one, or when a refresh finds a new one: an
    /// agent waiting for `recovered` must not wait on for a grant that cannot do its work.
    pub(crate) fn record_granted(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
        end: Option<DateTime<Utc>>,
        granted: &[String],
        new_grant: bool,
    ) {
        let configured = cred.config.scopes.clone().unwrap_or_default();
        let gap = scopes::missing(&configured, granted);
        if !gap.is_empty() {
            tracing::warn!(
                "credential {}: the grant lacks {}",
                cred.name,
                gap.join(", ")
            );
        }
        // An answer without a `scope` list says nothing: keep what the last one said.
        let news = if granted.is_empty() {
            None
        } else {
            let mut old = cred.scope_gap.lock();
            let news = (!gap.is_empty() && (new_grant || *old != gap)).then(|| gap.clone());
            *old = gap;
            news
        };
        self.apply_result(cred, Ok(end));
        if let Some(missing) = news {
            let _ = self.events.send(Event::ScopesMissing {
                agent: self.config.name.clone(),
                credential: cred.name.clone(),
                description: scopes::missing_error(&missing).description,
                missing,
                at: Utc::now(),
            });
        }
    }
}
