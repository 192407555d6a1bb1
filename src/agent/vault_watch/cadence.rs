//! The vault's own cadence and its health as the owner hears it.
//!
//! - [`run`]: every `vault_check_interval` (default 5 s) the vault's cheap check
//!   ([`Vault::quick_check`](crate::vault::Vault::quick_check): free space, a stamp of the
//!   stored files) runs, and when it sees a change or a location in trouble, a full
//!   reconcile repairs at once; a full reconcile also runs every
//!   [`FULL_RECONCILE_PERIOD`]. Nothing here depends on the alert reminder interval.
//! - [`VaultWatch`]: the vault's [`VaultHealth`] (`degraded` while a location fails),
//!   kept current after every vault operation; each transition is sent once as an
//!   [`Event::VaultChanged`] and as a vault alert (trouble, recovery), and a new repair is
//!   sent as an event too.
//!
//! - the output check ([`Daemon::check_outputs`]): wiped or damaged output files are
//!   re-rendered, and the owner hears about each at most every [`WIPE_NOTICE_EVERY`]:
//!   a vault event (the companion's notice) and an `output_wiped` alert.
//!
//! Problems that persist (a full disk) are logged when they appear and when they go, not
//! at every check.

use crate::agent::alerts::{Alert, AlertKind};
use crate::agent::daemon::Daemon;
use crate::agent::vault_watch::state::Pending;
use crate::protocol::{CredentialState, ErrorInfo, Event};
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The owner hears about a wiped output file at most this often (per file).
pub const WIPE_NOTICE_EVERY: Duration = Duration::from_secs(3600);

/// A full reconcile (every record of every location read and checked) runs this often
/// even when the cheap check sees nothing.
pub const FULL_RECONCILE_PERIOD: Duration = Duration::from_secs(600);

/// With the file watch on the vault, the stamp of every stored file is compared only every
/// this many checks (free space still at every one).
pub const WATCHED_STAMP_EVERY: u64 = 12;

impl Daemon {
    /// True (and noted) when the owner has not heard about a wipe of `path` in the last
    /// [`WIPE_NOTICE_EVERY`].
    fn wipe_notice_due(&self, path: &std::path::Path) -> bool {
        let mut seen = self.wipe_notices.lock();
        let now = std::time::Instant::now();
        match seen.get(path) {
            Some(t) if now.duration_since(*t) < WIPE_NOTICE_EVERY => false,
            _ => {
                seen.insert(path.to_path_buf(), now);
                true
            }
        }
    }

    /// Runs the vault's cheap output check (wiped or corrupt files are re-rendered).
    pub async fn check_outputs(self: &Arc<Self>) {
        let d = self.clone();
        let res = self
            .vault_task("output check failed", move |v| {
                let r = v.check_outputs();
                d.refresh_locations();
                r
            })
            .await;
        match res {
            Ok(paths) => self.outputs_restored(&paths),
            Err(f) => tracing::warn!("{}", crate::report::chain(&f)),
        }
    }

    /// Tells the owner that the output files at `paths` were wiped or damaged and are
    /// restored: every time in the log, at most once per [`WIPE_NOTICE_EVERY`] per file
    /// as a vault event (the companion's notice) and an alert on every channel.
    fn outputs_restored(self: &Arc<Self>, paths: &[std::path::PathBuf]) {
        if paths.is_empty() {
            return;
        }
        let at = chrono::Local::now().format("%H:%M");
        let outputs = self.vault.outputs();
        for p in paths {
            let line = format!(
                "{} was wiped or damaged at {at} and restored from the vault",
                p.display()
            );
            // Something on the server keeps wiping it: the owner hears it once an hour per
            // file, the log every time.
            if !self.wipe_notice_due(p) {
                tracing::info!("vault: {line}");
                continue;
            }
            // One event (and so one notice) per file: an event names one repair.
            self.add_repaired([line]);
            let credential = outputs
                .iter()
                .find(|o| &o.path == p)
                .map(|o| o.credential.clone())
                .unwrap_or_default();
            let mut alert = Alert::vault(
                &self.config.name,
                AlertKind::OutputWiped,
                p.display().to_string(),
                None,
                Utc::now(),
            );
            alert.credential = credential;
            self.send_alert(alert);
        }
    }

    /// Reconciles every vault location and records what was repaired.
    pub async fn reconcile(self: &Arc<Self>) {
        self.vault_job("reconcile", |v| v.reconcile().map(Some))
            .await;
    }

    /// Runs the vault's cheap check; a change or a location in trouble leads to a full
    /// reconcile (and its repairs) at once.
    pub async fn quick_check(self: &Arc<Self>) {
        self.vault_job("check", |v| v.quick_check()).await;
    }

    /// Runs `job` on the vault in a blocking task, with a `writes` guard, then takes the
    /// locations' health and what a reconcile repaired; failures are logged as `what`.
    pub(crate) async fn vault_job(
        self: &Arc<Self>,
        what: &'static str,
        job: impl FnOnce(
                &crate::vault::Vault,
            )
                -> Result<Option<crate::vault::ReconcileReport>, crate::vault::VaultError>
            + Send
            + 'static,
    ) {
        let d = self.clone();
        let _w = self.writes.read().await;
        let res = self
            .vault_task(format!("vault {what} failed"), move |v| {
                let r = job(v);
                d.refresh_locations();
                r
            })
            .await;
        match res {
            Ok(Some(report)) => self.take_reconcile_report(&report),
            Ok(None) => {}
            Err(f) => tracing::warn!("{}", crate::report::chain(&f)),
        }
    }

    /// Free space only; a location in trouble leads to [`quick_check`](Self::quick_check).
    pub async fn space_check(self: &Arc<Self>) {
        let d = self.clone();
        let troubled = tokio::task::spawn_blocking(move || d.vault.space_check())
            .await
            .unwrap_or(true);
        if troubled {
            self.quick_check().await;
        }
    }

    /// Records what a reconcile repaired, and logs what it could not (once per problem).
    pub(crate) fn take_reconcile_report(self: &Arc<Self>, report: &crate::vault::ReconcileReport) {
        let mut lines: Vec<String> = report.repairs.iter().map(|r| r.to_string()).collect();
        lines.extend(report.quarantined.iter().map(|q| q.to_string()));
        self.add_repaired(lines);
        // An output the full reconcile had to re-render was wiped like any other.
        self.outputs_restored(&report.outputs);
        self.vault_watch.problems(&report.problems);
    }

    fn announce(self: &Arc<Self>, p: Pending) {
        let agent = self.config.name.clone();
        let creds = self.credentials.len();
        match p {
            Pending::Repaired(vault) => {
                let _ = self.events.send(Event::VaultChanged { agent, vault });
            }
            Pending::Transition { previous, health } => {
                let _ = self.events.send(Event::VaultChanged {
                    agent: agent.clone(),
                    vault: health.clone(),
                });
                let alert = match health.trouble_summary() {
                    Some(summary) => {
                        let error = health.failing.first().map(|l| ErrorInfo {
                            code: l.code.clone().unwrap_or_else(|| "io".into()),
                            description: l.error.clone().unwrap_or_default(),
                        });
                        Alert::vault(
                            &agent,
                            AlertKind::VaultTrouble,
                            format!("{summary} — {}", health.copies_phrase(creds)),
                            error,
                            health.since,
                        )
                    }
                    None if previous != CredentialState::Ok => Alert::vault(
                        &agent,
                        AlertKind::VaultRecovered,
                        health.copies_phrase(creds),
                        None,
                        health.since,
                    ),
                    None => return,
                };
                self.send_alert(alert);
            }
        }
    }
}

/// Runs the vault's cadence until shutdown: the cheap check every `period`, a full
/// reconcile every [`FULL_RECONCILE_PERIOD`], and the announcement of every transition.
pub async fn run(daemon: Arc<Daemon>, period: Duration) {
    let mut shutdown = std::pin::pin!(daemon.shutdown_signal());
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut last_full = Instant::now();
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = daemon.vault_watch.kick.notified() => {}
            _ = tick.tick() => {
                ticks += 1;
                if last_full.elapsed() >= FULL_RECONCILE_PERIOD {
                    last_full = Instant::now();
                    daemon.reconcile().await;
                } else if daemon.vault_watched.load(std::sync::atomic::Ordering::Relaxed)
                    && !ticks.is_multiple_of(WATCHED_STAMP_EVERY)
                {
                    // The file watch reports changes to stored files at once: between
                    // stamp checks only free space (which inotify cannot see) is looked at.
                    daemon.space_check().await;
                } else {
                    daemon.quick_check().await;
                }
            }
        }
        for p in daemon.vault_watch.take_pending() {
            daemon.announce(p);
        }
    }
}
