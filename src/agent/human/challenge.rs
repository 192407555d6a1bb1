//! Challenges: what the agent says a human must do for it (scan a QR code, type a device
//! code, open a URL, read a message), the work it reports waiting, and the
//! `POST .../report` of `session` credentials.
//!
//! A posted challenge makes the credential `dead` with `human_needed` through the same
//! [`Daemon::apply_result`] path as a dead token, so the event and the metrics are the ones every
//! death gets; whether it alerts the owner is decided by [`challenge_news`] (a new code is
//! news, a QR code that turned over is a details event on the companion's stream).
//!
//! Who may ask: the agent only for `session` credentials and OAuth ones configured with
//! `agent_challenges = true`, never over the daemon's own challenge (its device-code
//! sign-in), and every challenge carries its origin so each surface can say who asks. While a challenge is open, a check that works
//! does not clear it: only the agent can say its session works (`resolved`, or a report
//! with `ok: true`).

use crate::agent::credential::human_state::{dead_error, human_needed, HumanState, SESSION_DOWN};
use crate::agent::credential::runtime::Credential;
use crate::agent::credential::runtime::CHECK_NOW_MIN_INTERVAL;
use crate::agent::daemon::Daemon;
use crate::agent::error::OpError;
use crate::agent::human::challenge_news::{self, News};
use crate::agent::keep_alive::apply::Alerting;
use crate::agent::metrics;
use crate::protocol::{
    Challenge, ChallengeOrigin, CredentialHealth, ErrorInfo, Event, PendingWork, PostedChallenge,
    SessionReport,
};
use chrono::Utc;
use std::sync::Arc;

/// The shortest time between two challenge posts by the agent for one credential.
pub const POST_MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Refuses to let the agent `verb` (replace, resolve) the daemon's own open challenge: the
/// owner is following Tether's sign-in, and only its outcome may end it.
fn refuse_daemon_challenge(h: &HumanState, name: &str, verb: &str) -> Result<(), OpError> {
    match &h.challenge {
        Some(p) if p.origin == ChallengeOrigin::Daemon => Err(OpError::ChallengeRefused {
            name: name.to_string(),
            why: format!(
                "the open challenge is Tether's own sign-in ({}); the agent cannot {verb} it. It ends when the owner finishes or the daemon starts a new one",
                p.challenge.kind()
            ),
        }),
        _ => Ok(()),
    }
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
    /// the agent resolves it. Allowed only where the config lets the agent ask the owner
    /// (`kind = "session"`, or `agent_challenges = true`), never over the daemon's own
    /// challenge, and at most one post a [`POST_MIN_INTERVAL`]. Links are normalized once
    /// here (and refused when they could show one host and open another).
    pub async fn post_challenge(
        self: &Arc<Self>,
        name: &str,
        challenge: Challenge,
    ) -> Result<CredentialHealth, OpError> {
        let cred = self.credential(name)?.clone();
        if !cred.config.is_session() && !cred.config.agent_challenges {
            self.refused(name, "not_allowed");
            return Err(OpError::ChallengeRefused {
                name: name.to_string(),
                why: "the agent may not post challenges for this credential (it is an OAuth credential Tether signs in itself); set `agent_challenges = true` in its [[credentials]] entry if the agent really must ask the owner for something".into(),
            });
        }
        let challenge = challenge.normalized()?;
        {
            let mut h = cred.human.lock();
            refuse_daemon_challenge(&h, name, "replace")
                .inspect_err(|_| self.refused(name, "daemon_challenge"))?;
            let now = tokio::time::Instant::now();
            if let Some(last) = h.last_post {
                let next = last + POST_MIN_INTERVAL;
                if next > now {
                    self.refused(name, "rate");
                    return Err(OpError::RateLimited {
                        name: name.to_string(),
                        what: "challenges are posted at most once a second",
                        retry_after_secs: 1,
                    });
                }
            }
            h.last_post = Some(now);
        }
        self.post_challenge_from(name, challenge, ChallengeOrigin::Agent, false)
            .await
    }

    /// Counts a refused challenge request.
    fn refused(&self, name: &str, reason: &str) {
        self.metrics.inc(
            metrics::CHALLENGES_REFUSED,
            &[("credential", name), ("reason", reason)],
        );
    }

    /// Posts `challenge` for `name` as `origin` says. Whether it is news to the owner
    /// (every alert channel) or only an update of what the companion shows is decided by
    /// [`challenge_news::news`]; `already_told` says the owner was sent this very
    /// challenge before (a device-code flow resumed after a restart).
    pub(crate) async fn post_challenge_from(
        self: &Arc<Self>,
        name: &str,
        challenge: Challenge,
        origin: ChallengeOrigin,
        already_told: bool,
    ) -> Result<CredentialHealth, OpError> {
        let cred = self.credential(name)?.clone();
        let challenge = challenge.normalized()?;
        let now = Utc::now();
        let news = {
            let mut h = cred.human.lock();
            let news = challenge_news::news(h.challenge.as_ref(), &challenge, origin, already_told);
            // A new request (another code, page or asker) starts afresh: the companion's
            // surfaces key what they drew and notified on (since, revision), so a
            // replaced device code must not look like the one it replaces.
            let (since, revision) = match &h.challenge {
                Some(p) if news != News::New => (p.since, p.revision + 1),
                _ => (now, 1),
            };
            if cred.config.is_session() {
                // A post is a sign of life too: the staleness clock restarts.
                h.last_report = Some(tokio::time::Instant::now());
            }
            if news != News::Unchanged {
                h.challenge = Some(PostedChallenge {
                    challenge: challenge.clone(),
                    since,
                    posted_at: now,
                    revision,
                    origin,
                });
            }
            news
        };
        if news == News::Unchanged {
            return Ok(cred.health());
        }
        self.metrics.inc(
            metrics::CHALLENGES,
            &[
                ("credential", name),
                ("kind", challenge.kind()),
                ("origin", origin.as_str()),
            ],
        );
        if news == News::New {
            // The words and the host only: a user code is for the owner's eyes (debug).
            tracing::info!(
                "credential {name}: {} needs the owner ({} challenge{})",
                origin.words(name),
                challenge.kind(),
                challenge
                    .link_host()
                    .map(|h| format!(" on {h}"))
                    .unwrap_or_default()
            );
            tracing::debug!("credential {name}: {}", challenge.need_words());
        }
        let before = cred.status().state;
        let provider = cred.provider().name.clone();
        // The alert is decided here, by the news rule, not by the state change alone: a
        // new code while already dead is news, a resumed one after a restart is not.
        self.apply_result_as(
            &cred,
            Err(&dead_error(&provider, human_needed(&challenge))),
            Alerting::ByCaller,
        );
        cred.wake.notify_one();
        let after = cred.status().state;
        if after == before {
            // No transition, so `record` sent no event: the new details still have to
            // reach the companion.
            self.announce_details(&cred);
        }
        if news == News::New {
            cred.mark_alerted(now);
            self.alert(&cred.health(), crate::agent::alerts::AlertKind::Dead);
        }
        Ok(cred.health())
    }

    /// The agent's `DELETE .../challenge` or `POST .../resolved`: its session works again.
    /// A session credential is `ok` at once; a token credential gets a refresh test (at
    /// most one per [`CHECK_NOW_MIN_INTERVAL`]: a loop of posts and resolves must not
    /// spend a rotating refresh token each time), so the state shown is the token's real
    /// one. The daemon's own challenge is not the agent's to resolve.
    pub async fn resolve_challenge(
        self: &Arc<Self>,
        name: &str,
    ) -> Result<CredentialHealth, OpError> {
        let cred = self.credential(name)?.clone();
        let had = {
            let mut h = cred.human.lock();
            refuse_daemon_challenge(&h, name, "resolve")
                .inspect_err(|_| self.refused(name, "daemon_challenge"))?;
            h.challenge.take()
        };
        if had.is_none() {
            return Ok(cred.health());
        }
        tracing::info!("credential {name}: the agent says its challenge is resolved");
        self.session_worked(&cred).await;
        Ok(cred.health())
    }

    /// After the agent said its session works: `ok` for a session credential (and its
    /// staleness clock restarts), a confirming check for a token credential (or, within
    /// [`CHECK_NOW_MIN_INTERVAL`] of the last forced one, that check's result again).
    async fn session_worked(self: &Arc<Self>, cred: &Arc<Credential>) {
        let before = cred.status().state;
        if cred.config.is_session() {
            cred.human.lock().last_report = Some(tokio::time::Instant::now());
            self.apply_result(cred, Ok(None));
        } else if cred.check_now_due(CHECK_NOW_MIN_INTERVAL) {
            let _ = self.refresh_test(cred).await;
        } else {
            let last = cred.last_flight.lock().clone();
            match last {
                Some(Ok(_)) => self.apply_result(cred, Ok(None)),
                Some(Err(e)) => self.apply_result(cred, Err(&e)),
                None => {
                    let _ = self.refresh_test(cred).await;
                }
            }
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
    pub async fn agent_report(
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
                    refuse_daemon_challenge(&h, name, "resolve")?;
                    h.challenge.take().is_some()
                } else {
                    false
                }
            };
            if report.ok {
                if had_challenge {
                    tracing::info!("credential {name}: the agent reports its session works again");
                }
                self.apply_result(&cred, Ok(None));
            } else if cred.challenge_error().is_none() {
                let detail = report
                    .detail
                    .as_deref()
                    .map(|d| crate::provider::clean_text(d, 300))
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| "the agent reports its session does not work".into());
                let provider = cred.provider().name.clone();
                self.apply_result(
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
