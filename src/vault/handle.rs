//! The [`Vault`] handle: its locations' state, open, read, reconcile and health. Commits
//! are in `commit.rs` and output rendering in `render.rs`, both `impl Vault` blocks over
//! the state here.

use super::config::VaultConfig;
use super::error::VaultError;
use super::history::{self, HistoryEntry};
use super::loc::Loc;
use super::location::{self, DirLocation, Location, LocationError};
use super::openbao;
use super::output::OutputSpec;
use super::placement;
use super::reconcile;
use super::record::Record;
use super::report::ReconcileReport;
use super::scan;
use crate::protocol::{valid_credential_name, LocationHealth};
use parking_lot::{Mutex, MutexGuard};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

/// A location with less free space than this counts as full: a few records' worth, so
/// the owner hears about it before a commit fails there.
pub const MIN_FREE_BYTES: u64 = 16 * 1024;

/// The vault's state behind its one mutex. Its fields are the vault module's: `commit.rs`
/// and `render.rs` work on them too.
pub(super) struct Inner {
    pub(super) locs: Vec<Loc>,
    pub(super) keep: usize,
    pub(super) outputs: Vec<OutputSpec>,
    /// Highest generation each credential reached as seen by this process, so a location
    /// that is down for a moment cannot make a generation number be used twice.
    pub(super) high_water: HashMap<String, u64>,
    /// Start-up warnings (shared filesystems, permissions), repeated in every report.
    pub(super) warnings: Vec<String>,
    /// Each location's [`Location::stamp`] after the last reconcile or commit.
    pub(super) stamps: Vec<Option<u64>>,
    /// The OpenBao locations' configs and clients (the HA lease uses them too).
    pub(super) openbao: Vec<(openbao::OpenBaoConfig, std::sync::Arc<openbao::KvClient>)>,
}

/// The credential vault. See the [module documentation](super) for the layout and rules.
pub struct Vault {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("Vault")
            .field(
                "locations",
                &inner.locs.iter().map(Loc::label).collect::<Vec<_>>(),
            )
            .field("keep", &inner.keep)
            .finish()
    }
}

pub(super) fn check_name(name: &str) -> Result<(), VaultError> {
    if valid_credential_name(name) {
        Ok(())
    } else {
        Err(VaultError::InvalidName {
            name: name.to_string(),
        })
    }
}

impl Vault {
    /// Opens the vault described by `cfg`: creates missing directories (0700), checks every
    /// location, warns about backups sharing the primary's directory or filesystem, and
    /// reconciles. Fails when a location is not a directory, or when no location is usable.
    ///
    /// An OpenBao location that cannot be reached or written is reported like a failing
    /// disk and the directories carry on; one whose config cannot work fails the open.
    /// Do not call it (or any other method of a vault with an OpenBao location) on an
    /// async runtime thread: its HTTP client blocks.
    pub fn open(cfg: VaultConfig) -> Result<(Vault, ReconcileReport), VaultError> {
        let mut locs: Vec<(String, Box<dyn Location>)> =
            vec![("primary".into(), Box::new(DirLocation::new(&cfg.primary)))];
        for (i, b) in cfg.backups.iter().enumerate() {
            locs.push((format!("backup {}", i + 1), Box::new(DirLocation::new(b))));
        }
        let mut clients = Vec::new();
        for l in &cfg.locations {
            match l {
                openbao::LocationConfig::Openbao(c) => {
                    let client = std::sync::Arc::new(
                        openbao::KvClient::new(c).map_err(|e| VaultError::Config(e.to_string()))?,
                    );
                    locs.push((
                        "openbao".into(),
                        Box::new(openbao::OpenBaoLocation::new(client.clone(), &c.prefix)),
                    ));
                    clients.push((c.clone(), client));
                }
            }
        }
        let (vault, report) = Self::open_locs(locs, cfg.keep, cfg.outputs, clients)?;
        Ok((vault, report))
    }

    /// The first OpenBao location's config and client (for the HA lease), if any.
    pub fn openbao(&self) -> Option<(openbao::OpenBaoConfig, std::sync::Arc<openbao::KvClient>)> {
        self.lock().openbao.first().cloned()
    }

    /// True when a location is shared with other daemons (see [`Location::shared`]).
    pub fn has_shared(&self) -> bool {
        self.lock().locs.iter().any(|l| l.location.shared())
    }

    /// Opens a vault over any [`Location`]s (the seam for keyring or secrets-engine
    /// locations). Same checks as [`Vault::open`].
    pub fn open_with(
        primary: Box<dyn Location>,
        backups: Vec<Box<dyn Location>>,
        keep: usize,
        outputs: Vec<OutputSpec>,
    ) -> Result<(Vault, ReconcileReport), VaultError> {
        let mut locs = vec![("primary".to_string(), primary)];
        for (i, b) in backups.into_iter().enumerate() {
            locs.push((format!("backup {}", i + 1), b));
        }
        Self::open_locs(locs, keep, outputs, Vec::new())
    }

    fn open_locs(
        given: Vec<(String, Box<dyn Location>)>,
        keep: usize,
        outputs: Vec<OutputSpec>,
        openbao: Vec<(openbao::OpenBaoConfig, std::sync::Arc<openbao::KvClient>)>,
    ) -> Result<(Vault, ReconcileReport), VaultError> {
        if keep == 0 {
            return Err(VaultError::Config(
                "keep must be at least 1 (the newest generation)".into(),
            ));
        }
        OutputSpec::check_all(&outputs)?;
        let mut locs: Vec<Loc> = given
            .into_iter()
            .map(|(role, location)| Loc {
                role,
                location,
                ok: false,
                error: None,
                code: None,
            })
            .collect();
        let mut warnings = Vec::new();
        let mut problems = Vec::new();
        for loc in &mut locs {
            match loc.location.prepare() {
                Ok(w) => {
                    warnings.extend(w);
                    loc.ok = true;
                }
                Err(e @ LocationError::NotADirectory { .. }) => {
                    return Err(VaultError::Location {
                        role: loc.role.clone(),
                        source: e,
                    })
                }
                Err(e) => {
                    problems.push(format!("{}: {e}", loc.label()));
                    loc.fail(&e);
                }
            }
        }
        if !locs.iter().any(|l| l.ok) {
            return Err(VaultError::NoUsableLocation { details: problems });
        }
        warnings.extend(placement::placement_warnings(&locs));
        let vault = Vault {
            inner: Mutex::new(Inner {
                locs,
                keep,
                outputs,
                high_water: HashMap::new(),
                warnings,
                stamps: Vec::new(),
                openbao,
            }),
        };
        let mut report = vault.reconcile()?;
        // Problems found while preparing are repeated by reconcile's own prepare pass.
        for p in problems {
            if !report.problems.contains(&p) {
                report.problems.push(p);
            }
        }
        Ok((vault, report))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        // The crate's locks do not poison (parking_lot): a panic while holding this one
        // cannot leave disk state half-done (every write is atomic) and the in-memory state
        // is only health and counters, so the next caller carries on.
        self.inner.lock()
    }

    /// The newest valid generation of `name`, or `None` if no location has it.
    pub fn get(&self, name: &str) -> Result<Option<Record>, VaultError> {
        check_name(name)?;
        let inner = self.lock();
        let _flock = inner.flock()?;
        Ok(scan::newest(&inner.usable(), name)?.map(|f| f.record))
    }

    /// Every credential with at least one stored file in some location.
    pub fn names(&self) -> Result<Vec<String>, VaultError> {
        let inner = self.lock();
        let _flock = inner.flock()?;
        Ok(inner.names(&mut Vec::new()).into_iter().collect())
    }

    /// Kept generations of `name`, newest first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>, VaultError> {
        check_name(name)?;
        let inner = self.lock();
        let _flock = inner.flock()?;
        let view = scan::view(&inner.locs, name);
        if view.is_empty() {
            return Err(VaultError::NotFound { name: name.into() });
        }
        let mut out = Vec::new();
        for g in view.valid_generations() {
            // valid_generations() only lists generations with a valid copy.
            let (_, r, _) = view.valid_copy(g).expect("listed generation has a copy");
            let locations = view
                .per_loc
                .iter()
                .enumerate()
                .filter(|(_, s)| {
                    s.as_ref().is_ok_and(|slots| {
                        slots
                            .iter()
                            .any(|(sg, st)| *sg == g && matches!(st, scan::SlotState::Valid(..)))
                    })
                })
                .map(|(i, _)| inner.locs[i].label())
                .collect();
            out.push(HistoryEntry {
                generation: g,
                provider: r.provider.clone(),
                account: r.account.clone(),
                obtained_at: r.obtained_at,
                expires_at: r.expires_at,
                has_refresh_token: r.refresh_token.is_some(),
                refresh_token_id: r
                    .refresh_token
                    .as_ref()
                    .map(|t| history::token_id(t.secret())),
                locations,
            });
        }
        Ok(out)
    }

    /// Reads every location, repairs what is missing, damaged or older, trims history and
    /// re-renders outputs that are not current.
    pub fn reconcile(&self) -> Result<ReconcileReport, VaultError> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let mut report = ReconcileReport {
            warnings: inner.warnings.clone(),
            ..Default::default()
        };
        for loc in &mut inner.locs {
            match loc.location.prepare() {
                Ok(_) => {
                    loc.ok = true;
                    loc.clear();
                }
                Err(e) => {
                    report.problems.push(format!("{}: {e}", loc.label()));
                    loc.ok = false;
                    loc.fail(&e);
                }
            }
        }
        let _flock = inner.flock()?;
        inner.reconcile_names(&mut report);
        let (rendered, failures) = inner.render_outputs(None);
        report.outputs = rendered;
        report.problems.extend(failures);
        inner.stamps = inner.current_stamps();
        inner.check_space();
        Ok(report)
    }

    /// The cheapest check: free space in every location (a `statvfs` each). True when a
    /// location is in trouble, so the caller runs [`quick_check`](Self::quick_check).
    pub fn space_check(&self) -> bool {
        let mut inner = self.lock();
        inner.check_space();
        inner.locs.iter().any(|l| !l.ok || l.error.is_some())
    }

    /// The cheap check, meant to run every few seconds: free space in every location,
    /// and a [`Location::stamp`] of what is stored. Only when a stamp changed since the
    /// last reconcile or commit (a file wiped, truncated, rewritten or deleted, a
    /// directory removed), or a location is in trouble, does it run a full
    /// [`reconcile`](Self::reconcile) and return its report.
    pub fn quick_check(&self) -> Result<Option<ReconcileReport>, VaultError> {
        {
            let mut inner = self.lock();
            inner.check_space();
            let troubled = inner.locs.iter().any(|l| !l.ok || l.error.is_some());
            if !troubled && inner.current_stamps() == inner.stamps {
                return Ok(None);
            }
        }
        self.reconcile().map(Some)
    }

    /// Health of every location, for the health report.
    pub fn location_health(&self) -> Vec<LocationHealth> {
        let inner = self.lock();
        inner
            .locs
            .iter()
            .map(|l| LocationHealth {
                name: l.label(),
                ok: l.ok && l.error.is_none(),
                error: l.error.clone(),
                code: l.code.map(str::to_string),
            })
            .collect()
    }
}

impl Inner {
    pub(super) fn current_stamps(&self) -> Vec<Option<u64>> {
        self.locs.iter().map(|l| l.location.stamp()).collect()
    }

    /// Marks locations with less than [`MIN_FREE_BYTES`] free as full (the next commit
    /// would fail there); the mark goes at the next reconcile once there is room.
    pub(super) fn check_space(&mut self) {
        for loc in self.locs.iter_mut().filter(|l| l.ok) {
            let Some(free) = loc.location.free_bytes() else {
                continue;
            };
            if free < MIN_FREE_BYTES {
                loc.fail(&LocationError::NoSpace {
                    path: PathBuf::from(loc.location.label()),
                });
            }
        }
    }

    /// Prepares again every location that is unusable or whose directory vanished;
    /// true when one of them came back (it needs every credential copied into it).
    pub(super) fn revive(&mut self) -> bool {
        let mut revived = false;
        for loc in &mut self.locs {
            if loc.ok && loc.location.present() {
                continue;
            }
            match loc.location.prepare() {
                Ok(_) => {
                    tracing::warn!(
                        "vault: {} was missing or unusable; recreated it",
                        loc.label()
                    );
                    loc.ok = true;
                    revived = true;
                }
                Err(e) => {
                    loc.ok = false;
                    loc.fail(&e);
                }
            }
        }
        revived
    }

    /// Reconciles every credential across the usable locations (the caller holds the
    /// inter-process lock).
    pub(super) fn reconcile_names(&mut self, report: &mut ReconcileReport) {
        let names = self.names(&mut report.problems);
        for name in names {
            let max = reconcile::credential(&mut self.locs, &name, self.keep, report);
            if let Some(max) = max {
                let hw = self.high_water.entry(name).or_insert(0);
                *hw = (*hw).max(max);
            }
        }
    }

    pub(super) fn usable(&self) -> Vec<&Loc> {
        self.locs.iter().filter(|l| l.ok).collect()
    }

    /// The inter-process lock: on the first location that can take it.
    /// The inter-process lock, taken in the first usable location that supports locking
    /// (the same one in every process that sees the same locations). A location whose
    /// lock fails is passed over with a warning; when locking is possible somewhere but
    /// fails everywhere, the operation fails instead of running unlocked beside another
    /// tether process.
    pub(super) fn flock(&self) -> Result<Option<location::LocationLock>, VaultError> {
        let mut failures = Vec::new();
        // Locations already known to fail are reported elsewhere.
        for loc in self.locs.iter().filter(|l| l.ok) {
            match loc.location.lock() {
                Ok(Some(lock)) => {
                    for f in &failures {
                        tracing::warn!("vault: cannot lock {f}");
                    }
                    return Ok(Some(lock));
                }
                Ok(None) => {}
                Err(e) => failures.push(format!("{}: {e}", loc.label())),
            }
        }
        if failures.is_empty() {
            Ok(None)
        } else {
            Err(VaultError::Lock { details: failures })
        }
    }

    pub(super) fn names(&self, problems: &mut Vec<String>) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for loc in self.locs.iter().filter(|l| l.ok) {
            match loc.location.credentials() {
                Ok(n) => names.extend(n),
                Err(e) => problems.push(format!("{}: {e}", loc.label())),
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_any_io() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, _) = Vault::open(VaultConfig::new(dir.path().join("p"), vec![])).unwrap();
        for bad in ["../x", "a/b", "a\0b", &"a".repeat(65), ""] {
            assert!(matches!(
                vault.get(bad),
                Err(VaultError::InvalidName { .. })
            ));
            assert!(matches!(
                vault.commit(Record::new(bad, "google")),
                Err(VaultError::InvalidName { .. })
            ));
        }
        // Only the lock file: no credential directory was created for a bad name.
        let entries: Vec<_> = std::fs::read_dir(dir.path().join("p"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(entries, vec![std::ffi::OsString::from(".lock")]);
    }

    #[test]
    fn vault_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Vault>();
    }
}
