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
use crate::protocol::{CredentialState, ErrorInfo, Event, LocationHealth, VaultHealth};
use chrono::Utc;
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The owner hears about a wiped output file at most this often (per file).
pub const WIPE_NOTICE_EVERY: Duration = Duration::from_secs(3600);

/// A full reconcile (every record of every location read and checked) runs this often
/// even when the cheap check sees nothing.
pub const FULL_RECONCILE_PERIOD: Duration = Duration::from_secs(600);

/// With the file watch on the vault, the stamp of every stored file is compared only every
/// this many checks (free space still at every one).
pub const WATCHED_STAMP_EVERY: u64 = 12;

/// Something the owner should hear about, waiting for the watch task to send it.
#[derive(Debug)]
enum Pending {
    /// The vault's state changed (ok ↔ degraded, or the set of failing locations).
    Transition {
        previous: CredentialState,
        health: VaultHealth,
    },
    /// A copy or an output was repaired (no state change).
    Repaired(VaultHealth),
}

#[derive(Debug)]
struct State {
    health: VaultHealth,
    pending: Vec<Pending>,
    /// Problems already logged, so a lasting one is logged once.
    logged: BTreeSet<String>,
}

/// The vault's health and the transitions not yet announced.
#[derive(Debug)]
pub struct VaultWatch {
    state: Mutex<State>,
    /// Wakes the watch task when something is pending.
    kick: Notify,
}

fn failing_key(h: &VaultHealth) -> Vec<(String, Option<String>)> {
    h.failing
        .iter()
        .map(|l| (l.name.clone(), l.code.clone()))
        .collect()
}

impl VaultWatch {
    /// The watch over `locations` as the vault opened them, with the repairs made at open.
    pub fn new(locations: &[LocationHealth], repairs_at_open: &[String]) -> VaultWatch {
        let mut health = VaultHealth {
            state: CredentialState::Ok,
            since: Utc::now(),
            locations_ok: 0,
            locations_total: 0,
            failing: Vec::new(),
            repairs: repairs_at_open.len() as u64,
            last_repair: repairs_at_open.last().cloned(),
        };
        apply(&mut health, locations);
        VaultWatch {
            state: Mutex::new(State {
                health,
                pending: Vec::new(),
                logged: BTreeSet::new(),
            }),
            kick: Notify::new(),
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, State> {
        // Only plain data behind the lock: a panic elsewhere leaves it usable.
        self.state.lock()
    }

    /// The vault's health now.
    pub fn health(&self) -> VaultHealth {
        self.lock().health.clone()
    }

    /// Takes the locations' health after a vault operation; a transition is queued.
    pub fn observe(&self, locations: &[LocationHealth]) {
        let mut st = self.lock();
        let before = st.health.clone();
        apply(&mut st.health, locations);
        if failing_key(&before) != failing_key(&st.health) {
            if st.health.state != before.state {
                st.health.since = Utc::now();
            }
            for l in &st.health.failing {
                if !before.failing.iter().any(|b| b.name == l.name) {
                    tracing::warn!(
                        "vault: {} {}: {}",
                        l.name,
                        crate::protocol::location_problem_words(l.code.as_deref()),
                        l.error.as_deref().unwrap_or("no detail")
                    );
                }
            }
            for b in &before.failing {
                if !st.health.failing.iter().any(|l| l.name == b.name) {
                    tracing::info!("vault: {} works again", b.name);
                }
            }
            let health = st.health.clone();
            st.pending.push(Pending::Transition {
                previous: before.state,
                health,
            });
            drop(st);
            self.kick.notify_one();
        }
    }

    /// Counts repairs (lines as in the health report's `repaired`); queued as an event.
    pub fn repaired(&self, lines: &[String]) {
        if lines.is_empty() {
            return;
        }
        let mut st = self.lock();
        st.health.repairs += lines.len() as u64;
        st.health.last_repair = lines.last().cloned();
        let health = st.health.clone();
        st.pending.push(Pending::Repaired(health));
        drop(st);
        self.kick.notify_one();
    }

    /// Logs the problems a reconcile could not fix, each once while it lasts.
    pub fn problems(&self, problems: &[String]) {
        let mut st = self.lock();
        let now: BTreeSet<String> = problems.iter().cloned().collect();
        for p in now.difference(&st.logged) {
            tracing::warn!("vault: {p}");
        }
        st.logged = now;
    }

    fn take_pending(&self) -> Vec<Pending> {
        std::mem::take(&mut self.lock().pending)
    }
}

/// Recomputes `h` from the locations (state, counts, failing list).
fn apply(h: &mut VaultHealth, locations: &[LocationHealth]) {
    h.failing = locations.iter().filter(|l| !l.ok).cloned().collect();
    h.locations_total = locations.len() as u32;
    h.locations_ok = (locations.len() - h.failing.len()) as u32;
    h.state = if h.failing.is_empty() {
        CredentialState::Ok
    } else {
        CredentialState::Degraded
    };
}

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
        let res = tokio::task::spawn_blocking(move || {
            let r = d.vault.check_outputs();
            d.refresh_locations();
            r
        })
        .await;
        match res {
            Ok(Ok(paths)) => self.outputs_restored(&paths),
            Ok(Err(e)) => tracing::warn!("output check failed: {e}"),
            Err(_) => tracing::warn!("output check task failed"),
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
        let res = tokio::task::spawn_blocking(move || {
            let r = job(&d.vault);
            d.refresh_locations();
            r
        })
        .await;
        match res {
            Ok(Ok(Some(report))) => self.take_reconcile_report(&report),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!("vault {what} failed: {e}"),
            Err(_) => tracing::warn!("vault {what} task failed"),
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

    /// Sends `alert` in the background (channels retry on their own schedule, and a slow
    /// SMTP server must not hold up a check); failures are logged per channel.
    pub(in crate::agent) fn send_alert(self: &Arc<Self>, alert: Alert) {
        let Some(alerter) = self.alerter() else {
            return;
        };
        tokio::spawn(async move {
            let report = alerter.send(&alert).await;
            for o in &report.outcomes {
                if let Err(e) = &o.result {
                    tracing::warn!("alert to channel {} failed: {}", o.channel, e.chain());
                }
            }
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(name: &str, ok: bool) -> LocationHealth {
        LocationHealth {
            name: name.into(),
            ok,
            error: (!ok).then(|| format!("no space left on the device holding {name}")),
            code: (!ok).then(|| "no_space".into()),
        }
    }

    #[test]
    fn one_transition_per_change_not_per_check() {
        let w = VaultWatch::new(&[loc("primary /p", true), loc("backup 1 /b", true)], &[]);
        assert_eq!(w.health().state, CredentialState::Ok);
        let full = [loc("primary /p", false), loc("backup 1 /b", true)];
        w.observe(&full);
        w.observe(&full);
        w.observe(&full);
        let p = w.take_pending();
        assert_eq!(p.len(), 1, "{p:?}");
        let h = w.health();
        assert_eq!(h.state, CredentialState::Degraded);
        assert_eq!(h.trouble_summary().unwrap(), "primary /p is full", "{h:?}");
        assert_eq!(
            h.copies_phrase(1),
            "the credential is stored in 1 of 2 places"
        );
        w.observe(&[loc("primary /p", true), loc("backup 1 /b", true)]);
        let p = w.take_pending();
        assert!(
            matches!(&p[..], [Pending::Transition { previous: CredentialState::Degraded, health }] if health.state == CredentialState::Ok),
            "{p:?}"
        );
    }

    #[test]
    fn repairs_are_counted() {
        let w = VaultWatch::new(&[loc("primary /p", true)], &["repaired a".into()]);
        assert_eq!(w.health().repairs, 1);
        w.repaired(&["repaired b".into(), "repaired c".into()]);
        let h = w.health();
        assert_eq!(h.repairs, 3);
        assert_eq!(h.last_repair.as_deref(), Some("repaired c"));
        assert_eq!(h.state, CredentialState::Ok);
    }
}
