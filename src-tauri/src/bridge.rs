//! The app's one handle on the companion core: every command and menu click goes through it.
//!
//! [`Core`] wraps a [`Companion`] and keeps what only the app needs: the latest snapshot
//! of every agent (a `watch` channel the tray and the window follow, fed by the core's
//! watcher), the notification pause, and the cancel handles of running
//! re-authorizations. Work is delegated to `tether::companion`; this file turns its
//! typed errors into [`CommandError`]s and its watch events into snapshots.

use crate::error::CommandError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tether::companion::config::{self, QuietHours};
use tether::companion::consent::ConsentTarget;
use tether::companion::notice::Notice;
use tether::companion::notifier::{
    ActionSender, DesktopNotifier, Notifier, NotifyError, TerminalNotifier,
};
use tether::companion::pair::{PairOptions, PairingView, Replacement};
use tether::companion::policy::ContactState;
use tether::companion::reauth::{Opener, ReauthOptions, ReauthProgress};
use tether::companion::secrets::Backend;
use tether::companion::tray::{AgentView, Reachability};
use tether::companion::watcher::WatchEvent;
use tether::companion::{Companion, CompanionError};
use tether::protocol::CredentialHealth;
use tether::secret::AccessToken;
use tokio::sync::{oneshot, watch};

/// What the window's settings dialog edits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Seconds between health polls.
    pub poll_interval_secs: u64,
    /// Seconds between reminders while a credential stays dead.
    pub reminder_interval_secs: u64,
    /// Quiet hours, if any.
    pub quiet_hours: Option<QuietHours>,
}

/// A step of a running re-authorization, as the window shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Asking the agent for an authorization URL.
    Starting,
    /// The URL passed the checks; the browser opens the provider shown in `target`.
    Opening,
    /// The browser is open at the provider's consent page.
    Browser,
    /// The code came back; the agent exchanges and verifies it.
    Verifying,
    /// The credential works again.
    Done,
    /// It did not work (the message says why).
    Failed,
}

/// Progress of one re-authorization (the `reauth-progress` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Agent name.
    pub agent: String,
    /// Credential name.
    pub credential: String,
    /// Where it is.
    pub step: Step,
    /// The same in words.
    pub message: String,
    /// The consent URL, when the browser could not be opened (the owner opens it by hand).
    pub url: Option<String>,
    /// Where the browser is sent and what is asked for (from the `opening` step on).
    pub target: Option<ConsentTarget>,
}

impl Progress {
    /// The window's view of the core's progress report.
    pub fn of(agent: &str, credential: &str, p: &ReauthProgress) -> Progress {
        let target = match p {
            ReauthProgress::Opening { target } => Some(target.clone()),
            _ => None,
        };
        let (step, message, url) = match p {
            ReauthProgress::Starting => (
                Step::Starting,
                "Asking the agent for a sign-in link…".to_string(),
                None,
            ),
            ReauthProgress::Opening { target } => (
                Step::Opening,
                format!(
                    "Opening {}{} (client {}); it asks for {}.",
                    target.server.host,
                    target.server.path,
                    target.server.client_id,
                    if target.scopes.is_empty() {
                        "the provider's default access".to_string()
                    } else {
                        target.scopes.join(", ")
                    }
                ),
                None,
            ),
            ReauthProgress::WaitingForBrowser {
                open_error: None, ..
            } => (
                Step::Browser,
                "Waiting for you in the browser…".to_string(),
                None,
            ),
            ReauthProgress::WaitingForBrowser {
                url,
                open_error: Some(e),
            } => (
                Step::Browser,
                format!("The browser did not open ({e}); open the sign-in link by hand. Waiting…"),
                Some(url.clone()),
            ),
            ReauthProgress::Verifying => {
                (Step::Verifying, "The agent is verifying…".to_string(), None)
            }
            ReauthProgress::Done { .. } => (Step::Done, "Done: it works again.".to_string(), None),
            ReauthProgress::Failed { message } => (Step::Failed, message.clone(), None),
        };
        Progress {
            agent: agent.into(),
            credential: credential.into(),
            step,
            message,
            url,
            target,
        }
    }
}

/// Something the core asks the app to do (a click on a notification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreRequest {
    /// The owner clicked a dead credential's notification: show it and re-authorize.
    Reauth {
        /// Agent name.
        agent: String,
        /// Credential name.
        credential: String,
    },
}

type Requests = Arc<dyn Fn(CoreRequest) + Send + Sync>;

/// The running watcher's task and the switch that stops it.
struct Running {
    stop: oneshot::Sender<()>,
    done: tauri::async_runtime::JoinHandle<()>,
}

/// The companion core as the app sees it.
pub struct Core {
    companion: Companion,
    opener: Arc<dyn Opener>,
    snapshot: watch::Sender<Vec<AgentView>>,
    paused_until: Arc<Mutex<Option<DateTime<Utc>>>>,
    cancels: Mutex<HashMap<(String, String), oneshot::Sender<()>>>,
    watcher: Mutex<Option<Running>>,
    requests: Mutex<Option<Requests>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these small locks leaves consistent data (plain
    // inserts and removes), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Core {
    /// A core over the companion config in `dir` (device tokens per `$TETHER_SECRETS`),
    /// opening consent pages in the system browser (which honours `$BROWSER`).
    pub fn open(dir: PathBuf) -> Result<Core, CommandError> {
        let backend = Backend::from_env()
            .map_err(|e| CommandError::new("secrets", tether::report::chain(&e)))?;
        Core::with(
            Companion::open(dir, backend),
            Arc::new(tether::companion::reauth::SystemBrowser),
        )
    }

    /// A core over `companion`, opening consent pages with `opener`.
    pub fn with(companion: Companion, opener: Arc<dyn Opener>) -> Result<Core, CommandError> {
        let cfg = companion.config().map_err(err)?;
        let initial = cfg.agents.iter().map(|a| connecting(&a.name)).collect();
        Ok(Core {
            companion,
            opener,
            snapshot: watch::channel(initial).0,
            paused_until: Arc::new(Mutex::new(None)),
            cancels: Mutex::new(HashMap::new()),
            watcher: Mutex::new(None),
            requests: Mutex::new(None),
        })
    }

    /// The companion's platform config directory (`$TETHER_CONFIG_DIR` first).
    pub fn default_dir() -> Result<PathBuf, CommandError> {
        config::config_dir().map_err(|e| CommandError::new("config", tether::report::chain(&e)))
    }

    /// The config directory in use.
    pub fn config_dir(&self) -> &Path {
        self.companion.dir()
    }

    /// Follows the snapshots.
    pub fn subscribe(&self) -> watch::Receiver<Vec<AgentView>> {
        self.snapshot.subscribe()
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Vec<AgentView> {
        self.snapshot.borrow().clone()
    }

    /// What opens pages (the system browser, or a test's stand-in).
    pub fn opener(&self) -> Arc<dyn Opener> {
        self.opener.clone()
    }

    /// Starts the core's watcher (desktop notifications, with the pause applied) inside
    /// the app's async runtime; `requests` receives notification clicks.
    pub fn start(self: &Arc<Self>, requests: Requests) {
        *lock(&self.requests) = Some(requests);
        let me = self.clone();
        tauri::async_runtime::spawn(async move { me.restart_watcher().await });
    }

    /// (Re)spawns the watcher over the agents now in the config (after pairing changes).
    async fn restart_watcher(self: &Arc<Self>) {
        let old = lock(&self.watcher).take();
        if let Some(old) = old {
            let _ = old.stop.send(());
            let _ = old.done.await;
        }
        if lock(&self.requests).is_none() {
            return; // Not started (tests that only drive commands).
        }
        let notifier: Arc<dyn Notifier> = Arc::new(PausableNotifier {
            inner: desktop_notifier(),
            paused_until: self.paused_until.clone(),
        });
        // No opener: a click comes back as `ReauthRequested` and the app runs it, so the
        // window can show the progress and offer "Cancel".
        let mut watcher = match self.companion.watch(notifier, None) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!("cannot start watching agents: {e}");
                return;
            }
        };
        let (stop, mut stop_rx) = oneshot::channel::<()>();
        let me = self.clone();
        let done = tauri::async_runtime::spawn(async move {
            loop {
                tokio::select! {
                    ev = watcher.next_event() => match ev {
                        Some(ev) => me.apply(ev),
                        None => break,
                    },
                    _ = &mut stop_rx => {
                        watcher.shutdown().await;
                        break;
                    }
                }
            }
        });
        *lock(&self.watcher) = Some(Running { stop, done });
    }

    fn apply(&self, ev: WatchEvent) {
        match ev {
            WatchEvent::Credential {
                agent, credential, ..
            }
            | WatchEvent::Updated { agent, credential } => self.upsert(&agent, credential),
            WatchEvent::Removed { agent, credential } => self.snapshot.send_modify(|s| {
                if let Some(a) = s.iter_mut().find(|a| a.name == agent) {
                    a.credentials.retain(|c| c.name != credential);
                }
            }),
            WatchEvent::Contact { agent, state } => self.snapshot.send_modify(|s| {
                if let Some(a) = s.iter_mut().find(|a| a.name == agent) {
                    a.reachability = reachability(&a.reachability, &state);
                }
            }),
            WatchEvent::Vault { agent, vault } => self.snapshot.send_modify(|s| {
                if let Some(a) = s.iter_mut().find(|a| a.name == agent) {
                    a.vault = Some(vault);
                }
            }),
            WatchEvent::ReauthRequested { agent, credential } => {
                let requests = lock(&self.requests).clone();
                if let Some(r) = requests {
                    r(CoreRequest::Reauth { agent, credential });
                }
            }
            WatchEvent::NotifyFailed { agent, message } => {
                tracing::warn!("notification for agent {agent} failed: {message}")
            }
            // Stream and notification diagnostics; re-auth progress comes from our own runs.
            _ => {}
        }
    }

    fn upsert(&self, agent: &str, credential: CredentialHealth) {
        self.snapshot.send_modify(|s| {
            let a = match s.iter().position(|a| a.name == agent) {
                Some(i) => &mut s[i],
                None => {
                    s.push(connecting(agent));
                    s.last_mut().expect("invariant: just pushed")
                }
            };
            // News about a credential means the agent answered.
            if a.reachability == Reachability::Connecting {
                a.reachability = Reachability::Reachable;
            }
            match a.credentials.iter_mut().find(|c| c.name == credential.name) {
                Some(c) => *c = credential,
                None => a.credentials.push(credential),
            }
        });
    }

    /// Asks every agent for its health now and updates the snapshot.
    pub async fn check_now(&self) -> Result<(), CommandError> {
        let cfg = self.companion.config().map_err(err)?;
        for entry in cfg.agents {
            let result = match self.companion.client(&entry.name) {
                Ok(c) => c.health().await.map_err(|e| tether::report::chain(&e)),
                Err(e) => Err(tether::report::chain(&e)),
            };
            match result {
                Ok(report) => self.snapshot.send_modify(|s| {
                    let view = AgentView {
                        name: entry.name.clone(),
                        reachability: Reachability::Reachable,
                        credentials: report.credentials,
                        vault: report.vault,
                    };
                    match s.iter_mut().find(|a| a.name == entry.name) {
                        Some(a) => *a = view,
                        None => s.push(view),
                    }
                }),
                Err(error) => self.snapshot.send_modify(|s| {
                    if let Some(a) = s.iter_mut().find(|a| a.name == entry.name) {
                        let since = match &a.reachability {
                            Reachability::Unreachable { since, .. } => *since,
                            _ => Utc::now(),
                        };
                        a.reachability = Reachability::Unreachable { since, error };
                    }
                }),
            }
        }
        Ok(())
    }

    /// Redeems a pairing code (`tether://pair?...`). An agent already paired at the same
    /// URL (or under the same name) is replaced only with `replace` (the window asks the
    /// owner first, showing old and new URL and fingerprint: the `confirm_replace` error);
    /// a name clash seen only after the code is spent keeps both, the new one under a
    /// unique name.
    pub async fn pair(
        self: &Arc<Self>,
        code: &str,
        replace: bool,
    ) -> Result<PairResult, CommandError> {
        let mut asked: Option<Replacement> = None;
        let result = self
            .companion
            .pair(code.trim(), &PairOptions::default(), &mut |r| {
                if r.redeemed {
                    return false;
                }
                asked = Some(r.clone());
                replace
            })
            .await;
        let paired = match (result, asked) {
            (Err(CompanionError::NotReplaced { .. }), Some(r)) => {
                return Err(CommandError::new("confirm_replace", replace_question(&r)))
            }
            (r, _) => r.map_err(err)?,
        };
        let name = paired.agent.name.clone();
        let out = PairResult {
            name: name.clone(),
            notice: paired.revoke_notice().or_else(|| {
                paired.kept_beside.as_ref().map(|o| {
                    format!(
                        "Agent {} at {} was already paired and is kept; this one is {}.",
                        o.name, o.url, name
                    )
                })
            }),
        };
        self.snapshot.send_modify(|s| {
            s.retain(|a| a.name != name);
            let mut view = connecting(&name);
            if let Some(h) = paired.health {
                view.reachability = Reachability::Reachable;
                view.credentials = h.credentials;
            }
            s.push(view);
        });
        self.restart_watcher().await;
        Ok(out)
    }

    /// Every pairing with its URL and pinned fingerprint (the dashboard shows them).
    pub fn pairings(&self) -> Vec<PairingView> {
        self.companion.pairings().unwrap_or_default()
    }

    /// Forgets an agent on this computer (config entry and device token).
    pub async fn unpair(self: &Arc<Self>, agent: &str) -> Result<(), CommandError> {
        self.companion.unpair(agent).map_err(err)?;
        self.snapshot.send_modify(|s| s.retain(|a| a.name != agent));
        self.restart_watcher().await;
        Ok(())
    }

    /// Runs the one-click re-authorization of `agent/credential`, reporting each step;
    /// [`Core::cancel_reauth`] ends the wait for the browser.
    pub async fn reauth(
        &self,
        agent: &str,
        credential: &str,
        accept_new_server: bool,
        progress: impl Fn(Progress) + Send + Sync + 'static,
    ) -> Result<CredentialHealth, CommandError> {
        check_name(agent, credential)?;
        let key = (agent.to_string(), credential.to_string());
        let (tx, rx) = oneshot::channel();
        {
            let mut cancels = lock(&self.cancels);
            if cancels.contains_key(&key) {
                return Err(CommandError::new(
                    "already_running",
                    format!("{agent} · {credential} is already being re-authorized; finish it in the browser or cancel it"),
                ));
            }
            cancels.insert(key.clone(), tx);
        }
        let report = |p: ReauthProgress| {
            if let ReauthProgress::Done { credential: c } = &p {
                // `CredentialHealth::clone` derefs whatever box the core wraps it in.
                self.upsert(agent, CredentialHealth::clone(c));
            }
            progress(Progress::of(agent, credential, &p));
        };
        let cancel = async move {
            // Fires on `cancel_reauth`; the sender is removed only after the run ends.
            let _ = rx.await;
        };
        let result = self
            .companion
            .reauth_with(
                agent,
                credential,
                self.opener.as_ref(),
                ReauthOptions {
                    accept_new_server,
                    ..ReauthOptions::default()
                },
                cancel,
                &report,
            )
            .await;
        lock(&self.cancels).remove(&key);
        result.map_err(|e| {
            let e = err(e);
            // Errors before the run started are not reported as progress by the core.
            progress(Progress::of(
                agent,
                credential,
                &ReauthProgress::Failed {
                    message: e.message.clone(),
                },
            ));
            e
        })
    }

    /// Cancels a running re-authorization of `agent/credential`.
    pub fn cancel_reauth(&self, agent: &str, credential: &str) -> Result<(), CommandError> {
        let key = (agent.to_string(), credential.to_string());
        match lock(&self.cancels).remove(&key) {
            Some(tx) => {
                let _ = tx.send(());
                Ok(())
            }
            None => Err(CommandError::new(
                "not_running",
                format!("no re-authorization of {agent} · {credential} is running"),
            )),
        }
    }

    /// Pushes a new token for a paste-kind credential; the agent verifies it first.
    pub async fn paste(
        &self,
        agent: &str,
        credential: &str,
        token: AccessToken,
    ) -> Result<CredentialHealth, CommandError> {
        check_name(agent, credential)?;
        if token.secret().trim().is_empty() {
            return Err(CommandError::new(
                "empty_secret",
                format!("the new token for {agent} · {credential} is empty; paste the whole token"),
            ));
        }
        let health = self
            .companion
            .paste(agent, credential, token)
            .await
            .map_err(err)?;
        self.upsert(agent, health.clone());
        Ok(health)
    }

    /// The settings the window edits.
    pub fn settings(&self) -> Result<Settings, CommandError> {
        let cfg = self.companion.config().map_err(err)?;
        Ok(Settings {
            poll_interval_secs: cfg.poll_interval_secs,
            reminder_interval_secs: cfg.reminder_interval_secs,
            quiet_hours: cfg.quiet_hours,
        })
    }

    /// Validates and saves settings (nothing is written when a value is out of range),
    /// then restarts the watcher so the new timing applies at once.
    pub fn save_settings(self: &Arc<Self>, s: Settings) -> Result<(), CommandError> {
        if !(10..=86_400).contains(&s.poll_interval_secs) {
            return Err(CommandError::new(
                "bad_input",
                format!(
                    "check interval {} s is out of range; use 10 to 86400 seconds",
                    s.poll_interval_secs
                ),
            ));
        }
        if !(900..=7 * 86_400).contains(&s.reminder_interval_secs) {
            return Err(CommandError::new(
                "bad_input",
                format!(
                    "reminder interval {} s is out of range; use 15 minutes to 7 days",
                    s.reminder_interval_secs
                ),
            ));
        }
        let mut cfg = self.companion.config().map_err(err)?;
        cfg.poll_interval_secs = s.poll_interval_secs;
        cfg.reminder_interval_secs = s.reminder_interval_secs;
        cfg.quiet_hours = s.quiet_hours;
        let secrets = self.companion.secrets();
        cfg.save(
            self.companion.config_path(),
            &secrets.agents_in_file(),
            secrets.file(),
        )
        .map_err(|e| err(CompanionError::from(e)))?;
        let me = self.clone();
        tauri::async_runtime::spawn(async move { me.restart_watcher().await });
        Ok(())
    }

    /// Pauses notifications until `until` (`None` resumes them).
    pub fn pause(&self, until: Option<DateTime<Utc>>) {
        *lock(&self.paused_until) = until;
    }

    /// When the current pause ends, if one is active.
    pub fn paused_until(&self) -> Option<DateTime<Utc>> {
        lock(&self.paused_until).filter(|t| *t > Utc::now())
    }
}

/// What [`Core::pair`] tells the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairResult {
    /// The new agent's local name.
    pub name: String,
    /// What the owner should do or know now (revoke the replaced device; both kept).
    pub notice: Option<String>,
}

/// The question the window asks before replacing a pairing.
fn replace_question(r: &Replacement) -> String {
    let fp = |f: &Option<String>| {
        f.as_deref()
            .map_or("checked by certificate authorities".to_string(), |f| {
                format!("sha256 {f}")
            })
    };
    format!(
        "agent {} is already paired at {} (certificate {}). Replace it with {} (certificate {})?",
        r.existing.name,
        r.existing.url,
        fp(&r.existing.fingerprint),
        r.new_url,
        fp(&r.new_fingerprint)
    )
}

fn connecting(name: &str) -> AgentView {
    AgentView {
        name: name.into(),
        reachability: Reachability::Connecting,
        credentials: Vec::new(),
        vault: None,
    }
}

/// The tray's reachability for the watcher's contact state. A short failure streak
/// (`Failing`) keeps the last known state, so one lost poll does not turn the tray grey.
fn reachability(before: &Reachability, state: &ContactState) -> Reachability {
    let lost = |since: DateTime<Utc>, error: &str| Reachability::Unreachable {
        since,
        error: error.to_string(),
    };
    match state {
        ContactState::Connected => Reachability::Reachable,
        ContactState::Failing { .. } => before.clone(),
        ContactState::Unreachable { since, message } => lost(since.with_timezone(&Utc), message),
        ContactState::Unauthorized { message } | ContactState::ProtocolMismatch { message } => {
            let since = match before {
                Reachability::Unreachable { since, .. } => *since,
                _ => Utc::now(),
            };
            lost(since, message)
        }
    }
}

fn check_name(agent: &str, credential: &str) -> Result<(), CommandError> {
    if tether::protocol::valid_credential_name(credential) {
        Ok(())
    } else {
        Err(CommandError::new(
            "bad_input",
            format!("`{credential}` on agent {agent} is not a credential name: use lower-case letters, digits, `_` and `-`"),
        ))
    }
}

/// The core's error as the window receives it.
pub fn err(e: CompanionError) -> CommandError {
    CommandError::new(e.code(), tether::report::chain(&e))
}

/// Desktop notifications when a notification server answers, else log lines.
fn desktop_notifier() -> Arc<dyn Notifier> {
    match DesktopNotifier::new() {
        Ok(n) => Arc::new(n),
        Err(e) => {
            tracing::warn!("{e}; notifications go to the log instead");
            Arc::new(TerminalNotifier::new(Box::new(std::io::stderr()), false))
        }
    }
}

/// Drops notifications while the owner has paused them; the tray still shows every state.
struct PausableNotifier {
    inner: Arc<dyn Notifier>,
    paused_until: Arc<Mutex<Option<DateTime<Utc>>>>,
}

impl Notifier for PausableNotifier {
    fn notify(&self, notice: &Notice, actions: &ActionSender) -> Result<(), NotifyError> {
        let paused = lock(&self.paused_until).is_some_and(|t| t > Utc::now());
        if paused {
            tracing::info!("notification paused: {}", notice.summary);
            return Ok(());
        }
        self.inner.notify(notice, actions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Local;

    #[test]
    fn a_short_failure_streak_keeps_the_last_known_reachability() {
        let failing = ContactState::Failing {
            since: Local::now(),
            message: "refused".into(),
        };
        assert_eq!(
            reachability(&Reachability::Reachable, &failing),
            Reachability::Reachable
        );
        let gone = ContactState::Unreachable {
            since: Local::now(),
            message: "refused".into(),
        };
        assert!(matches!(
            reachability(&Reachability::Reachable, &gone),
            Reachability::Unreachable { error, .. } if error == "refused"
        ));
        assert_eq!(
            reachability(&gone_view(), &ContactState::Connected),
            Reachability::Reachable
        );
    }

    fn gone_view() -> Reachability {
        Reachability::Unreachable {
            since: Utc::now(),
            error: "x".into(),
        }
    }

    #[test]
    fn progress_words_match_the_issue() {
        let p = Progress::of(
            "studio",
            "youtube",
            &ReauthProgress::WaitingForBrowser {
                url: "u".into(),
                open_error: None,
            },
        );
        assert_eq!(p.message, "Waiting for you in the browser…");
        assert_eq!(p.url, None);
        let p = Progress::of("studio", "youtube", &ReauthProgress::Verifying);
        assert_eq!(p.message, "The agent is verifying…");
        let p = Progress::of(
            "studio",
            "youtube",
            &ReauthProgress::WaitingForBrowser {
                url: "https://idp/auth".into(),
                open_error: Some("no browser".into()),
            },
        );
        assert_eq!(p.url.as_deref(), Some("https://idp/auth"));
    }
}
