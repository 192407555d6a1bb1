//! The tray's snapshot: what the window and the tray icon draw, kept up to date by pure
//! updates from the watcher's events, health checks, pairings and re-auth progress.
//!
//! The tray app holds one [`Snapshot`] and only calls these methods; every rule of how
//! news changes what is shown lives here and is unit-tested without a display:
//! news about a credential means its agent answered; a short failure streak keeps the
//! last known reachability; an unreachable agent keeps its credentials and the moment
//! contact was lost; a re-authorization's latest step stays until the next one, so a
//! window opened mid-flow shows it (and "Cancel").

use super::handle::AgentCheck;
use super::policy::ContactState;
use super::progress::{Progress, Step};
use super::reauth::ReauthProgress;
use super::tray::{AgentView, Reachability};
use super::watcher::WatchEvent;
use crate::protocol::{CredentialHealth, CredentialState, HealthReport};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// How long a "done" line stays once the credential has moved on from the state it was
/// re-authorized into (it is news only until then).
pub const DONE_NEWS: Duration = Duration::seconds(5);

/// Every paired agent as last seen, and each credential's re-authorization progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// The agents, in pairing order.
    pub agents: Vec<AgentView>,
    /// Per credential, the running re-authorization's step or the last one's outcome.
    pub reauths: Vec<Progress>,
}

impl Snapshot {
    /// Every agent in `names` as "connecting", nothing known yet.
    pub fn connecting<'a>(names: impl IntoIterator<Item = &'a str>) -> Snapshot {
        Snapshot {
            agents: names.into_iter().map(connecting).collect(),
            reauths: Vec::new(),
        }
    }

    /// Applies one watcher event; true when something shown changed. Events that are
    /// not about what is shown (clicks, diagnostics) change nothing.
    pub fn apply(&mut self, ev: &WatchEvent, now: DateTime<Utc>) -> bool {
        match ev {
            WatchEvent::Credential {
                agent, credential, ..
            }
            | WatchEvent::Updated { agent, credential } => {
                self.upsert(agent, credential.clone(), now);
                true
            }
            WatchEvent::Removed { agent, credential } => match self.agent_mut(agent) {
                Some(a) => {
                    a.credentials.retain(|c| &c.name != credential);
                    true
                }
                None => false,
            },
            WatchEvent::Contact { agent, state } => match self.agent_mut(agent) {
                Some(a) => {
                    a.reachability = reachability(&a.reachability, state, now);
                    true
                }
                None => false,
            },
            WatchEvent::Vault { agent, vault } => match self.agent_mut(agent) {
                Some(a) => {
                    a.vault = Some(vault.clone());
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    fn agent_mut(&mut self, name: &str) -> Option<&mut AgentView> {
        self.agents.iter_mut().find(|a| a.name == name)
    }

    /// A credential's new health (an event, a finished re-auth or paste): news about a
    /// credential means its agent answered.
    pub fn upsert(&mut self, agent: &str, credential: CredentialHealth, now: DateTime<Utc>) {
        let i = match self.agents.iter().position(|a| a.name == agent) {
            Some(i) => i,
            None => {
                self.agents.push(connecting(agent));
                self.agents.len() - 1
            }
        };
        let a = &mut self.agents[i];
        if a.reachability == Reachability::Connecting {
            a.reachability = Reachability::Reachable;
        }
        // A "done" line is news only until the credential's state moves on again.
        self.reauths.retain(|p| {
            !(p.agent == agent
                && p.credential == credential.name
                && p.step == Step::Done
                && credential.state != CredentialState::Ok
                && now - p.at > DONE_NEWS)
        });
        match a.credentials.iter_mut().find(|c| c.name == credential.name) {
            Some(c) => *c = credential,
            None => a.credentials.push(credential),
        }
    }

    /// The answer of a "check now" health request to `agent`: the whole report replaces
    /// what was known; an error marks the agent unreachable (since the first failure).
    pub fn checked(&mut self, agent: &str, result: AgentCheck, now: DateTime<Utc>) {
        match result {
            Ok(report) => {
                let view = AgentView {
                    name: agent.to_string(),
                    reachability: Reachability::Reachable,
                    credentials: report.credentials,
                    vault: report.vault,
                };
                match self.agent_mut(agent) {
                    Some(a) => *a = view,
                    None => self.agents.push(view),
                }
            }
            Err(e) => {
                if let Some(a) = self.agent_mut(agent) {
                    a.reachability = Reachability::Unreachable {
                        since: lost_since(&a.reachability, now),
                        error: crate::report::chain(&e),
                    };
                }
            }
        }
    }

    /// A new pairing (or a replaced one): shown with the health pairing fetched, if any.
    pub fn paired(&mut self, agent: &str, health: Option<HealthReport>) {
        self.agents.retain(|a| a.name != agent);
        let mut view = connecting(agent);
        if let Some(h) = health {
            view.reachability = Reachability::Reachable;
            view.credentials = h.credentials;
            view.vault = h.vault;
        }
        self.agents.push(view);
    }

    /// An agent forgotten on this computer.
    pub fn unpaired(&mut self, agent: &str) {
        self.agents.retain(|a| a.name != agent);
        self.reauths.retain(|p| p.agent != agent);
    }

    /// A step of a re-authorization of `agent`/`credential`. Later steps keep the
    /// provider shown at "opening"; "done" also brings the credential's new health.
    pub fn progress(
        &mut self,
        agent: &str,
        credential: &str,
        p: &ReauthProgress,
        now: DateTime<Utc>,
    ) {
        let mut next = Progress::of(agent, credential, p, now);
        if let ReauthProgress::Done { credential: c } = p {
            self.upsert(agent, CredentialHealth::clone(c), now);
        }
        let before = self
            .reauths
            .iter()
            .position(|r| r.agent == agent && r.credential == credential);
        if let Some(i) = before {
            let old = self.reauths.remove(i);
            if next.target.is_none() && next.step != Step::Starting {
                next.target = old.target;
            }
        }
        self.reauths.push(next);
    }

    /// A finished run with words of its own (a pasted token the agent accepted).
    pub fn finished(&mut self, done: Progress) {
        self.reauths
            .retain(|r| !(r.agent == done.agent && r.credential == done.credential));
        self.reauths.push(done);
    }

    /// The re-authorization progress of `agent`/`credential`, if any.
    pub fn reauth(&self, agent: &str, credential: &str) -> Option<&Progress> {
        self.reauths
            .iter()
            .find(|r| r.agent == agent && r.credential == credential)
    }
}

fn connecting(name: &str) -> AgentView {
    AgentView {
        name: name.into(),
        reachability: Reachability::Connecting,
        credentials: Vec::new(),
        vault: None,
    }
}

/// When contact was lost: kept from an earlier loss, else now.
fn lost_since(before: &Reachability, now: DateTime<Utc>) -> DateTime<Utc> {
    match before {
        Reachability::Unreachable { since, .. } => *since,
        _ => now,
    }
}

/// The tray's reachability for the watcher's contact state. A short failure streak
/// (`Failing`) keeps the last known state, so one lost poll does not turn the tray grey.
pub fn reachability(
    before: &Reachability,
    state: &ContactState,
    now: DateTime<Utc>,
) -> Reachability {
    let lost = |since: DateTime<Utc>, error: &str| Reachability::Unreachable {
        since,
        error: error.to_string(),
    };
    match state {
        ContactState::Connected => Reachability::Reachable,
        ContactState::Failing { .. } => before.clone(),
        ContactState::Unreachable { since, message } => lost(since.with_timezone(&Utc), message),
        ContactState::Unauthorized { message } | ContactState::ProtocolMismatch { message } => {
            lost(lost_since(before, now), message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ReauthKind, VaultHealth};
    use chrono::{Local, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0).unwrap()
    }

    fn cred(name: &str, state: CredentialState) -> CredentialHealth {
        CredentialHealth {
            generation: 1,
            ..CredentialHealth::new(name, "google", state, now(), ReauthKind::Oauth)
        }
    }

    fn report(creds: Vec<CredentialHealth>) -> HealthReport {
        serde_json::from_value(serde_json::json!({
            "agent": "studio", "version": "0.1.0", "protocol": crate::protocol::PROTOCOL_VERSION,
            "credentials": creds,
        }))
        .expect("a health report")
    }

    /// An error a check can end with (its words are what the tray shows).
    fn refused(name: &str) -> crate::companion::error::CompanionError {
        crate::companion::error::CompanionError::UnknownAgent {
            name: name.into(),
            known: "none".into(),
        }
    }

    fn credential_event(agent: &str, c: CredentialHealth) -> WatchEvent {
        WatchEvent::Credential {
            agent: agent.into(),
            credential: c,
            previous: None,
        }
    }

    #[test]
    fn paired_agents_start_connecting_with_nothing_known() {
        let s = Snapshot::connecting(["studio", "lab"]);
        assert_eq!(s.agents.len(), 2);
        assert!(s
            .agents
            .iter()
            .all(|a| a.reachability == Reachability::Connecting && a.credentials.is_empty()));
    }

    #[test]
    fn news_about_a_credential_means_the_agent_answered() {
        let mut s = Snapshot::connecting(["studio"]);
        assert!(s.apply(
            &credential_event("studio", cred("youtube", CredentialState::Ok)),
            now()
        ));
        assert_eq!(s.agents[0].reachability, Reachability::Reachable);
        // A second event for the same credential replaces it instead of adding a row.
        s.apply(
            &credential_event("studio", cred("youtube", CredentialState::Dead)),
            now(),
        );
        assert_eq!(s.agents[0].credentials.len(), 1);
        assert_eq!(s.agents[0].credentials[0].state, CredentialState::Dead);
        // An agent that was unreachable stays so until contact itself says otherwise.
        s.agents[0].reachability = Reachability::Unreachable {
            since: now(),
            error: "x".into(),
        };
        s.apply(
            &credential_event("studio", cred("youtube", CredentialState::Ok)),
            now(),
        );
        assert!(matches!(
            s.agents[0].reachability,
            Reachability::Unreachable { .. }
        ));
    }

    #[test]
    fn an_unknown_agent_is_added_by_its_first_credential_and_removals_take_rows_away() {
        let mut s = Snapshot::default();
        s.apply(
            &credential_event("lab", cred("x", CredentialState::Ok)),
            now(),
        );
        s.apply(
            &credential_event("lab", cred("y", CredentialState::Ok)),
            now(),
        );
        assert_eq!(s.agents[0].name, "lab");
        let removed = WatchEvent::Removed {
            agent: "lab".into(),
            credential: "x".into(),
        };
        assert!(s.apply(&removed, now()));
        let names: Vec<&str> = s.agents[0]
            .credentials
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["y"]);
        // Events for agents that are not shown change nothing.
        let gone = WatchEvent::Removed {
            agent: "far".into(),
            credential: "x".into(),
        };
        assert!(!s.apply(&gone, now()));
        let click = WatchEvent::ReauthRequested {
            agent: "lab".into(),
            credential: "y".into(),
        };
        assert!(!s.apply(&click, now()));
    }

    #[test]
    fn the_vault_health_is_kept_per_agent() {
        let mut s = Snapshot::connecting(["studio"]);
        let vault: VaultHealth = serde_json::from_value(serde_json::json!({
            "state": "degraded", "since": now(), "locations_ok": 1, "locations_total": 2,
            "failing": [], "repairs": 0, "last_repair": null
        }))
        .unwrap();
        let ev = WatchEvent::Vault {
            agent: "studio".into(),
            vault: vault.clone(),
        };
        assert!(s.apply(&ev, now()));
        assert_eq!(s.agents[0].vault, Some(vault));
    }

    #[test]
    fn a_short_failure_streak_keeps_the_last_known_reachability() {
        let failing = ContactState::Failing {
            since: Local::now(),
            message: "refused".into(),
        };
        assert_eq!(
            reachability(&Reachability::Reachable, &failing, now()),
            Reachability::Reachable
        );
        let gone = ContactState::Unreachable {
            since: Local::now(),
            message: "refused".into(),
        };
        assert!(matches!(
            reachability(&Reachability::Reachable, &gone, now()),
            Reachability::Unreachable { error, .. } if error == "refused"
        ));
        let was = Reachability::Unreachable {
            since: now() - Duration::minutes(9),
            error: "x".into(),
        };
        assert_eq!(
            reachability(&was, &ContactState::Connected, now()),
            Reachability::Reachable
        );
        // A refused device token keeps the moment contact was first lost.
        let refused = ContactState::Unauthorized {
            message: "pair again".into(),
        };
        assert_eq!(
            reachability(&was, &refused, now()),
            Reachability::Unreachable {
                since: now() - Duration::minutes(9),
                error: "pair again".into()
            }
        );
        assert_eq!(
            reachability(&Reachability::Reachable, &refused, now()),
            Reachability::Unreachable {
                since: now(),
                error: "pair again".into()
            }
        );
    }

    #[test]
    fn check_now_replaces_the_agent_or_marks_it_unreachable_since_the_first_failure() {
        let mut s = Snapshot::connecting(["studio"]);
        s.checked(
            "studio",
            Ok(report(vec![cred("youtube", CredentialState::Ok)])),
            now(),
        );
        assert_eq!(s.agents[0].reachability, Reachability::Reachable);
        assert_eq!(s.agents[0].credentials.len(), 1);
        s.checked("studio", Err(refused("studio")), now());
        let later = now() + Duration::minutes(3);
        s.checked("studio", Err(refused("lab")), later);
        assert_eq!(
            s.agents[0].reachability,
            Reachability::Unreachable {
                since: now(),
                error: crate::report::chain(&refused("lab"))
            }
        );
        // The last known credentials stay while it is unreachable.
        assert_eq!(s.agents[0].credentials.len(), 1);
    }

    #[test]
    fn pairing_replaces_the_view_and_unpairing_drops_it_with_its_progress() {
        let mut s = Snapshot::connecting(["studio"]);
        s.upsert("studio", cred("old", CredentialState::Dead), now());
        s.paired(
            "studio",
            Some(report(vec![cred("youtube", CredentialState::Ok)])),
        );
        assert_eq!(s.agents.len(), 1);
        assert_eq!(s.agents[0].credentials[0].name, "youtube");
        assert_eq!(s.agents[0].reachability, Reachability::Reachable);
        s.paired("lab", None);
        assert_eq!(s.agents[1].reachability, Reachability::Connecting);
        s.progress("studio", "youtube", &ReauthProgress::Starting, now());
        s.unpaired("studio");
        assert_eq!(s.agents.len(), 1);
        assert!(s.reauths.is_empty());
    }

    #[test]
    fn a_running_reauth_is_kept_with_its_provider_until_it_ends() {
        let mut s = Snapshot::connecting(["studio"]);
        s.progress("studio", "youtube", &ReauthProgress::Starting, now());
        let target = crate::companion::consent::ConsentTarget {
            server: crate::companion::consent::AuthorizationPin {
                host: "accounts.google.com".into(),
                path: "/auth".into(),
                client_id: "c".into(),
            },
            scopes: vec!["openid".into()],
        };
        s.progress(
            "studio",
            "youtube",
            &ReauthProgress::Opening {
                target: target.clone(),
            },
            now(),
        );
        s.progress(
            "studio",
            "youtube",
            &ReauthProgress::WaitingForBrowser {
                url: "u".into(),
                open_error: None,
            },
            now(),
        );
        assert_eq!(s.reauths.len(), 1, "one line per credential");
        let p = s.reauth("studio", "youtube").expect("running");
        assert_eq!(p.step, Step::Browser);
        assert!(p.step.running());
        assert_eq!(p.target.as_ref(), Some(&target));
        // A new run starts without the old provider.
        s.progress("studio", "youtube", &ReauthProgress::Starting, now());
        assert_eq!(s.reauth("studio", "youtube").unwrap().target, None);
    }

    #[test]
    fn done_brings_the_new_health_and_stays_news_only_until_the_state_moves_on() {
        let mut s = Snapshot::connecting(["studio"]);
        s.upsert("studio", cred("youtube", CredentialState::Dead), now());
        let done = ReauthProgress::Done {
            credential: Box::new(cred("youtube", CredentialState::Ok)),
        };
        s.progress("studio", "youtube", &done, now());
        assert_eq!(s.agents[0].credentials[0].state, CredentialState::Ok);
        assert_eq!(s.reauth("studio", "youtube").unwrap().step, Step::Done);
        // Dead again within a moment: the line stays (it may be the same news, late).
        s.upsert(
            "studio",
            cred("youtube", CredentialState::Dead),
            now() + Duration::seconds(2),
        );
        assert!(s.reauth("studio", "youtube").is_some());
        // Dead again later: "done" is no longer true, so it goes.
        s.upsert(
            "studio",
            cred("youtube", CredentialState::Dead),
            now() + Duration::seconds(30),
        );
        assert!(s.reauth("studio", "youtube").is_none());
    }

    #[test]
    fn a_failure_stays_until_the_next_run() {
        let mut s = Snapshot::connecting(["studio"]);
        let failed = ReauthProgress::Failed {
            message: "you declined".into(),
        };
        s.progress("studio", "youtube", &failed, now());
        s.upsert(
            "studio",
            cred("youtube", CredentialState::Dead),
            now() + Duration::minutes(5),
        );
        let p = s.reauth("studio", "youtube").unwrap();
        assert_eq!((p.step, p.message.as_str()), (Step::Failed, "you declined"));
    }
}
