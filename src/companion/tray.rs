//! The tray's model: the worst state across agents as an icon and a tooltip, and the menu.
//!
//! Pure functions over a snapshot of what the watcher knows, so the tray app only draws
//! what this module decides and every rule here is unit-tested without a display:
//!
//! - [`summarize`] picks the icon ([`IconKind`]) and says it in words (the tooltip);
//! - [`menu`] lists each agent and credential with its state, a "Re-authorize …" item per
//!   broken credential, then "Check now", "Open Tether", "Pause notifications for 1 hour",
//!   "Start at login" and "Quit";
//! - [`MenuAction`] round-trips through the string ids a native menu carries.
//!
//! The snapshot these functions read, and its pure updates, is
//! [`Snapshot`](super::snapshot::Snapshot), in `snapshot.rs`, which builds on the types here.

use crate::protocol::{CredentialHealth, CredentialState, ReauthKind, VaultHealth};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether the companion can currently talk to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reachability {
    /// No answer yet since the companion started.
    Connecting,
    /// The last health poll or event stream worked.
    Reachable,
    /// Contact has failed since `since`.
    Unreachable {
        /// When contact was first lost.
        since: DateTime<Utc>,
        /// What failed, in words (never a secret).
        error: String,
    },
}

/// What the tray knows about one paired agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    /// The agent's local name.
    pub name: String,
    /// Whether it answers.
    pub reachability: Reachability,
    /// The credentials as last reported (kept while unreachable, so the menu still lists them).
    pub credentials: Vec<CredentialHealth>,
    /// The agent's vault as last reported (`None` until seen, or from an older daemon).
    #[serde(default)]
    pub vault: Option<VaultHealth>,
}

/// "studio: primary /x is full" when the agent's vault is degraded.
fn vault_trouble(a: &AgentView) -> Option<String> {
    let v = a.vault.as_ref()?;
    if v.state == CredentialState::Ok {
        return None;
    }
    Some(format!(
        "{}: {}",
        a.name,
        v.trouble_summary()
            .unwrap_or_else(|| "vault degraded".into())
    ))
}

/// The four tray icons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IconKind {
    /// Grey: nothing paired, or no agent answers.
    Idle,
    /// Green: every credential works.
    Ok,
    /// Amber: something expires soon, fails transiently, or one of several agents is silent.
    Warn,
    /// Red: at least one credential is dead and needs a human.
    Dead,
}

impl IconKind {
    /// File stem of the icon in `icons/` (`tray-ok.png`, ...).
    pub fn file_stem(self) -> &'static str {
        match self {
            IconKind::Idle => "tray-idle",
            IconKind::Ok => "tray-ok",
            IconKind::Warn => "tray-warn",
            IconKind::Dead => "tray-dead",
        }
    }
}

/// Icon and tooltip for the current snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraySummary {
    /// Which icon to show.
    pub icon: IconKind,
    /// The same, in words.
    pub tooltip: String,
}

/// `agent · credential`, the way the owner sees a credential everywhere.
pub fn credential_label(agent: &str, credential: &str) -> String {
    format!("{agent} · {credential}")
}

/// A credential a human has to act on: dead, or about to lose its refresh token.
pub fn is_broken(c: &CredentialHealth) -> bool {
    matches!(c.state, CredentialState::Dead | CredentialState::Expiring)
}

/// Picks the tray icon and tooltip: red beats amber beats green; grey when nothing is
/// paired or no agent answers.
pub fn summarize(agents: &[AgentView], now: DateTime<Utc>) -> TraySummary {
    if agents.is_empty() {
        return TraySummary {
            icon: IconKind::Idle,
            tooltip: "Tether: no agent paired; open Tether to pair one".into(),
        };
    }
    let silent: Vec<&AgentView> = agents
        .iter()
        .filter(|a| matches!(a.reachability, Reachability::Unreachable { .. }))
        .collect();
    let connecting = agents
        .iter()
        .filter(|a| a.reachability == Reachability::Connecting)
        .count();
    let creds = || {
        agents
            .iter()
            .flat_map(|a| a.credentials.iter().map(move |c| (a, c)))
    };
    let dead: Vec<String> = creds()
        .filter(|(_, c)| c.state == CredentialState::Dead)
        .map(|(a, c)| dead_phrase(&a.name, c))
        .collect();
    let count = |s: CredentialState| creds().filter(|(_, c)| c.state == s).count();
    let (expiring, degraded) = (
        count(CredentialState::Expiring),
        count(CredentialState::Degraded),
    );
    let total = creds().count();
    let vault: Vec<String> = agents.iter().filter_map(vault_trouble).collect();

    let mut parts = Vec::new();
    parts.extend(dead.iter().cloned());
    parts.extend(vault.iter().cloned());
    if expiring > 0 {
        parts.push(plural(
            expiring,
            "credential expires soon",
            "credentials expire soon",
        ));
    }
    if degraded > 0 {
        parts.push(plural(
            degraded,
            "credential has transient trouble",
            "credentials have transient trouble",
        ));
    }
    for a in &silent {
        if let Reachability::Unreachable { since, .. } = &a.reachability {
            parts.push(format!(
                "agent {} unreachable for {}",
                a.name,
                ago(*since, now)
            ));
        }
    }

    let icon = if !dead.is_empty() {
        IconKind::Dead
    } else if silent.len() + connecting == agents.len() {
        // Nothing answers: colours would only repeat stale news.
        IconKind::Idle
    } else if expiring + degraded + vault.len() > 0 || !silent.is_empty() {
        IconKind::Warn
    } else {
        IconKind::Ok
    };
    let tooltip = match icon {
        IconKind::Ok if total == 0 => "Tether: agents reachable, no credentials yet".to_string(),
        IconKind::Ok => format!("Tether: {}", plural_all_ok(total)),
        IconKind::Idle if silent.is_empty() => "Tether: connecting to your agents…".to_string(),
        _ => format!("Tether: {}", parts.join("; ")),
    };
    TraySummary { icon, tooltip }
}

fn dead_phrase(agent: &str, c: &CredentialHealth) -> String {
    let why = c
        .last_error
        .as_ref()
        .map(|e| format!(" ({})", e.code))
        .unwrap_or_default();
    format!("{} is dead{why}", credential_label(agent, &c.name))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn plural_all_ok(n: usize) -> String {
    if n == 1 {
        "1 credential, working".into()
    } else {
        format!("all {n} credentials working")
    }
}

/// "3 min", "2 h", "4 days": how long ago `t` was, for menus and tooltips.
pub fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 48 * 3600 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86400),
    }
}

/// What a menu item does; its [`id`](MenuAction::id) is what the native menu carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum MenuAction {
    /// Start the one-click re-authorization of an OAuth credential.
    Reauth {
        /// Agent name.
        agent: String,
        /// Credential name.
        credential: String,
    },
    /// Open the window at this credential (its details, or the paste-token dialog).
    Show {
        /// Agent name.
        agent: String,
        /// Credential name.
        credential: String,
    },
    /// Poll every agent now.
    CheckNow,
    /// Open the dashboard window.
    Open,
    /// Silence notifications for an hour.
    Pause,
    /// End a pause early.
    Resume,
    /// Toggle start at login.
    Autostart,
    /// Leave the app.
    Quit,
}

impl MenuAction {
    /// The menu item id: `reauth:AGENT/CRED`, `show:AGENT/CRED`, `check-now`, ...
    pub fn id(&self) -> String {
        match self {
            MenuAction::Reauth { agent, credential } => format!("reauth:{agent}/{credential}"),
            MenuAction::Show { agent, credential } => format!("show:{agent}/{credential}"),
            MenuAction::CheckNow => "check-now".into(),
            MenuAction::Open => "open".into(),
            MenuAction::Pause => "pause".into(),
            MenuAction::Resume => "resume".into(),
            MenuAction::Autostart => "autostart".into(),
            MenuAction::Quit => "quit".into(),
        }
    }

    /// Reads an id made by [`MenuAction::id`]; `None` for anything else.
    pub fn parse(id: &str) -> Option<MenuAction> {
        let pair = |rest: &str| {
            // Credential names cannot contain '/', so the last '/' splits agent from credential.
            let (a, c) = rest.rsplit_once('/')?;
            (!a.is_empty() && !c.is_empty()).then(|| (a.to_string(), c.to_string()))
        };
        if let Some(rest) = id.strip_prefix("reauth:") {
            let (agent, credential) = pair(rest)?;
            return Some(MenuAction::Reauth { agent, credential });
        }
        if let Some(rest) = id.strip_prefix("show:") {
            let (agent, credential) = pair(rest)?;
            return Some(MenuAction::Show { agent, credential });
        }
        Some(match id {
            "check-now" => MenuAction::CheckNow,
            "open" => MenuAction::Open,
            "pause" => MenuAction::Pause,
            "resume" => MenuAction::Resume,
            "autostart" => MenuAction::Autostart,
            "quit" => MenuAction::Quit,
            _ => return None,
        })
    }
}

/// One entry of the tray menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MenuEntry {
    /// A line of text; with an action it can be clicked, without one it is greyed out.
    Item {
        /// Text shown.
        text: String,
        /// What a click does; `None` = informational, disabled.
        action: Option<MenuAction>,
    },
    /// A checkbox item.
    Check {
        /// Text shown.
        text: String,
        /// Current value.
        checked: bool,
        /// What a click does.
        action: MenuAction,
    },
    /// A separator line.
    Separator,
}

impl MenuEntry {
    fn item(text: impl Into<String>, action: MenuAction) -> Self {
        MenuEntry::Item {
            text: text.into(),
            action: Some(action),
        }
    }
    fn info(text: impl Into<String>) -> Self {
        MenuEntry::Item {
            text: text.into(),
            action: None,
        }
    }
    /// The entry's text ("" for a separator).
    pub fn text(&self) -> &str {
        match self {
            MenuEntry::Item { text, .. } | MenuEntry::Check { text, .. } => text,
            MenuEntry::Separator => "",
        }
    }
}

/// Settings the menu reflects besides the agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MenuOptions {
    /// Notifications are paused until then.
    pub paused_until: Option<DateTime<Utc>>,
    /// The app starts at login.
    pub autostart: bool,
}

/// Builds the tray menu for a snapshot. Its first line repeats the tooltip's words:
/// on Linux the StatusNotifierItem host shows no tooltip, and screen readers read menus.
pub fn menu(agents: &[AgentView], opts: MenuOptions, now: DateTime<Utc>) -> Vec<MenuEntry> {
    let summary = summarize(agents, now);
    let words = summary
        .tooltip
        .strip_prefix("Tether: ")
        .unwrap_or(&summary.tooltip);
    let mut out = vec![MenuEntry::info(capitalize(words)), MenuEntry::Separator];
    if agents.is_empty() {
        out.push(MenuEntry::info("No agent paired"));
    }
    for a in agents {
        let head = match &a.reachability {
            Reachability::Reachable => format!("Agent {}", a.name),
            Reachability::Connecting => format!("Agent {}: connecting…", a.name),
            Reachability::Unreachable { since, .. } => {
                format!("Agent {}: unreachable for {}", a.name, ago(*since, now))
            }
        };
        out.push(MenuEntry::info(head));
        if let Some(v) = a.vault.as_ref().filter(|v| v.state != CredentialState::Ok) {
            out.push(MenuEntry::info(format!(
                "    vault: {} — {}",
                v.trouble_summary().unwrap_or_else(|| "degraded".into()),
                v.copies_phrase(a.credentials.len())
            )));
        }
        if a.credentials.is_empty() {
            out.push(MenuEntry::info("    no credentials"));
        }
        for c in &a.credentials {
            let mut text = format!("    {}: {}", c.name, state_words(c.state));
            if c.state != CredentialState::Ok && c.state != CredentialState::Unchecked {
                text.push_str(&format!(" for {}", ago(c.since, now)));
            }
            if c.blocked_requests > 0 {
                text.push_str(&format!(", {} requests blocked", c.blocked_requests));
            }
            out.push(MenuEntry::item(
                text,
                MenuAction::Show {
                    agent: a.name.clone(),
                    credential: c.name.clone(),
                },
            ));
        }
    }
    let broken: Vec<MenuEntry> = agents
        .iter()
        .flat_map(|a| a.credentials.iter().map(move |c| (a, c)))
        .filter(|(_, c)| is_broken(c))
        .filter_map(|(a, c)| {
            let label = credential_label(&a.name, &c.name);
            let (agent, credential) = (a.name.clone(), c.name.clone());
            match c.reauth {
                ReauthKind::Oauth => Some(MenuEntry::item(
                    format!("Re-authorize {label}…"),
                    MenuAction::Reauth { agent, credential },
                )),
                // A pasted token needs the window's dialog; the menu takes the owner there.
                ReauthKind::Paste => Some(MenuEntry::item(
                    format!("Re-authorize {label} (paste a new token)…"),
                    MenuAction::Show { agent, credential },
                )),
                ReauthKind::None | ReauthKind::Unknown => None,
            }
        })
        .collect();
    if !broken.is_empty() {
        out.push(MenuEntry::Separator);
        out.extend(broken);
    }
    out.push(MenuEntry::Separator);
    out.push(MenuEntry::item("Check now", MenuAction::CheckNow));
    out.push(MenuEntry::item("Open Tether", MenuAction::Open));
    match opts.paused_until {
        Some(until) if until > now => out.push(MenuEntry::item(
            format!("Resume notifications (paused for {} more)", ago(now, until)),
            MenuAction::Resume,
        )),
        _ => out.push(MenuEntry::item(
            "Pause notifications for 1 hour",
            MenuAction::Pause,
        )),
    }
    out.push(MenuEntry::Check {
        text: "Start at login".into(),
        checked: opts.autostart,
        action: MenuAction::Autostart,
    });
    out.push(MenuEntry::Separator);
    out.push(MenuEntry::item("Quit", MenuAction::Quit));
    out
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A state in the words the menu and the window use.
pub fn state_words(s: CredentialState) -> &'static str {
    match s {
        CredentialState::Unchecked => "not checked yet",
        CredentialState::Ok => "working",
        CredentialState::Expiring => "expiring soon",
        CredentialState::Degraded => "transient trouble",
        CredentialState::Dead => "dead",
        CredentialState::Unknown => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorInfo;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0).unwrap()
    }

    fn cred(name: &str, state: CredentialState, reauth: ReauthKind) -> CredentialHealth {
        let since = now() - chrono::Duration::minutes(28);
        let dead = state == CredentialState::Dead;
        CredentialHealth {
            last_error: dead.then(|| ErrorInfo {
                code: "invalid_grant".into(),
                description: "Token has been expired or revoked.".into(),
            }),
            blocked_requests: if dead { 37 } else { 0 },
            generation: 1,
            ..CredentialHealth::new(name, "google", state, since, reauth)
        }
    }

    fn agent(name: &str, reach: Reachability, creds: Vec<CredentialHealth>) -> AgentView {
        AgentView {
            name: name.into(),
            reachability: reach,
            credentials: creds,
            vault: None,
        }
    }

    #[test]
    fn a_failing_vault_location_is_amber_and_named() {
        let mut a = agent(
            "studio",
            Reachability::Reachable,
            vec![cred("youtube", Ok, ReauthKind::Oauth)],
        );
        a.vault = Some(VaultHealth {
            state: Degraded,
            since: now(),
            locations_ok: 2,
            locations_total: 3,
            failing: vec![crate::protocol::LocationHealth {
                name: "backup 1 /var/backups/tether".into(),
                ok: false,
                error: Some("no space left".into()),
                code: Some("no_space".into()),
            }],
            repairs: 0,
            last_repair: None,
        });
        let s = summarize(std::slice::from_ref(&a), now());
        assert_eq!(s.icon, IconKind::Warn);
        assert!(
            s.tooltip
                .contains("studio: backup 1 /var/backups/tether is full"),
            "{}",
            s.tooltip
        );
        let m = menu(&[a], MenuOptions::default(), now());
        assert!(
            m.iter().any(|e| e
                .text()
                .contains("the credential is stored in 2 of 3 places")),
            "{m:?}"
        );
    }

    fn unreachable() -> Reachability {
        Reachability::Unreachable {
            since: now() - chrono::Duration::minutes(7),
            error: "connection refused".into(),
        }
    }

    use CredentialState::*;

    #[test]
    fn nothing_paired_is_grey_and_says_how_to_pair() {
        let s = summarize(&[], now());
        assert_eq!(s.icon, IconKind::Idle);
        assert!(s.tooltip.contains("no agent paired"), "{}", s.tooltip);
    }

    #[test]
    fn all_ok_is_green() {
        let a = agent(
            "studio",
            Reachability::Reachable,
            vec![
                cred("youtube", Ok, ReauthKind::Oauth),
                cred("x", Ok, ReauthKind::Oauth),
            ],
        );
        let s = summarize(&[a], now());
        assert_eq!(s.icon, IconKind::Ok);
        assert_eq!(s.tooltip, "Tether: all 2 credentials working");
    }

    #[test]
    fn expiring_or_degraded_is_amber() {
        for st in [Expiring, Degraded] {
            let a = agent(
                "studio",
                Reachability::Reachable,
                vec![
                    cred("youtube", Ok, ReauthKind::Oauth),
                    cred("x", st, ReauthKind::Oauth),
                ],
            );
            assert_eq!(summarize(&[a], now()).icon, IconKind::Warn, "{st}");
        }
    }

    #[test]
    fn dead_anywhere_is_red_and_named_in_the_tooltip() {
        let agents = [
            agent(
                "studio",
                Reachability::Reachable,
                vec![cred("youtube", Dead, ReauthKind::Oauth)],
            ),
            agent(
                "lab",
                Reachability::Reachable,
                vec![cred("x", Expiring, ReauthKind::Oauth)],
            ),
            agent("far", unreachable(), vec![]),
        ];
        let s = summarize(&agents, now());
        assert_eq!(s.icon, IconKind::Dead);
        assert_eq!(
            s.tooltip,
            "Tether: studio · youtube is dead (invalid_grant); 1 credential expires soon; agent far unreachable for 7 min"
        );
    }

    #[test]
    fn no_agent_answering_is_grey_even_with_stale_green() {
        let a = agent(
            "studio",
            unreachable(),
            vec![cred("youtube", Ok, ReauthKind::Oauth)],
        );
        let s = summarize(&[a], now());
        assert_eq!(s.icon, IconKind::Idle);
        assert!(
            s.tooltip.contains("agent studio unreachable for 7 min"),
            "{}",
            s.tooltip
        );
    }

    #[test]
    fn one_silent_agent_among_several_is_amber() {
        let agents = [
            agent(
                "studio",
                Reachability::Reachable,
                vec![cred("youtube", Ok, ReauthKind::Oauth)],
            ),
            agent("far", unreachable(), vec![]),
        ];
        assert_eq!(summarize(&agents, now()).icon, IconKind::Warn);
    }

    #[test]
    fn connecting_is_grey_without_claiming_failure() {
        let a = agent("studio", Reachability::Connecting, vec![]);
        let s = summarize(&[a], now());
        assert_eq!(s.icon, IconKind::Idle);
        assert_eq!(s.tooltip, "Tether: connecting to your agents…");
    }

    #[test]
    fn menu_lists_agents_credentials_and_fixed_items_in_order() {
        let a = agent(
            "studio",
            Reachability::Reachable,
            vec![
                cred("youtube", Dead, ReauthKind::Oauth),
                cred("telegram", Dead, ReauthKind::Paste),
                cred("x", Ok, ReauthKind::Oauth),
                cred("legacy", Dead, ReauthKind::None),
            ],
        );
        let m = menu(&[a], MenuOptions::default(), now());
        let texts: Vec<&str> = m.iter().map(MenuEntry::text).collect();
        assert_eq!(
            texts,
            vec![
                "Studio · youtube is dead (invalid_grant); studio · telegram is dead (invalid_grant); \
                 studio · legacy is dead (invalid_grant)",
                "",
                "Agent studio",
                "    youtube: dead for 28 min, 37 requests blocked",
                "    telegram: dead for 28 min, 37 requests blocked",
                "    x: working",
                "    legacy: dead for 28 min, 37 requests blocked",
                "",
                "Re-authorize studio · youtube…",
                "Re-authorize studio · telegram (paste a new token)…",
                "",
                "Check now",
                "Open Tether",
                "Pause notifications for 1 hour",
                "Start at login",
                "",
                "Quit",
            ]
        );
        // The OAuth one starts the flow; the paste one opens the window at the credential.
        assert_eq!(
            m[8],
            MenuEntry::item(
                "Re-authorize studio · youtube…",
                MenuAction::Reauth {
                    agent: "studio".into(),
                    credential: "youtube".into()
                }
            )
        );
        assert!(matches!(
            &m[9],
            MenuEntry::Item {
                action: Some(MenuAction::Show { .. }),
                ..
            }
        ));
        // Agent headers are informational.
        assert!(matches!(&m[0], MenuEntry::Item { action: None, .. }));
    }

    #[test]
    fn expiring_gets_a_reauth_item_but_degraded_does_not() {
        let a = agent(
            "studio",
            Reachability::Reachable,
            vec![
                cred("tiktok", Expiring, ReauthKind::Oauth),
                cred("x", Degraded, ReauthKind::Oauth),
            ],
        );
        let m = menu(&[a], MenuOptions::default(), now());
        let reauths: Vec<&str> = m
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    MenuEntry::Item {
                        action: Some(MenuAction::Reauth { .. }),
                        ..
                    }
                )
            })
            .map(MenuEntry::text)
            .collect();
        assert_eq!(reauths, vec!["Re-authorize studio · tiktok…"]);
    }

    #[test]
    fn menu_reflects_pause_and_autostart() {
        let opts = MenuOptions {
            paused_until: Some(now() + chrono::Duration::minutes(42)),
            autostart: true,
        };
        let m = menu(&[], opts, now());
        assert!(m
            .iter()
            .any(|e| e.text() == "Resume notifications (paused for 42 min more)"));
        assert!(!m
            .iter()
            .any(|e| e.text() == "Pause notifications for 1 hour"));
        assert!(m.contains(&MenuEntry::Check {
            text: "Start at login".into(),
            checked: true,
            action: MenuAction::Autostart
        }));
        assert_eq!(m[0].text(), "No agent paired; open Tether to pair one");
        assert_eq!(m[2].text(), "No agent paired");
        // An expired pause is no pause.
        let opts = MenuOptions {
            paused_until: Some(now() - chrono::Duration::minutes(1)),
            autostart: false,
        };
        assert!(menu(&[], opts, now())
            .iter()
            .any(|e| e.text() == "Pause notifications for 1 hour"));
    }

    #[test]
    fn unreachable_agent_keeps_its_last_known_credentials_in_the_menu() {
        let a = agent(
            "studio",
            unreachable(),
            vec![cred("youtube", Ok, ReauthKind::Oauth)],
        );
        let texts: Vec<String> = menu(&[a], MenuOptions::default(), now())
            .iter()
            .map(|e| e.text().to_string())
            .collect();
        assert_eq!(texts[0], "Agent studio unreachable for 7 min");
        assert_eq!(texts[2], "Agent studio: unreachable for 7 min");
        assert_eq!(texts[3], "    youtube: working");
    }

    #[test]
    fn action_ids_round_trip_and_reject_junk() {
        let all = [
            MenuAction::Reauth {
                agent: "studio".into(),
                credential: "youtube".into(),
            },
            MenuAction::Show {
                agent: "my agent/with slash".into(),
                credential: "x_1".into(),
            },
            MenuAction::CheckNow,
            MenuAction::Open,
            MenuAction::Pause,
            MenuAction::Resume,
            MenuAction::Autostart,
            MenuAction::Quit,
        ];
        for a in all {
            assert_eq!(MenuAction::parse(&a.id()), Some(a.clone()), "{}", a.id());
        }
        for junk in [
            "",
            "reauth:",
            "reauth:studio",
            "reauth:/x",
            "show:studio/",
            "quit!",
            "tether",
        ] {
            assert_eq!(MenuAction::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn ago_reads_naturally() {
        let t = now();
        assert_eq!(ago(t - chrono::Duration::seconds(5), t), "5 s");
        assert_eq!(ago(t - chrono::Duration::minutes(59), t), "59 min");
        assert_eq!(ago(t - chrono::Duration::hours(3), t), "3 h");
        assert_eq!(ago(t - chrono::Duration::days(3), t), "3 days");
        // A clock skew into the future never shows a negative age.
        assert_eq!(ago(t + chrono::Duration::minutes(5), t), "0 s");
    }

    #[test]
    fn icon_files_exist_for_every_kind() {
        for k in [IconKind::Idle, IconKind::Ok, IconKind::Warn, IconKind::Dead] {
            let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("icons")
                .join(format!("{}.png", k.file_stem()));
            assert!(p.is_file(), "{} missing", p.display());
        }
    }
}
