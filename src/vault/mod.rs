//! The credential vault: records in several locations with atomic, generation-numbered
//! writes, reconcile/repair, history and rollback, and rendered output files.
//!
//! # Layout on disk
//!
//! Every location is a directory (mode 0700) holding one directory per credential and one
//! file per generation (mode 0600):
//!
//! ```text
//! <location>/
//!   .lock                          flock(2) taken by every commit/reconcile/read
//!   youtube/
//!     gen-000000000041.json        a kept older generation (the last K are kept)
//!     gen-000000000042.json        the newest generation is the current one
//!     gen-000000000040.json.corrupt-20260101T000000.000Z   an invalid copy moved aside
//! ```
//!
//! Each file is `tether-vault-record schema=1 len=N sha256=HEX\n` followed by the record as
//! JSON (see [`record`]); a file cut short or overwritten with garbage fails its checksum.
//!
//! Why one file per generation: a commit writes a file that did not exist (temp file in
//! the same directory, fsync, rename with `RENAME_NOREPLACE`, fsync the directory), so a
//! crash at any instant
//! leaves every earlier generation intact, nothing is truncated in place, and "an older
//! generation never replaces a newer one" follows from never writing over a valid file.
//!
//! # Rules
//!
//! - A commit gets generation "highest number seen in any location (or by this process)
//!   plus one" and is written to every location; it succeeds when at least one took it and lists
//!   the others in [`CommitReport::failed`]. Then history beyond `keep` is trimmed and the
//!   credential's outputs are rendered.
//! - Reading picks the highest generation with a valid copy (see [`scan`] for the one
//!   case where it refuses instead).
//! - [`Vault::open`] and [`Vault::reconcile`] repair every location (see [`reconcile`])
//!   and re-render outputs that are missing or differ from a fresh rendering.
//! - A location that is a file is refused at open; a location that cannot be written
//!   (read-only, permission denied, full) is reported and the others carry on.
//! - Commits, reads and reconciles take an inter-process `flock` on the primary (or the
//!   first usable backup), so the daemon and `tether vault` commands do not interleave.
//!
//! # Beyond directories
//!
//! [`openbao`] adds an OpenBao KV v2 mount as one more location (`VaultConfig::locations`):
//! one secret per credential, one version per generation, check-and-set commits. It is
//! [`Location::shared`], so commits write there first and a refused check-and-set aborts
//! the whole commit ([`VaultError::Stale`]); [`Vault::commit_after`] also refuses a record
//! made from an older generation than the shared location holds.
//!
//! # API
//!
//! [`Vault::open`] → ([`Vault`], [`ReconcileReport`]); [`Vault::get`], [`Vault::commit`] →
//! [`CommitReport`], [`Vault::names`], [`Vault::reconcile`], [`Vault::history`],
//! [`Vault::rollback`], [`Vault::location_health`], [`Vault::check_outputs`].
//! Synchronous `std::fs`; `Vault` is `Send + Sync` (one internal mutex), so async callers
//! use `spawn_blocking`. [`import::parse_token_file`] reads existing token files.

pub mod atomic;
mod error;
pub mod history;
pub mod import;
pub mod location;
pub mod openbao;
pub mod output;
pub mod reconcile;
pub mod record;
mod report;
pub mod scan;

pub use error::VaultError;
pub use history::HistoryEntry;
pub use location::{DirLocation, Location, LocationError};
pub use output::{OutputError, OutputFormat, OutputSpec};
pub use record::{Record, SCHEMA_VERSION};
pub use report::{CommitReport, LocationFailure, Quarantine, ReconcileReport, Repair, RepairKind};

use crate::protocol::{valid_credential_name, LocationHealth};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// Default number of generations kept per credential.
pub const DEFAULT_KEEP: usize = 5;
/// A location with less free space than this counts as full: a few records' worth, so
/// the owner hears about it before a commit fails there.
pub const MIN_FREE_BYTES: u64 = 16 * 1024;

fn default_keep() -> usize {
    DEFAULT_KEEP
}

/// Where the vault keeps its copies and what it renders (the `[vault]` table of the
/// agent's config file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// The primary state directory.
    pub primary: PathBuf,
    /// Backup directories, ideally on other filesystems.
    #[serde(default)]
    pub backups: Vec<PathBuf>,
    /// Generations kept per credential (default 5).
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// Output files to keep rendered.
    #[serde(default)]
    pub outputs: Vec<OutputSpec>,
    /// Locations beside the directories (an OpenBao KV mount).
    #[serde(default)]
    pub locations: Vec<openbao::LocationConfig>,
}

impl VaultConfig {
    /// A config with a primary and backups, default `keep`, no outputs.
    pub fn new(primary: impl Into<PathBuf>, backups: Vec<PathBuf>) -> Self {
        VaultConfig {
            primary: primary.into(),
            backups,
            keep: DEFAULT_KEEP,
            outputs: Vec::new(),
            locations: Vec::new(),
        }
    }
}

/// One location and what the vault last saw there.
#[derive(Debug)]
pub(crate) struct Loc {
    /// `primary` or `backup N`.
    pub role: String,
    pub location: Box<dyn Location>,
    /// Whether it can be used (prepared, last write worked).
    pub ok: bool,
    /// The last error there.
    pub error: Option<String>,
    /// Its kind (`no_space`, ...), as in the health report.
    pub code: Option<&'static str>,
}

impl Loc {
    pub fn label(&self) -> String {
        format!("{} {}", self.role, self.location.label())
    }

    pub fn fail(&mut self, e: &LocationError) {
        self.error = Some(e.to_string());
        self.code = Some(e.code());
    }

    pub fn clear(&mut self) {
        self.error = None;
        self.code = None;
    }
}

struct Inner {
    locs: Vec<Loc>,
    keep: usize,
    outputs: Vec<OutputSpec>,
    /// Highest generation each credential reached as seen by this process, so a location
    /// that is down for a moment cannot make a generation number be used twice.
    high_water: HashMap<String, u64>,
    /// Start-up warnings (shared filesystems, permissions), repeated in every report.
    warnings: Vec<String>,
    /// Each location's [`Location::stamp`] after the last reconcile or commit.
    stamps: Vec<Option<u64>>,
    /// The OpenBao locations' configs and clients (the HA lease uses them too).
    openbao: Vec<(openbao::OpenBaoConfig, std::sync::Arc<openbao::KvClient>)>,
}

/// Room set aside for one record in every location that can take one: records are a few
/// KiB; 64 KiB leaves margin for extras and the header.
pub const RESERVE_BYTES: usize = 64 * 1024;

/// Room for a credential's next generation, given back on drop ([`Vault::reserve`]).
#[derive(Debug)]
pub struct Reserved {
    _held: Vec<location::Reservation>,
}

/// The credential vault. See the module documentation for the layout and rules.
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

fn check_name(name: &str) -> Result<(), VaultError> {
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
        for o in &outputs {
            if !valid_credential_name(&o.credential) {
                return Err(VaultError::Config(format!(
                    "output {} names credential {:?}, which is not a valid credential name",
                    o.path.display(),
                    o.credential
                )));
            }
        }
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
        warnings.extend(placement_warnings(&locs));
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

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave disk state half-done (every write is
        // atomic) and the in-memory state is only health and counters, so carry on.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Stores `record` as the credential's next generation in every location, trims
    /// history, renders its outputs. Succeeds when at least one location took it.
    ///
    /// A location that is gone (its directory deleted while running) or was unusable is
    /// prepared again first; when that brings one back, every credential is copied into
    /// it after the commit (listed in [`CommitReport::repairs`]).
    pub fn commit(&self, record: Record) -> Result<CommitReport, VaultError> {
        self.commit_inner(record, None)
    }

    /// Like [`commit`](Self::commit), for a record made from generation `based_on` (a
    /// refresh of it): when a location is shared with other daemons and one of them has
    /// committed a newer generation since, nothing is written and the answer is
    /// [`VaultError::Stale`]. Without a shared location it is a plain commit.
    pub fn commit_after(&self, record: Record, based_on: u64) -> Result<CommitReport, VaultError> {
        self.commit_inner(record, Some(based_on))
    }

    fn commit_inner(
        &self,
        record: Record,
        based_on: Option<u64>,
    ) -> Result<CommitReport, VaultError> {
        check_name(&record.name)?;
        let mut inner = self.lock();
        let revived = inner.revive();
        let _flock = inner.flock()?;
        let mut report = inner.commit(record, based_on)?;
        if revived {
            let mut refill = ReconcileReport::default();
            inner.reconcile_names(&mut refill);
            report.repairs = refill.repairs;
            report.warnings.extend(refill.problems);
        }
        inner.stamps = inner.current_stamps();
        // A write that still fit does not make a nearly full location healthy.
        inner.check_space();
        Ok(report)
    }

    /// Sets aside room for the next generation of `name` in every location that can take
    /// it, so a rotating refresh token is spent only when its answer can be stored (a full
    /// disk refuses the reservation, not the commit after the provider rotated). Fails when
    /// no location can take it; the guard gives the room back when dropped, which the
    /// caller does just before it commits.
    pub fn reserve(&self, name: &str) -> Result<Reserved, VaultError> {
        check_name(name)?;
        let inner = self.lock();
        let mut held = Vec::new();
        let mut failures = Vec::new();
        let mut roomy = 0usize;
        for loc in &inner.locs {
            match loc.location.reserve(name, RESERVE_BYTES) {
                Ok(Some(r)) => {
                    held.push(r);
                    roomy += 1;
                }
                Ok(None) => roomy += 1,
                Err(e) => failures.push(format!("{}: {e}", loc.label())),
            }
        }
        if roomy == 0 {
            return Err(VaultError::NoRoom {
                name: name.to_string(),
                details: failures,
            });
        }
        Ok(Reserved { _held: held })
    }

    /// Commits the content of an older generation as a new generation.
    pub fn rollback(&self, name: &str, generation: u64) -> Result<CommitReport, VaultError> {
        check_name(name)?;
        let mut inner = self.lock();
        let _flock = inner.flock()?;
        let view = scan::view(&inner.locs, name);
        let Some((_, record, _)) = view.valid_copy(generation) else {
            let available = view.valid_generations();
            if available.is_empty() && view.is_empty() {
                return Err(VaultError::NotFound { name: name.into() });
            }
            return Err(VaultError::GenerationNotFound {
                name: name.into(),
                generation,
                available,
            });
        };
        let mut record = record.clone();
        record.extras.insert(
            "rolled_back_from".into(),
            serde_json::Value::from(generation),
        );
        inner.commit(record, None)
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

    /// Cheap check of the output files: re-renders those missing, wiped or changed.
    /// Returns the paths re-rendered.
    pub fn check_outputs(&self) -> Result<Vec<PathBuf>, VaultError> {
        let inner = self.lock();
        let _flock = inner.flock()?;
        let (rendered, failures) = inner.render_outputs(None);
        if failures.is_empty() {
            Ok(rendered)
        } else {
            Err(VaultError::Outputs {
                failures,
                rerendered: rendered,
            })
        }
    }

    /// The configured outputs.
    pub fn outputs(&self) -> Vec<OutputSpec> {
        self.lock().outputs.clone()
    }

    /// Replaces the configured outputs (a config reload) and renders any that are not
    /// current. Refused, with nothing changed, when one names an invalid credential.
    pub fn set_outputs(&self, outputs: Vec<OutputSpec>) -> Result<Vec<PathBuf>, VaultError> {
        for o in &outputs {
            if !valid_credential_name(&o.credential) {
                return Err(VaultError::Config(format!(
                    "output {} names credential {:?}, which is not a valid credential name",
                    o.path.display(),
                    o.credential
                )));
            }
        }
        self.lock().outputs = outputs;
        self.check_outputs()
    }
}

impl Inner {
    fn current_stamps(&self) -> Vec<Option<u64>> {
        self.locs.iter().map(|l| l.location.stamp()).collect()
    }

    /// Marks locations with less than [`MIN_FREE_BYTES`] free as full (the next commit
    /// would fail there); the mark goes at the next reconcile once there is room.
    fn check_space(&mut self) {
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
    fn revive(&mut self) -> bool {
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
    fn reconcile_names(&mut self, report: &mut ReconcileReport) {
        let names = self.names(&mut report.problems);
        for name in names {
            let max = reconcile::credential(&mut self.locs, &name, self.keep, report);
            if let Some(max) = max {
                let hw = self.high_water.entry(name).or_insert(0);
                *hw = (*hw).max(max);
            }
        }
    }

    fn usable(&self) -> Vec<&Loc> {
        self.locs.iter().filter(|l| l.ok).collect()
    }

    /// The inter-process lock: on the first location that can take it.
    /// The inter-process lock, taken in the first usable location that supports locking
    /// (the same one in every process that sees the same locations). A location whose
    /// lock fails is passed over with a warning; when locking is possible somewhere but
    /// fails everywhere, the operation fails instead of running unlocked beside another
    /// tether process.
    fn flock(&self) -> Result<Option<location::LocationLock>, VaultError> {
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

    fn names(&self, problems: &mut Vec<String>) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for loc in self.locs.iter().filter(|l| l.ok) {
            match loc.location.credentials() {
                Ok(n) => names.extend(n),
                Err(e) => problems.push(format!("{}: {e}", loc.label())),
            }
        }
        names
    }

    fn commit(
        &mut self,
        mut record: Record,
        based_on: Option<u64>,
    ) -> Result<CommitReport, VaultError> {
        let name = record.name.clone();
        let mut failed = Vec::new();
        let mut targets = Vec::new();
        let mut highest = self.high_water.get(&name).copied().unwrap_or(0);
        // Newest generation in a location other daemons write too.
        let mut shared_newest: Option<(u64, String)> = None;
        for (i, loc) in self.locs.iter().enumerate() {
            match loc.location.generations(&name) {
                Ok(gens) => {
                    let max = gens.into_iter().max().unwrap_or(0);
                    highest = highest.max(max);
                    if loc.location.shared()
                        && shared_newest.as_ref().map_or(true, |(g, _)| max > *g)
                    {
                        shared_newest = Some((max, loc.label()));
                    }
                    targets.push(i);
                }
                Err(e) => failed.push(LocationFailure {
                    location: loc.label(),
                    error: e.to_string(),
                    code: e.code(),
                }),
            }
        }
        if let (Some(base), Some((newer, location))) = (based_on, &shared_newest) {
            if *newer > base {
                return Err(VaultError::Stale {
                    name,
                    based_on: base,
                    newer: *newer,
                    location: location.clone(),
                });
            }
        }
        let generation = highest.checked_add(1).ok_or_else(|| {
            VaultError::Config(format!("credential {name}: generation numbers exhausted"))
        })?;
        // Shared locations first: their check-and-set decides whether this commit may
        // happen at all, before any directory holds the generation.
        targets.sort_by_key(|i| !self.locs[*i].location.shared());
        record.generation = generation;
        record.schema = SCHEMA_VERSION;
        let bytes = record::encode(&record);
        let mut written = Vec::new();
        let mut warnings = Vec::new();
        for i in targets {
            let loc = &mut self.locs[i];
            match loc.location.create(&name, generation, &bytes) {
                // Another daemon wrote since the listing above: refuse everywhere, so no
                // directory holds a generation the shared location does not agree with.
                Err(LocationError::Stale { .. } | LocationError::Exists { .. })
                    if loc.location.shared() && written.is_empty() =>
                {
                    return Err(VaultError::Stale {
                        name,
                        based_on: based_on.unwrap_or(highest),
                        newer: generation,
                        location: loc.label(),
                    });
                }
                Ok(()) => {
                    written.push(loc.label());
                    loc.ok = true;
                    loc.clear();
                    if let Err(e) = reconcile::trim(loc.location.as_ref(), &name, self.keep) {
                        warnings.push(format!("{}: trimming history: {e}", loc.label()));
                    }
                }
                Err(e) => {
                    loc.fail(&e);
                    failed.push(LocationFailure {
                        location: loc.label(),
                        error: e.to_string(),
                        code: e.code(),
                    });
                }
            }
        }
        for f in &failed {
            if let Some(loc) = self.locs.iter_mut().find(|l| l.label() == f.location) {
                loc.error = Some(f.error.clone());
                loc.code = Some(f.code);
            }
        }
        if written.is_empty() {
            return Err(VaultError::AllLocationsFailed {
                name,
                generation,
                failures: failed,
            });
        }
        self.high_water.insert(name.clone(), generation);
        let (outputs, output_errors) = self.render_outputs(Some(&record));
        Ok(CommitReport {
            credential: name,
            generation,
            written,
            failed,
            outputs,
            output_errors,
            warnings,
            repairs: Vec::new(),
        })
    }

    /// Renders outputs: with `Some(record)` only that credential's, from that record
    /// (just committed); with `None` every output, from each credential's newest
    /// generation, writing only those that are not current.
    fn render_outputs(&self, just_committed: Option<&Record>) -> (Vec<PathBuf>, Vec<String>) {
        let mut rendered = Vec::new();
        let mut failures = Vec::new();
        let mut cache: HashMap<String, Option<Record>> = HashMap::new();
        let usable = self.usable();
        for spec in &self.outputs {
            let record = match just_committed {
                Some(r) if r.name != spec.credential => continue,
                Some(r) => r.clone(),
                None => {
                    let entry =
                        cache
                            .entry(spec.credential.clone())
                            .or_insert_with(|| match scan::newest(&usable, &spec.credential) {
                                Ok(found) => found.map(|f| f.record),
                                Err(e) => {
                                    failures.push(format!(
                                        "output {} not rendered: {e}",
                                        spec.path.display()
                                    ));
                                    None
                                }
                            });
                    match entry {
                        Some(r) => r.clone(),
                        // Not adopted yet: nothing to render.
                        None => continue,
                    }
                }
            };
            let result = output::render(spec, &record).and_then(|bytes| {
                if just_committed.is_none() && output::is_current(spec, &bytes)? {
                    return Ok(false);
                }
                output::write(spec, &bytes).map(|()| true)
            });
            match result {
                Ok(true) => rendered.push(spec.path.clone()),
                Ok(false) => {}
                Err(e) => failures.push(e.to_string()),
            }
        }
        (rendered, failures)
    }
}

/// Warnings about backups that protect against less than they seem to.
fn placement_warnings(locs: &[Loc]) -> Vec<String> {
    let mut out = Vec::new();
    if locs.len() == 1 {
        out.push(format!(
            "the vault has no backup location: losing {} loses every credential; add a backup on another disk",
            locs[0].location.label()
        ));
    }
    let Some((p_path, p_dev)) = locs[0].location.filesystem() else {
        return out;
    };
    for loc in &locs[1..] {
        let Some((path, dev)) = loc.location.filesystem() else {
            continue;
        };
        if path == p_path {
            out.push(format!(
                "{} is the same directory as the primary; it protects against nothing: point it at another disk",
                loc.label()
            ));
        } else if path.starts_with(&p_path) || p_path.starts_with(&path) {
            out.push(format!(
                "{} and the primary {} are nested in each other; put the backup on another disk",
                loc.label(),
                p_path.display()
            ));
        } else if dev == p_dev {
            out.push(format!(
                "{} is on the same filesystem as the primary {} (device {dev:#x}); a disk failure loses both: put it on another disk",
                loc.label(),
                p_path.display()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_deserializes_with_defaults() {
        let cfg: VaultConfig = toml::from_str(
            "primary = \"/var/lib/tether\"\nbackups = [\"/mnt/b\"]\n[[outputs]]\ncredential = \"yt\"\npath = \"/a/env\"\nformat = \"env\"\n",
        )
        .unwrap();
        assert_eq!(cfg.keep, DEFAULT_KEEP);
        assert_eq!(cfg.backups, vec![PathBuf::from("/mnt/b")]);
        assert_eq!(cfg.outputs.len(), 1);
        assert!(toml::from_str::<VaultConfig>("primary = \"/x\"\nbogus = 1\n").is_err());
    }

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
