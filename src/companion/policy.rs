//! The notification policy: a pure state machine per agent, fed with (time, observation),
//! that decides which transitions to report and which notifications to raise.
//!
//! Rules:
//! - notify on a transition to `dead` or `expiring`, and on recovery from either
//!   (only if the owner was told about the bad state);
//! - remind every `reminder` while a credential stays dead; never once per poll;
//! - "agent unreachable" after `unreachable_after` of failed contact, and its recovery;
//!   a refused device token or a protocol mismatch is announced at once, once;
//! - in quiet hours only `dead` (and its reminders) is shown; other notices wait until
//!   the quiet hours end and are dropped if they no longer apply by then;
//! - vault trouble (a location fails: the agent is `degraded`) is told once per change of
//!   the failing locations, its recovery once, and each new repair once; like `dead`, it
//!   ignores quiet hours (a credential may be one disk away from being lost).
//!
//! - the owner's pause ([`Pause`], "Pause notifications for 1 hour" in the tray) silences
//!   every notification until it ends; the tray still shows every state.
//!
//! Time comes in twice: a monotonic [`Instant`] for every interval (so wall-clock jumps
//! change nothing), and local wall time for quiet hours and texts. Nothing here sleeps or
//! does I/O, so tests drive it with `tokio::time::pause`.

use super::config::QuietHours;
use super::notice::{Notice, NoticeKind};
use crate::client::ContactClass;
use crate::protocol::{CredentialHealth, CredentialState, HealthReport, VaultHealth};
use chrono::{DateTime, Local, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The moment an observation is made.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Monotonic time, for intervals.
    pub at: Instant,
    /// Local wall time, for quiet hours and texts.
    pub wall: DateTime<Local>,
}

impl Now {
    /// The current moment.
    pub fn current() -> Now {
        Now {
            at: Instant::now(),
            wall: Local::now(),
        }
    }
}

/// How long "Pause notifications" lasts.
pub const PAUSE_FOR: chrono::Duration = chrono::Duration::hours(1);

/// The owner's notification pause, shared by whoever sets it (the tray menu) and the
/// notifier that obeys it ([`super::notifier::Pausable`]). Clones share one pause.
#[derive(Debug, Clone, Default)]
pub struct Pause(Arc<Mutex<Option<DateTime<Utc>>>>);

impl Pause {
    fn get(&self) -> Option<DateTime<Utc>> {
        // A plain value behind the lock: a panic elsewhere cannot leave it half-written.
        *self.0.lock()
    }

    fn set(&self, until: Option<DateTime<Utc>>) {
        *self.0.lock() = until;
    }

    /// Silences notifications for [`PAUSE_FOR`] from `now`.
    pub fn start(&self, now: DateTime<Utc>) {
        self.set(Some(now + PAUSE_FOR));
    }

    /// Ends the pause early.
    pub fn resume(&self) {
        self.set(None);
    }

    /// When the pause ends, while one is in force at `now` (an ended pause is no pause).
    pub fn until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.get().filter(|t| *t > now)
    }

    /// True when a notification at `now` is to be dropped.
    pub fn silences(&self, now: DateTime<Utc>) -> bool {
        self.until(now).is_some()
    }
}

/// Timing rules of the policy.
#[derive(Debug, Clone, Copy)]
pub struct PolicyConfig {
    /// Reminder interval while dead.
    pub reminder: Duration,
    /// Failed contact this long before "unreachable" is announced.
    pub unreachable_after: Duration,
    /// Quiet hours, if any.
    pub quiet_hours: Option<QuietHours>,
}

/// A failed contact attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactFailure {
    /// Unreachable, unauthorized or protocol mismatch.
    pub class: ContactClass,
    /// The error, for texts.
    pub message: String,
}

/// What the watcher saw.
#[derive(Debug, Clone)]
// Observations are fed one at a time and dropped at once; boxing the credential (which
// carries a challenge) would only add an allocation per event.
#[allow(clippy::large_enum_variant)]
pub enum Observation {
    /// A full health report (poll).
    Health(HealthReport),
    /// One credential changed (event stream).
    Changed(CredentialHealth),
    /// The vault's health changed (event stream).
    Vault(VaultHealth),
    /// The agent is there, nothing new (event-stream heartbeat).
    Alive,
    /// Contact failed.
    Failed(ContactFailure),
}

/// Contact with an agent, as the tray shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ContactState {
    /// Answering.
    Connected,
    /// Failing, but not yet for `unreachable_after`.
    Failing {
        /// Since when.
        since: DateTime<Local>,
        /// The last error.
        message: String,
    },
    /// Failing for longer than `unreachable_after`.
    Unreachable {
        /// Since when.
        since: DateTime<Local>,
        /// The last error.
        message: String,
    },
    /// The device token was refused.
    Unauthorized {
        /// What to do.
        message: String,
    },
    /// Protocol versions differ.
    ProtocolMismatch {
        /// Which side to upgrade.
        message: String,
    },
}

/// What the policy decided; the watcher forwards these as watch events.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A credential was seen for the first time or changed state.
    Transition {
        /// The credential now.
        credential: CredentialHealth,
        /// Its state before (`None` when first seen).
        previous: Option<CredentialState>,
    },
    /// A credential's details changed (blocked count, last check) in the same state.
    Updated {
        /// The credential now.
        credential: CredentialHealth,
    },
    /// A credential is no longer on the agent.
    Removed {
        /// Its name.
        credential: String,
    },
    /// Contact state changed.
    Contact(ContactState),
    /// The vault's health changed (state, failing locations or repairs).
    Vault(VaultHealth),
    /// Show this notification.
    Notify(Notice),
}

#[derive(Debug)]
struct Track {
    health: CredentialHealth,
    /// The bad state the owner has been told about (`Dead` or `Expiring`).
    alerted: Option<CredentialState>,
    next_reminder: Option<Instant>,
    /// A notice held back by quiet hours.
    deferred: Option<NoticeKind>,
    /// The agent's challenge the owner has been told about (its `since`): a challenge
    /// posted while the credential was already dead is news; a re-post is not.
    challenge_told: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct Contact {
    state: Option<ContactState>,
    failing_since: Option<(Instant, DateTime<Local>)>,
    /// Start of the last contact problem; kept after recovery for the "reachable again" text.
    problem_since: Option<DateTime<Local>>,
    last_message: String,
    /// The contact problem the owner has been told about.
    announced: Option<NoticeKind>,
    deferred: Option<NoticeKind>,
}

#[derive(Debug, Default)]
struct VaultTrack {
    health: Option<VaultHealth>,
    /// The failing locations the owner has been told about (empty: none).
    announced: Vec<String>,
}

/// The policy for one agent.
#[derive(Debug)]
pub struct AgentPolicy {
    agent: String,
    cfg: PolicyConfig,
    creds: BTreeMap<String, Track>,
    contact: Contact,
    vault: VaultTrack,
}

impl AgentPolicy {
    /// A policy for agent `agent`.
    pub fn new(agent: impl Into<String>, cfg: PolicyConfig) -> AgentPolicy {
        AgentPolicy {
            agent: agent.into(),
            cfg,
            creds: BTreeMap::new(),
            contact: Contact::default(),
            vault: VaultTrack::default(),
        }
    }

    /// The vault's last known health (`None` before it was seen, or from an older daemon).
    pub fn vault(&self) -> Option<&VaultHealth> {
        self.vault.health.as_ref()
    }

    /// The agent's name.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The last known health of every credential.
    pub fn credentials(&self) -> impl Iterator<Item = &CredentialHealth> {
        self.creds.values().map(|t| &t.health)
    }

    /// The current contact state (`None` before the first observation).
    pub fn contact(&self) -> Option<&ContactState> {
        self.contact.state.as_ref()
    }

    /// The earliest moment [`tick`](Self::tick) has something to do (reminder or
    /// unreachable threshold); quiet-hour ends are not included (tick periodically).
    pub fn next_deadline(&self) -> Option<Instant> {
        let reminders = self
            .creds
            .values()
            .filter(|t| t.health.state == CredentialState::Dead)
            .filter_map(|t| t.next_reminder);
        let unreachable = match (&self.contact.failing_since, self.contact.announced) {
            (Some((at, _)), None) => Some(*at + self.cfg.unreachable_after),
            _ => None,
        };
        reminders.chain(unreachable).min()
    }

    fn quiet(&self, now: &Now) -> bool {
        self.cfg
            .quiet_hours
            .is_some_and(|q| q.contains(now.wall.time()))
    }

    /// Feeds one observation.
    pub fn observe(&mut self, now: Now, obs: Observation) -> Vec<Decision> {
        let mut out = Vec::new();
        match obs {
            Observation::Health(report) => {
                self.contact_ok(now, &mut out);
                let seen: std::collections::HashSet<String> =
                    report.credentials.iter().map(|c| c.name.clone()).collect();
                for c in report.credentials {
                    self.credential(now, c, &mut out);
                }
                let gone: Vec<String> = self
                    .creds
                    .keys()
                    .filter(|k| !seen.contains(*k))
                    .cloned()
                    .collect();
                for name in gone {
                    self.creds.remove(&name);
                    out.push(Decision::Removed { credential: name });
                }
                if let Some(v) = report.vault {
                    self.vault_seen(now, v, &mut out);
                }
            }
            Observation::Vault(v) => {
                self.contact_ok(now, &mut out);
                self.vault_seen(now, v, &mut out);
            }
            Observation::Changed(c) => {
                self.contact_ok(now, &mut out);
                self.credential(now, c, &mut out);
            }
            Observation::Alive => self.contact_ok(now, &mut out),
            Observation::Failed(f) => self.contact_failed(now, f, &mut out),
        }
        out.extend(self.tick(now));
        out
    }

    /// Time passes: reminders, the unreachable threshold, notices held by quiet hours.
    pub fn tick(&mut self, now: Now) -> Vec<Decision> {
        let mut out = Vec::new();
        let quiet = self.quiet(&now);
        let reminder = self.cfg.reminder;
        for t in self.creds.values_mut() {
            if t.health.state == CredentialState::Dead {
                if let Some(due) = t.next_reminder {
                    if now.at >= due {
                        // Dead ignores quiet hours; schedule from now so a long sleep of the
                        // laptop yields one reminder, not a burst.
                        t.next_reminder = Some(now.at + reminder);
                        out.push(Decision::Notify(Notice::credential(
                            NoticeKind::StillDead,
                            &self.agent,
                            &t.health,
                            now.wall,
                        )));
                    }
                }
            }
            if !quiet {
                if let Some(kind) = t.deferred.take() {
                    let still = match kind {
                        NoticeKind::Expiring => t.health.state == CredentialState::Expiring,
                        NoticeKind::Recovered => t.health.state == CredentialState::Ok,
                        _ => true,
                    };
                    if still {
                        out.push(Decision::Notify(Notice::credential(
                            kind,
                            &self.agent,
                            &t.health,
                            now.wall,
                        )));
                    }
                }
            }
        }
        // Unreachable threshold.
        if let Some((at, since)) = self.contact.failing_since {
            if self.contact.announced.is_none() && now.at >= at + self.cfg.unreachable_after {
                self.contact.announced = Some(NoticeKind::Unreachable);
                let state = ContactState::Unreachable {
                    since,
                    message: self.contact.last_message.clone(),
                };
                self.set_contact(state, &mut out);
                self.deliver_contact(now, NoticeKind::Unreachable, &mut out);
            }
        }
        if !quiet {
            if let Some(kind) = self.contact.deferred.take() {
                let still = match kind {
                    NoticeKind::Reachable => {
                        matches!(self.contact.state, Some(ContactState::Connected))
                    }
                    _ => self.contact.announced == Some(kind),
                };
                if still {
                    out.push(Decision::Notify(self.contact_notice(kind, now)));
                }
            }
        }
        out
    }

    fn credential(&mut self, now: Now, c: CredentialHealth, out: &mut Vec<Decision>) {
        let quiet = self.quiet(&now);
        let agent = self.agent.clone();
        let previous = self.creds.get(&c.name).map(|t| t.health.state);
        let t = self.creds.entry(c.name.clone()).or_insert_with(|| Track {
            health: c.clone(),
            alerted: None,
            next_reminder: None,
            deferred: None,
            challenge_told: None,
        });
        let changed = previous != Some(c.state);
        let details_changed = t.health != c;
        t.health = c;
        if changed {
            out.push(Decision::Transition {
                credential: t.health.clone(),
                previous,
            });
        } else if details_changed {
            out.push(Decision::Updated {
                credential: t.health.clone(),
            });
        }
        let notify = |kind: NoticeKind, t: &mut Track, out: &mut Vec<Decision>| {
            if quiet && kind != NoticeKind::Dead {
                t.deferred = Some(kind);
            } else {
                t.deferred = None;
                out.push(Decision::Notify(Notice::credential(
                    kind, &agent, &t.health, now.wall,
                )));
            }
        };
        match t.health.state {
            CredentialState::Dead => {
                let challenge = t.health.challenge.as_ref().map(|c| c.since);
                let new_challenge = challenge.is_some() && challenge != t.challenge_told;
                if t.alerted != Some(CredentialState::Dead) || new_challenge {
                    t.alerted = Some(CredentialState::Dead);
                    t.challenge_told = challenge;
                    t.next_reminder = Some(now.at + self.cfg.reminder);
                    notify(NoticeKind::Dead, t, out);
                }
            }
            CredentialState::Expiring => match t.alerted {
                None => {
                    t.alerted = Some(CredentialState::Expiring);
                    notify(NoticeKind::Expiring, t, out);
                }
                // Re-authorized into a token with a known end: the news is the recovery.
                Some(CredentialState::Dead) => {
                    t.alerted = Some(CredentialState::Expiring);
                    t.next_reminder = None;
                    notify(NoticeKind::Recovered, t, out);
                }
                Some(_) => {}
            },
            CredentialState::Ok => {
                if t.alerted.take().is_some() {
                    t.next_reminder = None;
                    if t.deferred == Some(NoticeKind::Expiring) {
                        // The owner never saw the warning: nothing to report.
                        t.deferred = None;
                    } else {
                        notify(NoticeKind::Recovered, t, out);
                    }
                }
            }
            // Transient or unknown: keep what the owner was told; the daemon retries.
            CredentialState::Degraded | CredentialState::Unchecked | CredentialState::Unknown => {}
        }
    }

    fn vault_seen(&mut self, now: Now, v: VaultHealth, out: &mut Vec<Decision>) {
        let previous = self.vault.health.replace(v.clone());
        if previous.as_ref() == Some(&v) {
            return;
        }
        out.push(Decision::Vault(v.clone()));
        let credentials = self.creds.len();
        let failing: Vec<String> = v.failing.iter().map(|l| l.name.clone()).collect();
        if failing.is_empty() {
            if !self.vault.announced.is_empty() {
                self.vault.announced.clear();
                out.push(Decision::Notify(Notice::vault(
                    NoticeKind::VaultRecovered,
                    &self.agent,
                    &v,
                    credentials,
                    now.wall,
                )));
            }
        } else if failing != self.vault.announced {
            self.vault.announced = failing;
            out.push(Decision::Notify(Notice::vault(
                NoticeKind::VaultTrouble,
                &self.agent,
                &v,
                credentials,
                now.wall,
            )));
        }
        // A repair made while we watch is news; repairs from before we first looked are
        // in the health report for whoever asks.
        if let Some(prev) = previous {
            if v.repairs > prev.repairs {
                out.push(Decision::Notify(Notice::vault(
                    NoticeKind::VaultRepaired,
                    &self.agent,
                    &v,
                    credentials,
                    now.wall,
                )));
            }
        }
    }

    fn set_contact(&mut self, state: ContactState, out: &mut Vec<Decision>) {
        if self.contact.state.as_ref() != Some(&state) {
            self.contact.state = Some(state.clone());
            out.push(Decision::Contact(state));
        }
    }

    fn contact_ok(&mut self, now: Now, out: &mut Vec<Decision>) {
        self.contact.failing_since = None;
        self.set_contact(ContactState::Connected, out);
        if let Some(kind) = self.contact.announced.take() {
            if self.contact.deferred == Some(kind) {
                // Never shown: its recovery is not news either.
                self.contact.deferred = None;
            } else {
                self.deliver_contact(now, NoticeKind::Reachable, out);
            }
        }
    }

    fn contact_failed(&mut self, now: Now, f: ContactFailure, out: &mut Vec<Decision>) {
        self.contact.last_message = f.message.clone();
        if self.contact.failing_since.is_none() {
            self.contact.problem_since = Some(now.wall);
        }
        match f.class {
            ContactClass::Unreachable | ContactClass::Ready => {
                let since = *self.contact.failing_since.get_or_insert((now.at, now.wall));
                if self.contact.announced.is_none() {
                    self.set_contact(
                        ContactState::Failing {
                            since: since.1,
                            message: f.message,
                        },
                        out,
                    );
                }
                // The threshold itself is checked in `tick`.
            }
            ContactClass::Unauthorized => {
                self.contact.failing_since.get_or_insert((now.at, now.wall));
                self.set_contact(ContactState::Unauthorized { message: f.message }, out);
                if self.contact.announced != Some(NoticeKind::DeviceRevoked) {
                    self.contact.announced = Some(NoticeKind::DeviceRevoked);
                    self.deliver_contact(now, NoticeKind::DeviceRevoked, out);
                }
            }
            ContactClass::ProtocolMismatch => {
                self.contact.failing_since.get_or_insert((now.at, now.wall));
                self.set_contact(ContactState::ProtocolMismatch { message: f.message }, out);
                if self.contact.announced != Some(NoticeKind::ProtocolMismatch) {
                    self.contact.announced = Some(NoticeKind::ProtocolMismatch);
                    self.deliver_contact(now, NoticeKind::ProtocolMismatch, out);
                }
            }
        }
    }

    fn contact_notice(&self, kind: NoticeKind, now: Now) -> Notice {
        let since = self.contact.problem_since.unwrap_or(now.wall);
        Notice::contact(
            kind,
            &self.agent,
            since,
            &self.contact.last_message,
            now.wall,
        )
    }

    fn deliver_contact(&mut self, now: Now, kind: NoticeKind, out: &mut Vec<Decision>) {
        if self.quiet(&now) {
            self.contact.deferred = Some(kind);
        } else {
            self.contact.deferred = None;
            out.push(Decision::Notify(self.contact_notice(kind, now)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_pause_silences_for_an_hour_and_then_is_no_pause() {
        let now = Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0).unwrap();
        let pause = Pause::default();
        assert!(!pause.silences(now));
        pause.clone().start(now);
        assert_eq!(pause.until(now), Some(now + chrono::Duration::hours(1)));
        assert!(pause.silences(now + chrono::Duration::minutes(59)));
        assert!(!pause.silences(now + chrono::Duration::hours(1)));
        assert_eq!(pause.until(now + chrono::Duration::minutes(61)), None);
        pause.start(now);
        pause.resume();
        assert!(!pause.silences(now));
    }
}
