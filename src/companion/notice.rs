//! What a notification says: one [`Notice`] per owner-visible event, with its texts.
//!
//! Texts name the agent, the credential, what happened, since when, how many of the
//! agent's requests were refused, and what to do:
//! "studio · youtube: token has been expired or revoked — 3 requests refused since 09:02".

use super::local_time::when;
use crate::protocol::{CredentialHealth, CredentialState, ReauthKind, VaultHealth};
use chrono::{DateTime, Local, Utc};
use serde::Serialize;

/// Label of the notification action that starts a re-authorization.
pub const REAUTH_ACTION_LABEL: &str = "Re-authorize";
/// Key of that action on the wire (D-Bus action id).
pub const REAUTH_ACTION_KEY: &str = "reauth";

/// Why the owner is told something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A credential died.
    Dead,
    /// A credential's refresh token ends soon.
    Expiring,
    /// A credential that was dead or expiring works again.
    Recovered,
    /// Reminder: still dead.
    StillDead,
    /// No contact with the agent for longer than the threshold.
    Unreachable,
    /// Contact is back after an announced problem.
    Reachable,
    /// The agent refuses this computer's device token.
    DeviceRevoked,
    /// The agent speaks another protocol version.
    ProtocolMismatch,
    /// A vault location on the agent fails: fewer copies than configured.
    VaultTrouble,
    /// Every vault location works again.
    VaultRecovered,
    /// The agent repaired a wiped, damaged or missing copy.
    VaultRepaired,
}

/// How loudly to notify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Informational.
    Normal,
    /// Needs the owner (a dead credential).
    Critical,
}

/// A click the owner can make on a notification.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Start the one-click re-authorization of this credential.
    Reauth {
        /// The agent.
        agent: String,
        /// The credential.
        credential: String,
    },
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// Why.
    pub kind: NoticeKind,
    /// The agent.
    pub agent: String,
    /// The credential, for credential notices.
    pub credential: Option<String>,
    /// First line (notification title).
    pub summary: String,
    /// The rest: since when, refused requests, what to do.
    pub body: String,
    /// The action button, if any ("Re-authorize").
    pub action: Option<Action>,
    /// How loud.
    pub urgency: Urgency,
}

impl Notice {
    /// Summary and body on one line, for terminals and logs.
    pub fn line(&self) -> String {
        format!("{} — {}", self.summary, self.body)
    }

    /// A credential notice.
    pub fn credential(
        kind: NoticeKind,
        agent: &str,
        c: &CredentialHealth,
        now: DateTime<Local>,
    ) -> Notice {
        let who = format!("{agent} · {}", c.name);
        let since = when(c.since, now);
        let refused = refused(c.blocked_requests);
        let todo = match c.reauth {
            ReauthKind::Oauth => format!("Re-authorize it: `tether reauth {agent}/{}`.", c.name),
            ReauthKind::Paste => format!("Paste a new token: `tether paste {agent}/{}`.", c.name),
            ReauthKind::None | ReauthKind::Unknown => "Re-create it on the agent.".to_string(),
        };
        let action = (matches!(
            kind,
            NoticeKind::Dead | NoticeKind::StillDead | NoticeKind::Expiring
        ) && c.reauth == ReauthKind::Oauth)
            .then(|| Action::Reauth {
                agent: agent.into(),
                credential: c.name.clone(),
            });
        let challenge = matches!(kind, NoticeKind::Dead | NoticeKind::StillDead)
            .then(|| super::challenge::notice_texts(agent, c, now))
            .flatten();
        let action = action.filter(|_| challenge.is_none());
        let (summary, body, urgency) = match kind {
            // The agent said what it needs: that is the whole notification.
            NoticeKind::Dead | NoticeKind::StillDead if challenge.is_some() => {
                let (summary, body) = challenge.expect("guarded by the match");
                (summary, body, Urgency::Critical)
            }
            NoticeKind::Dead => (
                format!("{who}: {}", what_happened(c)),
                format!(
                    "{} since {since}.{} {todo}",
                    refused_or("dead", &refused),
                    pending_words(c, now)
                ),
                Urgency::Critical,
            ),
            NoticeKind::StillDead => (
                format!("{who}: still dead ({})", what_happened(c)),
                format!("{} since {since}. {todo}", refused_or("dead", &refused)),
                Urgency::Critical,
            ),
            NoticeKind::Expiring => {
                let end = c
                    .refresh_expires_at
                    .map(|t| when(t, now))
                    .unwrap_or_else(|| "soon".into());
                (
                    format!("{who}: refresh token expires {end}"),
                    format!("It stops working then unless renewed. {todo}"),
                    Urgency::Normal,
                )
            }
            NoticeKind::Recovered => (
                format!("{who}: working again"),
                match &c.pending {
                    Some(p) => format!(
                        "Back to {} at {since}. {}: the agent resumes them now.",
                        c.state,
                        p.words(|t| when(t, now))
                    ),
                    None => format!("Back to {} at {since}.", c.state),
                },
                Urgency::Normal,
            ),
            // Contact notices are built by `Notice::contact`; keep a sensible text anyway.
            _ => (who, c.state.to_string(), Urgency::Normal),
        };
        Notice {
            kind,
            agent: agent.into(),
            credential: Some(c.name.clone()),
            summary,
            body,
            action,
            urgency,
        }
    }

    /// A vault notice: "studio: backup /var/backups/tether is full — the credential is
    /// stored in 2 of 3 places". `credentials` is how many the agent has.
    pub fn vault(
        kind: NoticeKind,
        agent: &str,
        v: &VaultHealth,
        credentials: usize,
        now: DateTime<Local>,
    ) -> Notice {
        let copies = v.copies_phrase(credentials);
        let (summary, body, urgency) = match kind {
            NoticeKind::VaultTrouble => (
                format!(
                    "{agent}: {}",
                    v.trouble_summary()
                        .unwrap_or_else(|| "a vault location fails".into())
                ),
                copies,
                Urgency::Critical,
            ),
            NoticeKind::VaultRecovered => (
                format!("{agent}: vault healthy again"),
                format!("{copies} since {}", when(v.since, now)),
                Urgency::Normal,
            ),
            _ => (
                format!("{agent}: vault repaired"),
                v.last_repair
                    .clone()
                    .unwrap_or_else(|| "a damaged copy was rewritten".into()),
                Urgency::Normal,
            ),
        };
        Notice::about_agent(kind, agent, summary, body, urgency)
    }

    /// An agent-contact notice.
    pub fn contact(
        kind: NoticeKind,
        agent: &str,
        since: DateTime<Local>,
        detail: &str,
        now: DateTime<Local>,
    ) -> Notice {
        let since_s = when(since.with_timezone(&Utc), now);
        let (summary, body) = match kind {
            NoticeKind::Unreachable => (
                format!("{agent}: agent unreachable since {since_s}"),
                format!("{detail}. Credentials there are not being watched: the daemon may be down or the network cut."),
            ),
            NoticeKind::Reachable => (
                format!("{agent}: agent reachable again"),
                format!("Contact restored; it had failed since {since_s}."),
            ),
            NoticeKind::DeviceRevoked => (
                format!("{agent}: this computer is no longer paired"),
                format!("{detail}."),
            ),
            NoticeKind::ProtocolMismatch => (
                format!("{agent}: tether versions do not match"),
                format!("{detail}."),
            ),
            _ => (agent.to_string(), detail.to_string()),
        };
        Notice::about_agent(kind, agent, summary, body, Urgency::Normal)
    }

    /// A notice about an agent as a whole (its vault, its contact): no credential, no
    /// action.
    fn about_agent(
        kind: NoticeKind,
        agent: &str,
        summary: String,
        body: String,
        urgency: Urgency,
    ) -> Notice {
        Notice {
            kind,
            agent: agent.into(),
            credential: None,
            summary,
            body,
            action: None,
            urgency,
        }
    }
}

/// "token has been expired or revoked" from the last error, or a generic phrase.
fn what_happened(c: &CredentialHealth) -> String {
    match &c.last_error {
        Some(e) if !e.description.trim().is_empty() => {
            let d = e.description.trim().trim_end_matches('.');
            let mut chars = d.chars();
            let first = chars
                .next()
                .map(|f| f.to_lowercase().collect::<String>())
                .unwrap_or_default();
            format!("{first}{}", chars.as_str())
        }
        Some(e) => format!("refresh failed ({})", e.code),
        None if c.state == CredentialState::Dead => "refresh token no longer works".into(),
        None => c.state.to_string(),
    }
}

/// " 3 uploads waiting since 09:02." (with its leading space), or nothing.
fn pending_words(c: &CredentialHealth, now: DateTime<Local>) -> String {
    c.pending
        .as_ref()
        .map(|p| format!(" {}.", p.words(|t| when(t, now))))
        .unwrap_or_default()
}

fn refused(n: u64) -> String {
    match n {
        0 => String::new(),
        1 => "1 request refused".into(),
        n => format!("{n} requests refused"),
    }
}

fn refused_or(state: &str, refused: &str) -> String {
    if refused.is_empty() {
        state.to_string()
    } else {
        refused.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorInfo;
    use chrono::TimeZone;

    pub(crate) fn dead_youtube(since: DateTime<Utc>, blocked: u64) -> CredentialHealth {
        CredentialHealth {
            last_error: Some(ErrorInfo {
                code: "invalid_grant".into(),
                description: "Token has been expired or revoked.".into(),
            }),
            blocked_requests: blocked,
            generation: 3,
            ..CredentialHealth::new(
                "youtube",
                "google",
                CredentialState::Dead,
                since,
                ReauthKind::Oauth,
            )
        }
    }

    #[test]
    fn dead_text_names_everything() {
        let now = Local.with_ymd_and_hms(2026, 6, 3, 9, 30, 0).unwrap();
        let since = Local
            .with_ymd_and_hms(2026, 6, 3, 9, 2, 0)
            .unwrap()
            .with_timezone(&Utc);
        let n = Notice::credential(NoticeKind::Dead, "studio", &dead_youtube(since, 3), now);
        assert_eq!(
            n.line(),
            "studio · youtube: token has been expired or revoked — 3 requests refused since 09:02. Re-authorize it: `tether reauth studio/youtube`."
        );
        assert_eq!(
            n.action,
            Some(Action::Reauth {
                agent: "studio".into(),
                credential: "youtube".into()
            })
        );
        assert_eq!(n.urgency, Urgency::Critical);
    }
}
