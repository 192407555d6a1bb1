//! Challenges: what the agent says a human must do for it (scan a QR code, type a device
//! code, open a URL, read a message), the work it reports waiting, and the
//! `POST .../report` of `session` credentials.
//!
//! A posted challenge makes the credential `dead` with `human_needed` through the same
//! [`Daemon::record`] path as a dead token, so the event, the alert and the metrics are the
//! ones every death gets; a re-post (a QR code that changed) is a details event on the
//! companion's stream, never another alert. While a challenge is open, a check that works
//! does not clear it: only the agent can say its session works (`resolved`, or a report
//! with `ok: true`).

use super::credential::{CheckError, Credential};
use super::daemon::Daemon;
use super::error::OpError;
use crate::oauth::{ErrorClass, OAuthError};
use crate::protocol::{
    Challenge, CredentialHealth, CredentialState, ErrorInfo, Event, PendingWork, PostedChallenge,
    SessionReport,
};
use chrono::Utc;
use std::sync::Arc;

/// Error code of a credential that waits for the owner to answer a challenge.
pub const HUMAN_NEEDED: &str = "human_needed";
/// Error code of a session the agent reports broken (without a challenge yet).
pub const SESSION_DOWN: &str = "session_down";

/// The agent's side of a credential: its open challenge, pending work, last report.
#[derive(Debug, Clone, Default)]
pub struct HumanState {
    /// The open challenge.
    pub challenge: Option<PostedChallenge>,
    /// Work the agent reports waiting.
    pub pending: Option<PendingWork>,
    /// When the agent last reported on its session (`session` credentials).
    pub last_report: Option<tokio::time::Instant>,
    /// The open challenge was posted by the daemon itself (a device-code sign-in), not by
    /// the agent: a new grant answers it, so storing one clears it.
    pub by_daemon: bool,
}

impl Credential {
    /// A copy of the agent's side of the credential.
    pub fn human(&self) -> HumanState {
        // Invariant: the lock only guards plain data and is never held across an await.
        self.human.lock().clone()
    }

    /// The error a credential shows while its challenge is open.
    pub(crate) fn challenge_error(&self) -> Option<ErrorInfo> {
        let h = self.human.lock();
        h.challenge.as_ref().map(|c| human_needed(&c.challenge))
    }

    /// Replaces the pending work when `update` says something about it; true if it changed.
    pub(crate) fn set_pending(&self, update: Option<Option<PendingWork>>) -> bool {
        let Some(next) = update else { return false };
        let mut h = self.human.lock();
        let changed = h.pending != next;
        h.pending = next;
        changed
    }
}

/// `human_needed: scan the QR code with your phone`.
pub fn human_needed(c: &Challenge) -> ErrorInfo {
    ErrorInfo {
        code: HUMAN_NEEDED.into(),
        description: format!("human needed: {}", c.need_words()),
    }
}

/// A check error that makes the credential `dead` with `info`.
pub(crate) fn dead_error(provider: &str, info: ErrorInfo) -> CheckError {
    CheckError::Provider(OAuthError {
        provider: provider.to_string(),
        class: ErrorClass::Dead,
        info,
    })
}

impl Daemon {
    /// Sends the credential's health as a details event (same state, new details: a new
    /// QR code, pending work), so the companion sees it within a second.
    pub(crate) fn announce_details(&self, cred: &Credential) {
        let credential = cred.health();
        let _ = self.events.send(Event::StateChanged {
            agent: self.config.name.clone(),
            previous: credential.state,
            credential,
        });
    }

    /// The agent's `POST .../challenge`: the credential is `dead` with "human needed" until
    /// the agent resolves it. The first post of an outage raises the alert channels; a
    /// re-post only updates what the companion shows.
    pub async fn post_challenge(
        self: &Arc<Self>,
        name: &str,
        challenge: Challenge,
    ) -> Result<CredentialHealth, OpError> {
        self.post_challenge_as(name, challenge, false).await
    }

    /// [`Daemon::post_challenge`], saying whether the daemon posts it itself (its own
    /// device-code sign-in) rather than the agent.
    pub(crate) async fn post_challenge_as(
        self: &Arc<Self>,
        name: &str,
        challenge: Challenge,
        by_daemon: bool,
    ) -> Result<CredentialHealth, OpError> {
        let cred = self.credential(name)?.clone();
        challenge.validate()?;
        let now = Utc::now();
        let first = {
            let mut h = cred.human.lock();
            let (since, revision) = match &h.challenge {
                Some(p) => (p.since, p.revision + 1),
                None => (now, 1),
            };
            if cred.config.is_session() {
                // A post is a sign of life too: the staleness clock restarts.
                h.last_report = Some(tokio::time::Instant::now());
            }
            h.by_daemon = by_daemon;
            h.challenge = Some(PostedChallenge {
                challenge: challenge.clone(),
                since,
                posted_at: now,
                revision,
            });
            revision == 1
        };
        self.metrics.inc(
            "tether_challenges_total",
            &[("credential", name), ("kind", challenge.kind())],
        );
        if first {
            tracing::info!(
                "credential {name}: the agent needs the owner: {}",
                challenge.need_words()
            );
        }
        let before = cred.status().state;
        let provider = cred.provider().name.clone();
        self.record(&cred, Err(&dead_error(&provider, human_needed(&challenge))));
        cred.wake.notify_one();
        if before == CredentialState::Dead {
            // No transition, so `record` sent nothing: the new code still has to reach the
            // companion, and a death for another reason has not told the owner this yet.
            self.announce_details(&cred);
            if first {
                cred.status.lock().last_alert = Some(now);
                self.alert(&cred.health(), super::alerts::AlertKind::Dead);
            }
        }
        Ok(cred.health())
    }

    /// The agent's `DELETE .../challenge` or `POST .../resolved`: its session works again.
    /// A session credential is `ok` at once; a token credential gets a refresh test, so
    /// the state shown is the token's real one.
    pub async fn resolve_challenge(
        self: &Arc<Self>,
        name: &str,
    ) -> Result<CredentialHealth, OpError> {
        let cred = self.credential(name)?.clone();
        let had = cred.human.lock().challenge.take();
        if had.is_none() {
            return Ok(cred.health());
        }
        tracing::info!("credential {name}: the agent says its challenge is resolved");
        self.session_worked(&cred).await;
        Ok(cred.health())
    }

    /// After the agent said its session works: `ok` for a session credential (and its
    /// staleness clock restarts), a confirming check for a token credential.
    async fn session_worked(self: &Arc<Self>, cred: &Arc<Credential>) {
        let before = cred.status().state;
        if cred.config.is_session() {
            cred.human.lock().last_report = Some(tokio::time::Instant::now());
            self.record(cred, Ok(None));
        } else {
            let _ = self.check(cred).await;
        }
        if cred.status().state == before {
            // Same state (it was dead for another reason too): the challenge is gone all
            // the same, and the companion must stop showing it.
            self.announce_details(cred);
        }
        cred.wake.notify_one();
    }

    /// The agent's `POST .../report`. For a session credential it is the health:
    /// `ok: true` ends an open challenge and makes it `ok`, `ok: false` makes it `dead`
    /// with the agent's detail. For a token credential only the pending work counts (the
    /// daemon knows the token's health itself).
    pub async fn report(
        self: &Arc<Self>,
        name: &str,
        report: SessionReport,
    ) -> Result<CredentialHealth, OpError> {
        let cred = self.credential(name)?.clone();
        let pending_changed = cred.set_pending(PendingWork::from_report(
            report.pending,
            report.oldest,
            report.what.as_deref(),
        ));
        let before = cred.status();
        if cred.config.is_session() {
            let had_challenge = {
                let mut h = cred.human.lock();
                h.last_report = Some(tokio::time::Instant::now());
                if report.ok {
                    h.challenge.take().is_some()
                } else {
                    false
                }
            };
            if report.ok {
                if had_challenge {
                    tracing::info!("credential {name}: the agent reports its session works again");
                }
                self.record(&cred, Ok(None));
            } else if cred.challenge_error().is_none() {
                let detail = report
                    .detail
                    .as_deref()
                    .map(|d| crate::provider::clean_text(d, 300))
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| "the agent reports its session does not work".into());
                let provider = cred.provider().name.clone();
                self.record(
                    &cred,
                    Err(&dead_error(
                        &provider,
                        ErrorInfo {
                            code: SESSION_DOWN.into(),
                            description: detail,
                        },
                    )),
                );
            }
            // Restart the staleness clock.
            cred.wake.notify_one();
        }
        let after = cred.status();
        if after.state == before.state && (pending_changed || after.last_error != before.last_error)
        {
            self.announce_details(&cred);
        }
        Ok(cred.health())
    }

    /// Pending work carried by a `rejected` report; the companion hears of a change.
    pub(crate) fn note_pending(&self, name: &str, update: Option<Option<PendingWork>>) {
        if let Ok(cred) = self.credential(name) {
            if cred.set_pending(update) {
                self.announce_details(&cred);
            }
        }
    }

    /// On the agent's stream: `name` works again. Carries the pending work it reported.
    pub(crate) fn emit_recovered(&self, cred: &Credential) {
        let pending = cred.human().pending;
        let _ = self.events.send(Event::Recovered {
            agent: self.config.name.clone(),
            credential: cred.name.clone(),
            pending,
            at: Utc::now(),
        });
    }
}
