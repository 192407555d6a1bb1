//! The tray window's dashboard: every word and time the window shows, decided here from
//! the [`Snapshot`], so the page only renders (it keeps no state words, no relative times,
//! no error words and no provider knowledge of its own).
//!
//! Each credential row carries the daemon's health as sent (the page reads `state`,
//! `reauth` and `challenge` from it for its data attributes and the challenge view) plus
//! [`RowWords`], the buttons to show ([`Button`]) and the re-authorization line.

use super::pair::PairingView;
use super::progress::Step;
use super::settings::{SettingsBounds, BOUNDS};
use super::snapshot::Snapshot;
use super::tray::{self, AgentView, Reachability, TraySummary};
use crate::protocol::{Challenge, CredentialHealth, ErrorInfo, ReauthKind};
use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

/// What the window draws.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    /// Icon kind and words, the same as the tray shows.
    pub summary: TraySummary,
    /// The summary without the "Tether: " the tooltip starts with (the window's header).
    pub headline: String,
    /// Every paired agent with its credentials.
    pub agents: Vec<AgentRow>,
    /// Notifications are paused until then.
    pub paused_until: Option<DateTime<Utc>>,
    /// Each paired agent's URL and pinned certificate fingerprint.
    pub pairings: Vec<PairingView>,
    /// The settings dialog's bounds (the ones the core enforces).
    pub bounds: SettingsBounds,
}

/// One agent as the window shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AgentRow {
    /// Local name.
    pub name: String,
    /// Whether it answers (the page styles by `kind`).
    pub reachability: Reachability,
    /// The same in words: "reachable", "connecting…", "unreachable since …: error".
    pub reach_words: String,
    /// Where it is and which certificate is pinned.
    pub where_words: String,
    /// Its credentials.
    pub credentials: Vec<CredentialRow>,
}

/// One credential as the window shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialRow {
    /// The daemon's health, as sent.
    #[serde(flatten)]
    pub health: CredentialHealth,
    /// Every text of the row.
    pub words: RowWords,
    /// Needs the owner (dead or expiring; `degraded` is the daemon's to retry).
    pub broken: bool,
    /// The row's main button: re-authorize, paste, or cancel the running re-auth.
    pub button: Option<Button>,
    /// "Sign in with a code", when the agent offers device-code re-authorization.
    pub device_button: Option<Button>,
    /// The re-authorization's step and its line under the button.
    pub progress: Option<ProgressLine>,
    /// The words of the agent's open challenge (the page draws its QR code and countdown).
    pub challenge_words: Option<ChallengeWords>,
}

/// What the window says about an agent's challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChallengeWords {
    /// What the owner must do ("Scan this QR code with your phone").
    pub need: String,
    /// The code to type, shown big (device codes).
    pub code: Option<String>,
    /// The label of the button that opens the challenge's page, when it has one (none
    /// when the page breaks the link rules: `opens` then says why).
    pub open: Option<String>,
    /// Who asks: "Tether's own sign-in for outlook" or "your agent asks (not Tether) for
    /// outlook".
    pub asker: String,
    /// Where the button goes, from the URL it opens ("opens github.com"), or why Tether
    /// will not open it.
    pub opens: Option<String>,
}

impl ChallengeWords {
    /// The words for `posted` on credential `credential`.
    pub fn of(posted: &crate::protocol::PostedChallenge, credential: &str) -> ChallengeWords {
        let c = &posted.challenge;
        let (need, code, open) = match c {
            Challenge::Qr { .. } => ("Scan this QR code with your phone".to_string(), None, None),
            Challenge::DeviceCode {
                verification_uri,
                user_code,
                ..
            } => (
                format!("Open {verification_uri} and enter this code"),
                Some(user_code.clone()),
                Some("Copy code and open page"),
            ),
            Challenge::Url { url } => (format!("Open {url}"), None, Some("Open page")),
            Challenge::Text { message } => (message.clone(), None, None),
        };
        let link_ok = c
            .link()
            .is_some_and(|l| crate::protocol::check_link("link", l).is_ok());
        ChallengeWords {
            need,
            code,
            open: open.filter(|_| link_ok).map(str::to_string),
            asker: super::challenge::asker(posted, credential),
            opens: super::challenge::opens(c),
        }
    }
}

/// The texts of one credential row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RowWords {
    /// "provider · account".
    pub account: String,
    /// The state in words ("dead", "working").
    pub state: String,
    /// How long ago the state began ("5 min ago").
    pub since: String,
    /// The same as a date and time.
    pub since_at: String,
    /// The last error in plain words, with its code.
    pub error: String,
    /// Refused access-token requests.
    pub blocked: String,
    /// When the refresh token ends ("no known end").
    pub end: String,
    /// How the daemon checks it, when no probe is in force.
    pub cadence: String,
    /// The daemon's cadence note in full (a tooltip).
    pub cadence_note: String,
    /// The HA role and lease, with several daemons.
    pub ha: String,
}

/// What a row's button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonAction {
    /// Start the browser re-authorization.
    Reauth,
    /// Open the paste-token dialog.
    Paste,
    /// Cancel the running re-authorization.
    Cancel,
    /// Ask the agent to start a device-code re-authorization.
    DeviceReauth,
}

/// A button of a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Button {
    /// What a click does.
    pub action: ButtonAction,
    /// Its label.
    pub label: String,
    /// What a screen reader says.
    pub aria: String,
    /// Shown as the primary action (the credential needs the owner, or a run is on).
    pub primary: bool,
}

/// A re-authorization's step and the line shown under the button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgressLine {
    /// The step.
    pub step: Step,
    /// True while it runs.
    pub running: bool,
    /// The words.
    pub text: String,
}

impl Dashboard {
    /// The dashboard for `snapshot` at `now`, dates shown at `offset` (the local zone).
    pub fn build(
        snapshot: &Snapshot,
        paused_until: Option<DateTime<Utc>>,
        pairings: Vec<PairingView>,
        now: DateTime<Utc>,
        offset: FixedOffset,
    ) -> Dashboard {
        let summary = tray::summarize(&snapshot.agents, now);
        let headline = summary
            .tooltip
            .strip_prefix("Tether: ")
            .unwrap_or(&summary.tooltip)
            .to_string();
        let agents = snapshot
            .agents
            .iter()
            .map(|a| {
                agent_row(
                    snapshot,
                    a,
                    pairings.iter().find(|p| p.name == a.name),
                    now,
                    offset,
                )
            })
            .collect();
        Dashboard {
            summary,
            headline,
            agents,
            paused_until,
            pairings,
            bounds: BOUNDS,
        }
    }
}

fn agent_row(
    snapshot: &Snapshot,
    a: &AgentView,
    pairing: Option<&PairingView>,
    now: DateTime<Utc>,
    offset: FixedOffset,
) -> AgentRow {
    let reach_words = match &a.reachability {
        Reachability::Reachable => "reachable".to_string(),
        Reachability::Connecting => "connecting…".to_string(),
        Reachability::Unreachable { since, error } => {
            format!("unreachable since {}: {error}", when(*since, offset))
        }
    };
    AgentRow {
        name: a.name.clone(),
        reachability: a.reachability.clone(),
        reach_words,
        where_words: pairing.map(pairing_words).unwrap_or_default(),
        credentials: a
            .credentials
            .iter()
            .map(|c| credential_row(snapshot, &a.name, c, now, offset))
            .collect(),
    }
}

fn pairing_words(p: &PairingView) -> String {
    let cert = crate::pin::certificate_words(p.fingerprint.as_ref());
    format!("{} · certificate {cert}", p.url)
}

fn credential_row(
    snapshot: &Snapshot,
    agent: &str,
    c: &CredentialHealth,
    now: DateTime<Utc>,
    offset: FixedOffset,
) -> CredentialRow {
    let cadence = c.cadence.clone().unwrap_or_default();
    let words = RowWords {
        account: match &c.account {
            Some(acc) => format!("{} · {acc}", c.provider),
            None => c.provider.clone(),
        },
        state: tray::state_words(c.state).to_string(),
        since: ago_words(c.since, now),
        since_at: when(c.since, offset),
        error: c.last_error.as_ref().map(error_words).unwrap_or_default(),
        blocked: c.blocked_requests.to_string(),
        end: c
            .refresh_expires_at
            .map_or("no known end".to_string(), |t| when(t, offset)),
        cadence: match (&cadence.note, cadence.mode.as_str()) {
            (Some(note), "refresh_tests") => note.clone(),
            _ => String::new(),
        },
        cadence_note: cadence.note.clone().unwrap_or_default(),
        ha: c.ha.as_ref().map(|h| h.phrase()).unwrap_or_default(),
    };
    let broken = tray::is_broken(c);
    let progress = snapshot.reauth(agent, &c.name);
    let running = progress.is_some_and(|p| p.step.running());
    let label = tray::credential_label(agent, &c.name);
    let button = match c.reauth {
        ReauthKind::None | ReauthKind::Unknown => None,
        _ if running => Some(Button {
            action: ButtonAction::Cancel,
            label: "Cancel".into(),
            aria: format!("Cancel re-authorizing {label}"),
            primary: true,
        }),
        kind => {
            let (action, text) = match kind {
                ReauthKind::Paste => (ButtonAction::Paste, "Paste new token"),
                _ => (ButtonAction::Reauth, "Re-authorize"),
            };
            Some(Button {
                action,
                label: text.into(),
                aria: format!("{text} for {label}"),
                primary: broken,
            })
        }
    };
    let device_button =
        (c.device_reauth && c.reauth == ReauthKind::Oauth && !running).then(|| Button {
            action: ButtonAction::DeviceReauth,
            label: "Sign in with a code".into(),
            aria: format!("Sign in with a code for {label}"),
            primary: false,
        });
    CredentialRow {
        health: c.clone(),
        words,
        broken,
        button,
        device_button,
        challenge_words: c.challenge.as_ref().map(|p| ChallengeWords::of(p, &c.name)),
        progress: progress.map(|p| ProgressLine {
            step: p.step,
            running: p.step.running(),
            text: p.line(),
        }),
    }
}

/// "just now", "5 min ago", "3 h ago", "4 days ago".
pub fn ago_words(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if (now - t).num_seconds() < 60 {
        "just now".into()
    } else {
        format!("{} ago", tray::ago(t, now))
    }
}

/// A moment as the window shows it: "2026-03-02 10:30" in the owner's zone.
pub fn when(t: DateTime<Utc>, offset: FixedOffset) -> String {
    t.with_timezone(&offset)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// A provider's error in words for the owner, the code kept for searching: plain words
/// for the errors owners meet most, else the provider's own description.
pub fn error_words(e: &ErrorInfo) -> String {
    let plain = match e.code.as_str() {
        "invalid_grant" => {
            Some("The provider no longer accepts the refresh token (revoked, expired or replaced)")
        }
        "invalid_client" => Some("The provider does not accept the app's client id or secret"),
        "unauthorized_client" => Some("The app is not allowed to use this grant"),
        "access_denied" => Some("Access was declined"),
        "temporarily_unavailable" => Some("The provider is temporarily unavailable"),
        "server_error" => Some("The provider had an internal error"),
        _ => None,
    };
    match plain {
        Some(words) => format!("{words} ({}).", e.code),
        None if !e.description.trim().is_empty() => format!("{} ({}).", e.description, e.code),
        None => format!("{}.", e.code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::companion::reauth::ReauthProgress;
    use crate::protocol::CredentialState;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0).unwrap()
    }

    fn cred(state: CredentialState, reauth: ReauthKind) -> CredentialHealth {
        let since = now() - chrono::Duration::minutes(28);
        CredentialHealth {
            blocked_requests: 37,
            last_error: Some(crate::protocol::ErrorInfo {
                code: "invalid_grant".into(),
                description: "Token has been expired or revoked.".into(),
            }),
            ..CredentialHealth::new("youtube", "google", state, since, reauth)
        }
    }

    fn dashboard(s: &Snapshot) -> Dashboard {
        Dashboard::build(s, None, vec![], now(), FixedOffset::east_opt(3600).unwrap())
    }

    fn row(s: &Snapshot) -> CredentialRow {
        dashboard(s).agents[0].credentials[0].clone()
    }

    fn with(c: CredentialHealth) -> Snapshot {
        let mut s = Snapshot::connecting(["studio"]);
        s.upsert("studio", c, now());
        s
    }

    #[test]
    fn a_dead_row_says_everything_in_words() {
        let r = row(&with(cred(CredentialState::Dead, ReauthKind::Oauth)));
        assert_eq!(r.words.state, "dead");
        assert_eq!(r.words.since, "28 min ago");
        assert_eq!(r.words.since_at, "2026-03-02 10:02");
        assert_eq!(
            r.words.error,
            "The provider no longer accepts the refresh token (revoked, expired or replaced) (invalid_grant)."
        );
        assert_eq!(r.words.blocked, "37");
        assert_eq!(r.words.end, "no known end");
        assert!(r.broken);
        assert_eq!(
            r.button,
            Some(Button {
                action: ButtonAction::Reauth,
                label: "Re-authorize".into(),
                aria: "Re-authorize for studio · youtube".into(),
                primary: true,
            })
        );
        assert_eq!(r.device_button, None);
        // The daemon's fields are still there for the page's data attributes.
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["state"], "dead");
        assert_eq!(json["reauth"], "oauth");
    }

    #[test]
    fn degraded_is_not_broken_the_daemon_retries_it() {
        let r = row(&with(cred(CredentialState::Degraded, ReauthKind::Oauth)));
        assert!(!r.broken);
        assert!(!r.button.unwrap().primary);
    }

    #[test]
    fn paste_and_none_kinds_get_their_own_button_or_none() {
        let r = row(&with(cred(CredentialState::Dead, ReauthKind::Paste)));
        let b = r.button.unwrap();
        assert_eq!(
            (b.action, b.label.as_str()),
            (ButtonAction::Paste, "Paste new token")
        );
        assert!(row(&with(cred(CredentialState::Dead, ReauthKind::None)))
            .button
            .is_none());
        assert!(row(&with(cred(CredentialState::Dead, ReauthKind::Unknown)))
            .button
            .is_none());
    }

    #[test]
    fn a_running_reauth_shows_cancel_and_its_step_until_it_ends() {
        let mut s = with(cred(CredentialState::Dead, ReauthKind::Oauth));
        s.progress(
            "studio",
            "youtube",
            &ReauthProgress::WaitingForBrowser {
                url: "u".into(),
                open_error: None,
            },
            now(),
        );
        let r = row(&s);
        let b = r.button.unwrap();
        assert_eq!(
            (b.action, b.label.as_str()),
            (ButtonAction::Cancel, "Cancel")
        );
        assert_eq!(b.aria, "Cancel re-authorizing studio · youtube");
        let p = r.progress.unwrap();
        assert!(p.running);
        assert_eq!(p.text, "Waiting for you in the browser…");
        let failed = ReauthProgress::Failed {
            message: "re-authorization of studio/youtube: cancelled".into(),
        };
        s.progress("studio", "youtube", &failed, now());
        let r = row(&s);
        assert_eq!(r.button.unwrap().action, ButtonAction::Reauth);
        assert_eq!(r.progress.unwrap().step, Step::Failed);
    }

    #[test]
    fn device_code_sign_in_is_offered_only_where_the_agent_supports_it() {
        let mut c = cred(CredentialState::Dead, ReauthKind::Oauth);
        assert!(row(&with(c.clone())).device_button.is_none());
        c.device_reauth = true;
        let b = row(&with(c.clone())).device_button.unwrap();
        assert_eq!(b.action, ButtonAction::DeviceReauth);
        assert_eq!(b.label, "Sign in with a code");
        assert_eq!(b.aria, "Sign in with a code for studio · youtube");
        // Not while a browser re-authorization runs.
        let mut s = with(c);
        s.progress("studio", "youtube", &ReauthProgress::Starting, now());
        assert!(row(&s).device_button.is_none());
    }

    #[test]
    fn agents_say_where_they_are_and_whether_they_answer() {
        let mut s = Snapshot::connecting(["studio"]);
        let pairing = PairingView {
            name: "studio".into(),
            url: "https://127.0.0.1:7443".into(),
            fingerprint: Some(crate::pin::Fingerprint::parse(&"ab".repeat(32)).unwrap()),
            device_id: None,
        };
        let d = Dashboard::build(
            &s,
            None,
            vec![pairing],
            now(),
            FixedOffset::east_opt(0).unwrap(),
        );
        assert_eq!(d.agents[0].reach_words, "connecting…");
        assert_eq!(
            d.agents[0].where_words,
            format!(
                "https://127.0.0.1:7443 · certificate sha256 {}",
                "ab".repeat(32)
            )
        );
        assert_eq!(d.headline, "connecting to your agents…");
        s.checked(
            "studio",
            Err(crate::companion::error::CompanionError::UnknownAgent {
                name: "x".into(),
                known: "none".into(),
            }),
            now(),
        );
        let d = dashboard(&s);
        assert!(
            d.agents[0]
                .reach_words
                .starts_with("unreachable since 2026-03-02 10:30: no paired agent named `x`"),
            "{}",
            d.agents[0].reach_words
        );
        assert_eq!(d.bounds, BOUNDS);
    }

    #[test]
    fn a_challenge_is_said_in_words_with_its_code_and_page_button() {
        let posted = |challenge: Challenge, origin| crate::protocol::PostedChallenge {
            challenge,
            since: now(),
            posted_at: now(),
            revision: 1,
            origin,
        };
        use crate::protocol::ChallengeOrigin::{Agent, Daemon};
        let qr = Challenge::Qr {
            payload: "2@x".into(),
            expires_at: None,
        };
        assert_eq!(
            ChallengeWords::of(&posted(qr, Agent), "whatsapp"),
            ChallengeWords {
                need: "Scan this QR code with your phone".into(),
                code: None,
                open: None,
                asker: "your agent asks (not Tether) for whatsapp".into(),
                opens: None,
            }
        );
        let device = Challenge::DeviceCode {
            verification_uri: "https://id.example/device".into(),
            user_code: "WDJB-MJHT".into(),
            verification_uri_complete: None,
            expires_at: None,
        };
        let w = ChallengeWords::of(&posted(device, Daemon), "outlook");
        assert_eq!(w.need, "Open https://id.example/device and enter this code");
        assert_eq!(w.code.as_deref(), Some("WDJB-MJHT"));
        assert_eq!(w.open.as_deref(), Some("Copy code and open page"));
        assert_eq!(w.asker, "Tether's own sign-in for outlook");
        assert_eq!(w.opens.as_deref(), Some("opens id.example"));
        let url = Challenge::Url {
            url: "https://x.example/ok".into(),
        };
        let w = ChallengeWords::of(&posted(url, Agent), "x");
        assert_eq!(w.open.as_deref(), Some("Open page"));
        assert_eq!(w.opens.as_deref(), Some("opens x.example"));
        // A link that breaks the rules (an older daemon stored it as posted) gets no
        // button, and the row says why.
        let bad = Challenge::Url {
            url: "http://evil.example/".into(),
        };
        let w = ChallengeWords::of(&posted(bad, Agent), "x");
        assert_eq!(w.open, None);
        assert!(
            w.opens.as_deref().unwrap().contains("must use https"),
            "{:?}",
            w.opens
        );
    }

    #[test]
    fn times_and_unknown_errors_read_naturally() {
        assert_eq!(
            ago_words(now() - chrono::Duration::seconds(5), now()),
            "just now"
        );
        assert_eq!(
            ago_words(now() - chrono::Duration::hours(3), now()),
            "3 h ago"
        );
        assert_eq!(
            ago_words(now() - chrono::Duration::days(3), now()),
            "3 days ago"
        );
        let e = ErrorInfo {
            code: "weird".into(),
            description: "Something odd.".into(),
        };
        assert_eq!(error_words(&e), "Something odd. (weird).");
        let e = ErrorInfo {
            code: "weird".into(),
            description: " ".into(),
        };
        assert_eq!(error_words(&e), "weird.");
    }
}
