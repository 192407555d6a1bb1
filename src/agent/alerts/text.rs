//! What an alert says: the [`Alert`] event and its rendering into a title and a plain-text body.
//!
//! The text names the agent, the credential, what happened, the provider's error, how many
//! of the agent's requests were refused, and the one command that fixes it. It never holds
//! a secret: [`Alert`] has no field that could carry one.

use crate::protocol::{ErrorInfo, ReauthKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Why an alert is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    /// The credential died: a human must re-authorize.
    Dead,
    /// The refresh token has a known end inside the warning window.
    Expiring,
    /// A dead or expiring credential works again.
    Recovered,
    /// The credential is still dead (sent every reminder interval).
    Reminder,
    /// A vault location fails (full, read-only, gone): fewer copies than configured.
    #[serde(rename = "vault_trouble")]
    VaultTrouble,
    /// Every vault location holds every credential again.
    #[serde(rename = "vault_recovered")]
    VaultRecovered,
    /// An output file was wiped or damaged and is restored (at most hourly per file).
    #[serde(rename = "output_wiped")]
    OutputWiped,
    /// A credential's `on_change` hook failed or hung: the new token is stored, but the
    /// agent may still use the old one (at most hourly per credential).
    #[serde(rename = "hook_failed")]
    HookFailed,
    /// `tether agent alerts test`: nothing is wrong; the channel is being tried.
    Test,
    /// The credential died and recovered several times in a short while: one alert says
    /// so, and the others are held until it is steady (`alerts::damper`).
    Flapping,
}

impl AlertKind {
    /// Lower-case name as used in JSON payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Dead => "dead",
            AlertKind::Expiring => "expiring",
            AlertKind::Recovered => "recovered",
            AlertKind::Reminder => "reminder",
            AlertKind::VaultTrouble => "vault_trouble",
            AlertKind::VaultRecovered => "vault_recovered",
            AlertKind::OutputWiped => "output_wiped",
            AlertKind::HookFailed => "hook_failed",
            AlertKind::Test => "test",
            AlertKind::Flapping => "flapping",
        }
    }
}

/// One alert about one credential (or, for [`AlertKind::Test`] and the vault kinds, about
/// the agent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The agent's name, e.g. `studio`.
    pub agent: String,
    /// The credential's name, e.g. `youtube` (empty for a test alert).
    pub credential: String,
    /// Provider preset name, e.g. `google`.
    pub provider: String,
    /// Why the alert is sent.
    pub kind: AlertKind,
    /// How the credential is re-armed: decides the command the text suggests.
    pub reauth: ReauthKind,
    /// The provider's error that killed the credential.
    pub error: Option<ErrorInfo>,
    /// Access-token requests refused since the credential died.
    pub blocked_requests: u64,
    /// When the credential entered its current state.
    pub since: DateTime<Utc>,
    /// Known end of the refresh token (for `expiring`).
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// For vault alerts: what is wrong and how many copies remain, in words.
    #[serde(default)]
    pub detail: Option<String>,
    /// What the agent says the owner must do (a QR code, a device code and its page).
    #[serde(default)]
    pub challenge: Option<crate::protocol::Challenge>,
    /// Who asks for `challenge`: Tether's own sign-in or the agent.
    #[serde(default)]
    pub challenge_origin: Option<crate::protocol::ChallengeOrigin>,
    /// Work the agent reports waiting.
    #[serde(default)]
    pub pending: Option<crate::protocol::PendingWork>,
}

/// An alert rendered for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertText {
    /// One line: the subject of an e-mail, the title of a push notification.
    pub title: String,
    /// Several lines of plain text.
    pub body: String,
}

/// Longest provider error description put into a text (providers sometimes send pages).
const MAX_DESCRIPTION_CHARS: usize = 300;

impl Alert {
    /// A test alert for `tether agent alerts test`, about the agent only.
    pub fn test(agent: &str, now: DateTime<Utc>) -> Alert {
        Alert {
            agent: agent.to_string(),
            credential: String::new(),
            provider: String::new(),
            kind: AlertKind::Test,
            reauth: ReauthKind::None,
            error: None,
            blocked_requests: 0,
            since: now,
            refresh_expires_at: None,
            detail: None,
            challenge: None,
            challenge_origin: None,
            pending: None,
        }
    }

    /// A vault alert (`VaultTrouble`, `VaultRecovered`, `OutputWiped`) about agent `agent`.
    pub fn vault(
        agent: &str,
        kind: AlertKind,
        detail: String,
        error: Option<ErrorInfo>,
        since: DateTime<Utc>,
    ) -> Alert {
        Alert {
            agent: agent.to_string(),
            credential: String::new(),
            provider: String::new(),
            kind,
            reauth: ReauthKind::None,
            error,
            blocked_requests: 0,
            since,
            refresh_expires_at: None,
            detail: Some(detail),
            challenge: None,
            challenge_origin: None,
            pending: None,
        }
    }

    /// `agent/credential`, as typed in tether commands.
    pub fn target(&self) -> String {
        format!("{}/{}", self.agent, self.credential)
    }

    /// The command that brings the credential back, if tether can.
    pub fn fix_command(&self) -> Option<String> {
        match self.reauth {
            ReauthKind::Oauth => Some(format!("tether reauth {}", self.target())),
            ReauthKind::Paste => Some(format!("tether paste {}", self.target())),
            ReauthKind::None | ReauthKind::Unknown => None,
        }
    }

    /// Renders the title and body.
    pub fn render(&self) -> AlertText {
        let target = self.target();
        let since = format_time(self.since);
        let mut lines: Vec<String> = Vec::new();
        let title = match self.kind {
            AlertKind::Dead if self.challenge.is_some() => {
                let c = self.challenge.as_ref().expect("guarded by the match");
                let origin = self.challenge_origin.unwrap_or_default();
                lines.push(format!(
                    "Agent {} needs you for credential {} since {since}: it cannot work until you do.",
                    self.agent, self.credential
                ));
                lines.push(format!("Who asks: {}.", origin.words(&self.credential)));
                match origin {
                    crate::protocol::ChallengeOrigin::Daemon => {
                        format!("tether: {target} needs you: {}", c.need_words())
                    }
                    // The agent's words are not Tether's: the title says whose they are.
                    crate::protocol::ChallengeOrigin::Agent => {
                        format!(
                            "tether: {target}: your agent asks you to {}",
                            c.need_words()
                        )
                    }
                }
            }
            AlertKind::Flapping => {
                let detail = self
                    .detail
                    .as_deref()
                    .unwrap_or("it died and recovered several times in a short while");
                lines.push(format!(
                    "Credential {} ({}) on agent {} keeps changing state: {detail}. Further alerts about it are held until it is steady; you will then get its state once.",
                    self.credential, self.provider, self.agent
                ));
                format!("tether: {target} is flapping")
            }
            AlertKind::Dead => {
                lines.push(format!(
                    "Credential {} ({}) on agent {} is dead since {since}: the agent cannot get access tokens for it.",
                    self.credential, self.provider, self.agent
                ));
                format!("tether: {target} is dead and needs re-authorization")
            }
            AlertKind::Reminder => {
                lines.push(format!(
                    "Reminder: credential {} ({}) on agent {} is still dead, since {since}.",
                    self.credential, self.provider, self.agent
                ));
                format!("tether: {target} is still dead")
            }
            AlertKind::Expiring => {
                let when = self
                    .refresh_expires_at
                    .map(format_time)
                    .unwrap_or_else(|| "soon".to_string());
                lines.push(format!(
                    "Credential {} ({}) on agent {} works, but its refresh token ends {when}; after that the agent loses access.",
                    self.credential, self.provider, self.agent
                ));
                format!("tether: {target} expires {when}")
            }
            AlertKind::Recovered => {
                lines.push(format!(
                    "Credential {} ({}) on agent {} works again.",
                    self.credential, self.provider, self.agent
                ));
                format!("tether: {target} is working again")
            }
            AlertKind::Test => {
                // Labelled in the title and the first line: whoever reads only one of
                // them must not think a credential died.
                lines.push(format!(
                    "TEST ALERT, nothing is wrong: sent by `tether agent alerts test` on agent {} to show that this channel delivers.",
                    self.agent
                ));
                format!("tether: TEST alert from {} (nothing is wrong)", self.agent)
            }
            AlertKind::VaultTrouble => {
                let detail = self.detail.as_deref().unwrap_or("a vault location fails");
                lines.push(format!(
                    "The vault on agent {} is degraded since {since}: {detail}. The other locations keep every credential; the failing one is refilled as soon as it can be written.",
                    self.agent
                ));
                format!("tether: vault trouble on agent {}", self.agent)
            }
            AlertKind::OutputWiped => {
                let file = self.detail.as_deref().unwrap_or("an output file");
                lines.push(format!(
                    "{file} (credential {}) on agent {} was wiped or damaged at {since} and is restored from the vault. Something on that server deletes or overwrites it: find it (a clean-up job, a deploy, the agent itself). Further wipes of this file within the hour are restored without another alert.",
                    self.credential, self.agent
                ));
                format!(
                    "tether: {file} on agent {} was wiped and restored",
                    self.agent
                )
            }
            AlertKind::HookFailed => {
                let why = self.detail.as_deref().unwrap_or("it failed");
                lines.push(format!(
                    "Credential {} on agent {} has a new token (stored and rendered at {since}), but its on_change hook failed: {why}. The agent may still use the old token until it is restarted. Further failures within the hour are only logged; `tether status` shows the last run.",
                    self.credential, self.agent
                ));
                format!(
                    "tether: {} on agent {}: the agent was not told of its new token",
                    self.credential, self.agent
                )
            }
            AlertKind::VaultRecovered => {
                let detail = self.detail.as_deref().unwrap_or("every location works");
                lines.push(format!(
                    "The vault on agent {} is healthy again: {detail}.",
                    self.agent
                ));
                format!("tether: vault on agent {} is healthy again", self.agent)
            }
        };
        if let Some(err) = &self.error {
            if !matches!(self.kind, AlertKind::Recovered | AlertKind::VaultRecovered) {
                let shown = crate::protocol::ErrorInfo {
                    code: err.code.clone(),
                    description: truncate(&err.description, MAX_DESCRIPTION_CHARS),
                };
                lines.push(format!("Error: {shown}"));
            }
        }
        if matches!(self.kind, AlertKind::Dead | AlertKind::Reminder) || self.blocked_requests > 0 {
            let noun = if self.blocked_requests == 1 {
                "request"
            } else {
                "requests"
            };
            let verb = if self.kind == AlertKind::Recovered {
                "were refused while it was dead"
            } else {
                "refused"
            };
            lines.push(format!(
                "{} {noun} {verb} since {}.",
                self.blocked_requests,
                self.since.format("%H:%M UTC")
            ));
        }
        if let Some(p) = &self.pending {
            if !matches!(
                self.kind,
                AlertKind::Test
                    | AlertKind::VaultTrouble
                    | AlertKind::VaultRecovered
                    | AlertKind::OutputWiped
            ) {
                lines.push(format!(
                    "{}.",
                    p.words(|t| t.format("%H:%M UTC").to_string())
                ));
            }
        }
        let challenge = self
            .challenge
            .as_ref()
            .filter(|_| matches!(self.kind, AlertKind::Dead | AlertKind::Reminder));
        match (self.kind, self.fix_command(), challenge) {
            (_, _, Some(c)) => {
                // The agent said what it needs: that is the fix, and the owner can do it
                // from the phone (a device code needs no laptop).
                lines.push(format!("Needed: {}.", c.need_words()));
                if let Some(link) = c.link() {
                    lines.push(format!("Open: {link}"));
                    if let Some(host) = c.link_host() {
                        lines.push(format!("That page is on {host}."));
                    }
                }
                if let crate::protocol::Challenge::Qr { .. } = c {
                    lines.push(format!(
                        "The QR code is in the tray window, or run `tether challenge {}` in a terminal.",
                        self.target()
                    ));
                }
            }
            (AlertKind::Dead | AlertKind::Reminder | AlertKind::Expiring, Some(cmd), None) => {
                lines.push(format!("Fix: run `{cmd}` on your laptop."));
            }
            (AlertKind::Dead | AlertKind::Reminder | AlertKind::Expiring, None, None) => {
                lines.push(format!(
                    "Fix: tether cannot re-arm this credential; create a new one at the provider and store it again on agent {}.",
                    self.agent
                ));
            }
            _ => {}
        }
        AlertText {
            title,
            body: lines.join("\n"),
        }
    }
}

/// `09:02 UTC on 2026-03-01`: the time first, because that is what the owner compares.
fn format_time(t: DateTime<Utc>) -> String {
    t.format("%H:%M UTC on %Y-%m-%d").to_string()
}

/// Cuts `text` to at most `max` characters, marking the cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn dead(reauth: ReauthKind) -> Alert {
        Alert {
            agent: "studio".into(),
            credential: "youtube".into(),
            provider: "google".into(),
            kind: AlertKind::Dead,
            reauth,
            error: Some(ErrorInfo {
                code: "invalid_grant".into(),
                description: "Token has been expired or revoked.".into(),
            }),
            blocked_requests: 37,
            since: Utc.with_ymd_and_hms(2026, 3, 1, 9, 2, 0).unwrap(),
            refresh_expires_at: None,
            detail: None,
            challenge: None,
            challenge_origin: None,
            pending: None,
        }
    }

    #[test]
    fn a_device_code_alert_carries_the_page_the_code_and_the_waiting_work() {
        let mut a = dead(ReauthKind::Oauth);
        a.challenge_origin = Some(crate::protocol::ChallengeOrigin::Daemon);
        a.challenge = Some(crate::protocol::Challenge::DeviceCode {
            verification_uri: "https://github.com/login/device".into(),
            user_code: "WDJB-MJHT".into(),
            verification_uri_complete: None,
            expires_at: None,
        });
        a.pending = Some(crate::protocol::PendingWork {
            count: 3,
            oldest: Some(Utc.with_ymd_and_hms(2026, 3, 1, 9, 2, 0).unwrap()),
            what: Some("uploads".into()),
        });
        let t = a.render();
        assert_eq!(
            t.title,
            "tether: studio/youtube needs you: open https://github.com/login/device and enter the code WDJB-MJHT"
        );
        assert!(
            t.body.contains("Open: https://github.com/login/device"),
            "{}",
            t.body
        );
        assert!(
            t.body.contains("3 uploads waiting since 09:02 UTC."),
            "{}",
            t.body
        );
        assert!(
            !t.body.contains("tether reauth"),
            "the challenge is the fix: {}",
            t.body
        );
        assert!(
            t.body
                .contains("Who asks: Tether's own sign-in for youtube.")
                && t.body.contains("That page is on github.com."),
            "{}",
            t.body
        );
    }

    #[test]
    fn an_agents_challenge_says_it_is_the_agent_asking_in_the_title() {
        let mut a = dead(ReauthKind::Oauth);
        a.challenge_origin = Some(crate::protocol::ChallengeOrigin::Agent);
        a.challenge = Some(crate::protocol::Challenge::Url {
            url: "https://login.example.com/consent".into(),
        });
        let t = a.render();
        assert_eq!(
            t.title,
            "tether: studio/youtube: your agent asks you to open https://login.example.com/consent"
        );
        assert!(
            t.body
                .contains("Who asks: your agent asks (not Tether) for youtube.")
                && t.body.contains("That page is on login.example.com."),
            "{}",
            t.body
        );
        // An older daemon's alert without an origin reads as the agent's: the cautious way.
        a.challenge_origin = None;
        assert!(a.render().title.contains("your agent asks"));
    }

    #[test]
    fn dead_text_says_what_and_how_to_fix() {
        let t = dead(ReauthKind::Oauth).render();
        assert!(t.title.contains("studio/youtube"));
        for needle in [
            "studio",
            "youtube",
            "google",
            "invalid_grant",
            "Token has been expired or revoked.",
            "37 requests refused since 09:02",
            "`tether reauth studio/youtube`",
        ] {
            assert!(t.body.contains(needle), "{needle:?} missing in {}", t.body);
        }
    }

    #[test]
    fn paste_and_none_kinds_suggest_the_right_fix() {
        let t = dead(ReauthKind::Paste).render();
        assert!(
            t.body.contains("`tether paste studio/youtube`"),
            "{}",
            t.body
        );
        let t = dead(ReauthKind::None).render();
        assert!(!t.body.contains("tether reauth"));
        assert!(t.body.contains("cannot re-arm"));
    }

    #[test]
    fn one_blocked_request_is_singular_and_long_errors_are_cut() {
        let mut a = dead(ReauthKind::Oauth);
        a.blocked_requests = 1;
        a.error.as_mut().unwrap().description = "x".repeat(1000);
        let t = a.render();
        assert!(t.body.contains("1 request refused"));
        assert!(t.body.len() < 800);
    }

    #[test]
    fn test_alert_names_the_agent_only() {
        let t = Alert::test("studio", Utc::now()).render();
        assert_eq!(t.title, "tether: TEST alert from studio (nothing is wrong)");
        assert!(
            t.body.starts_with("TEST ALERT, nothing is wrong"),
            "{}",
            t.body
        );
        assert!(
            !t.body.contains("refused") && !t.body.contains("Fix:"),
            "{}",
            t.body
        );
    }

    #[test]
    fn a_wipe_alert_names_the_file_and_says_it_is_restored_and_said_once_an_hour() {
        let mut a = Alert::vault(
            "studio",
            AlertKind::OutputWiped,
            "/home/agent/yt/token.json".into(),
            None,
            Utc::now(),
        );
        a.credential = "youtube".into();
        let t = a.render();
        assert_eq!(
            t.title,
            "tether: /home/agent/yt/token.json on agent studio was wiped and restored"
        );
        assert!(t.body.contains("credential youtube"), "{}", t.body);
        assert!(t.body.contains("restored from the vault"), "{}", t.body);
        assert!(t.body.contains("within the hour"), "{}", t.body);
        // Nothing is dead: no refused requests, no re-authorization.
        assert!(
            !t.body.contains("refused") && !t.body.contains("Fix:"),
            "{}",
            t.body
        );
    }

    #[test]
    fn recovered_and_expiring_texts() {
        let mut a = dead(ReauthKind::Oauth);
        a.kind = AlertKind::Recovered;
        let t = a.render();
        assert!(t.title.contains("working again"));
        assert!(!t.body.contains("Fix:"));
        a.kind = AlertKind::Expiring;
        a.blocked_requests = 0;
        a.error = None;
        a.refresh_expires_at = Some(Utc.with_ymd_and_hms(2026, 3, 8, 0, 0, 0).unwrap());
        let t = a.render();
        assert!(t.title.contains("2026-03-08"));
        assert!(t.body.contains("tether reauth studio/youtube"));
        assert!(!t.body.contains("refused"));
    }

    #[test]
    fn an_error_without_description_shows_the_code_alone() {
        let mut a = dead(ReauthKind::Oauth);
        a.error.as_mut().unwrap().description = String::new();
        let t = a.render();
        let line = t.body.lines().find(|l| l.starts_with("Error")).unwrap();
        assert_eq!(line, "Error: invalid_grant");
        assert!(t.body.contains("`tether reauth studio/youtube`"));
    }
}
