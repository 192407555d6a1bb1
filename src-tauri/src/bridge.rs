//! The app's one handle on the companion core: every command and menu click goes through it.
//!
//! [`Core`] wraps a [`Companion`] and holds what the app shares between its parts: the
//! [`Snapshot`] (a `watch` channel the tray and the window follow, fed by the core's
//! watcher), the notification [`Pause`], and the running watcher. Every decision is the
//! core's (`tether::companion`: snapshot updates, re-auth guard, checks, settings bounds);
//! this file only wires them together and turns errors into [`CommandError`]s. Its
//! re-authorization commands are in `reauth.rs`, the watcher's task in `watching.rs`.

use crate::error::CommandError;
use chrono::{Local, Utc};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tether::companion::dashboard::Dashboard;
use tether::companion::pair::PairResult;
use tether::companion::policy::Pause;
use tether::companion::reauth::Opener;
use tether::companion::settings::Settings;
use tether::companion::snapshot::Snapshot;
use tether::companion::{config, secrets::Backend, Companion, CompanionError};
use tokio::sync::{oneshot, watch};

/// Something the core asks the app to do: a click on a dead credential's notification
/// (show it and re-authorize).
pub type Requests = Arc<dyn Fn(String, String) + Send + Sync>;

/// The companion core as the app sees it.
pub struct Core {
    pub(crate) companion: Companion,
    pub(crate) opener: Arc<dyn Opener>,
    pub(crate) snapshot: watch::Sender<Snapshot>,
    pub(crate) pause: Pause,
    pub(crate) watcher: Mutex<Option<Running>>,
    pub(crate) requests: Mutex<Option<Requests>>,
}

/// The running watcher's task and the switch that stops it. Here, beside the field that
/// holds it, because `watching.rs` builds on [`Core`]; the task itself is there.
pub(crate) struct Running {
    pub(crate) stop: oneshot::Sender<()>,
    pub(crate) done: tauri::async_runtime::JoinHandle<()>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain replacements under these locks: a panic elsewhere leaves them consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The core's error as the window receives it.
pub fn err(e: CompanionError) -> CommandError {
    CommandError::new(e.code(), tether::report::chain(&e))
}

impl Core {
    /// A core over the companion config in `dir` (device tokens per `$TETHER_SECRETS`),
    /// opening pages in the system browser (which honours `$BROWSER`).
    pub fn open(dir: PathBuf) -> Result<Core, CommandError> {
        let backend = Backend::from_env().map_err(|e| err(e.into()))?;
        let opener = Arc::new(tether::companion::reauth::SystemBrowser);
        Core::with(Companion::open(dir, backend), opener)
    }

    /// A core over `companion`, opening pages with `opener`.
    pub fn with(companion: Companion, opener: Arc<dyn Opener>) -> Result<Core, CommandError> {
        let cfg = companion.config().map_err(err)?;
        let snapshot = Snapshot::connecting(cfg.agents.iter().map(|a| a.name.as_str()));
        Ok(Core {
            companion,
            opener,
            snapshot: watch::channel(snapshot).0,
            pause: Pause::default(),
            watcher: Mutex::new(None),
            requests: Mutex::new(None),
        })
    }

    /// The companion's platform config directory (`$TETHER_CONFIG_DIR` first).
    pub fn default_dir() -> Result<PathBuf, CommandError> {
        config::config_dir().map_err(|e| err(e.into()))
    }

    /// The config directory in use.
    pub fn config_dir(&self) -> &Path {
        self.companion.dir()
    }

    /// Follows the snapshots.
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.snapshot.subscribe()
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    /// What opens pages (the system browser, or a test's stand-in).
    pub fn opener(&self) -> Arc<dyn Opener> {
        self.opener.clone()
    }

    /// The owner's notification pause (the tray menu sets it, the notifier obeys it).
    pub fn pause(&self) -> &Pause {
        &self.pause
    }

    /// What the window draws now.
    pub fn dashboard(&self) -> Dashboard {
        let now = Utc::now();
        let pairings = self.companion.pairings().unwrap_or_default();
        let (snapshot, offset) = (self.snapshot(), *Local::now().offset());
        Dashboard::build(&snapshot, self.pause.until(now), pairings, now, offset)
    }

    /// Asks every agent for its health now and updates the snapshot.
    pub async fn check_now(&self) -> Result<(), CommandError> {
        for (agent, result) in self.companion.check_all().await.map_err(err)? {
            self.snapshot
                .send_modify(|s| s.checked(&agent, result, Utc::now()));
        }
        Ok(())
    }

    /// Redeems a pairing code; see [`Companion::pair_or_ask`] (`confirm_replace`).
    pub async fn pair(
        self: &Arc<Self>,
        code: &str,
        replace: bool,
    ) -> Result<PairResult, CommandError> {
        let (out, health) = self
            .companion
            .pair_or_ask(code, replace)
            .await
            .map_err(err)?;
        self.snapshot.send_modify(|s| s.paired(&out.name, health));
        self.restart_watcher().await;
        Ok(out)
    }

    /// Forgets an agent on this computer (config entry and device token).
    pub async fn unpair(self: &Arc<Self>, agent: &str) -> Result<(), CommandError> {
        self.companion.unpair(agent).map_err(err)?;
        self.snapshot.send_modify(|s| s.unpaired(agent));
        self.restart_watcher().await;
        Ok(())
    }

    /// The settings the window edits.
    pub fn settings(&self) -> Result<Settings, CommandError> {
        self.companion.settings().map_err(err)
    }

    /// Checks and saves settings, then restarts the watcher so the new timing applies.
    pub fn save_settings(self: &Arc<Self>, s: Settings) -> Result<(), CommandError> {
        self.companion.save_settings(&s).map_err(err)?;
        let me = self.clone();
        tauri::async_runtime::spawn(async move { me.restart_watcher().await });
        Ok(())
    }
}
