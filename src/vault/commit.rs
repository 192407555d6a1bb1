//! Writing a new generation: [`Vault::commit`] (and `commit_after` for a refresh that
//! must not overwrite a newer shared generation), [`Vault::reserve`] (room set aside
//! before a rotating token is spent) and [`Vault::rollback`].

use super::error::VaultError;
use super::handle::{check_name, Inner, Vault};
use super::location::{self, LocationError};
use super::record::{self, Record, SCHEMA_VERSION};
use super::report::{CommitReport, LocationFailure, ReconcileReport};
use super::{reconcile, scan};

/// Room set aside for one record in every location that can take one: records are a few
/// KiB; 64 KiB leaves margin for extras and the header.
pub const RESERVE_BYTES: usize = 64 * 1024;

/// Room for a credential's next generation, given back on drop ([`Vault::reserve`]).
#[derive(Debug)]
pub struct Reserved {
    _held: Vec<location::Reservation>,
}

impl Vault {
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
}

impl Inner {
    pub(super) fn commit(
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
                    if loc.location.shared() && shared_newest.as_ref().is_none_or(|(g, _)| max > *g)
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
}
