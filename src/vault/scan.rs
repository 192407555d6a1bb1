//! Reading one credential across every location, and choosing its newest valid generation.
//!
//! The rule: the highest generation number with at least one valid copy wins. A higher
//! number whose copies are all garbage is skipped (its data is gone; reconcile reports and
//! quarantines it). A higher number that exists but cannot be judged — a symbolic link, a
//! permission error, a record from another schema version — stops the choice with an
//! error, because silently handing out an older refresh token could hand out a dead one.

use super::error::VaultError;
use super::loc::Loc;
use super::location::{Location, LocationError};
use super::record::{self, DecodeError, Record};
use std::collections::BTreeSet;

/// What one location holds in one slot.
#[derive(Debug)]
pub(crate) enum SlotState {
    /// A complete record with a matching checksum; the exact file bytes.
    Valid(Box<Record>, Vec<u8>),
    /// Empty, truncated, garbage, checksum mismatch, misplaced.
    Invalid(DecodeError),
    /// A record of another schema version (left untouched).
    Unsupported(u32),
    /// Cannot be read (a link, a permission error, a non-file).
    Unreadable(LocationError),
    /// Listed, then gone before the read (trimmed by a concurrent writer).
    Vanished,
}

/// Reads and judges one slot.
pub(crate) fn read_slot(loc: &dyn Location, name: &str, generation: u64) -> SlotState {
    match loc.read(name, generation) {
        Ok(bytes) => match record::decode_slot(&bytes, name, generation) {
            Ok(r) => SlotState::Valid(Box::new(r), bytes),
            Err(DecodeError::UnsupportedSchema { found }) => SlotState::Unsupported(found),
            Err(e) => SlotState::Invalid(e),
        },
        Err(LocationError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            SlotState::Vanished
        }
        // A remote location that stopped answering between the listing and the read says
        // nothing about the record; the other locations decide.
        Err(LocationError::Unreachable { .. }) => SlotState::Vanished,
        Err(e) => SlotState::Unreadable(e),
    }
}

/// The newest valid generation of a credential and where it was read.
#[derive(Debug)]
pub(crate) struct Found {
    pub record: Record,
}

/// Finds the newest valid generation, reading as few files as possible (newest first,
/// primary first). `Ok(None)` when no location has the credential at all.
pub(crate) fn newest(locs: &[&Loc], name: &str) -> Result<Option<Found>, VaultError> {
    let mut listings: Vec<Option<Vec<u64>>> = Vec::with_capacity(locs.len());
    let mut listing_errors = Vec::new();
    for loc in locs {
        match loc.location.generations(name) {
            Ok(g) => listings.push(Some(g)),
            Err(e) => {
                listing_errors.push(format!("{}: {e}", loc.label()));
                listings.push(None);
            }
        }
    }
    let all: BTreeSet<u64> = listings.iter().flatten().flatten().copied().collect();
    let mut invalid = Vec::new();
    for &g in all.iter().rev() {
        let mut blocker: Option<VaultError> = None;
        for (i, loc) in locs.iter().enumerate() {
            if !listings[i].as_ref().is_some_and(|l| l.contains(&g)) {
                continue;
            }
            let path = loc.location.slot_label(name, g);
            match read_slot(loc.location.as_ref(), name, g) {
                SlotState::Valid(record, _) => return Ok(Some(Found { record: *record })),
                SlotState::Invalid(e) => invalid.push(format!("{path}: {e}")),
                SlotState::Unsupported(found) => {
                    blocker.get_or_insert(VaultError::UnsupportedSchema {
                        name: name.to_string(),
                        path,
                        found,
                    });
                }
                SlotState::Unreadable(source) => {
                    blocker.get_or_insert(VaultError::Unreadable {
                        name: name.to_string(),
                        generation: g,
                        path,
                        source,
                    });
                }
                SlotState::Vanished => {}
            }
        }
        if let Some(err) = blocker {
            return Err(err);
        }
    }
    if !invalid.is_empty() {
        return Err(VaultError::NoValidGeneration {
            name: name.to_string(),
            details: invalid.join("; "),
        });
    }
    if listings.iter().all(Option::is_none) && !locs.is_empty() {
        return Err(VaultError::NoValidGeneration {
            name: name.to_string(),
            details: listing_errors.join("; "),
        });
    }
    Ok(None)
}

/// Every slot of one credential in every location, newest first.
pub(crate) struct View {
    /// Per location (same order as the vault's): its slots, or why it could not be listed.
    pub per_loc: Vec<Result<Vec<(u64, SlotState)>, LocationError>>,
}

/// Reads every slot of `name` in every location in `locs`.
pub(crate) fn view(locs: &[Loc], name: &str) -> View {
    let per_loc = locs
        .iter()
        .map(|loc| {
            if !loc.ok {
                return Err(LocationError::Io {
                    op: "use",
                    path: loc.location.label().into(),
                    source: std::io::Error::other(
                        loc.error.clone().unwrap_or_else(|| "unusable".into()),
                    ),
                });
            }
            let mut gens = loc.location.generations(name)?;
            gens.sort_unstable_by(|a, b| b.cmp(a));
            Ok(gens
                .into_iter()
                .map(|g| (g, read_slot(loc.location.as_ref(), name, g)))
                .collect())
        })
        .collect();
    View { per_loc }
}

impl View {
    /// The first valid copy of generation `g` (primary first): (location index, record, bytes).
    pub fn valid_copy(&self, g: u64) -> Option<(usize, &Record, &[u8])> {
        self.per_loc.iter().enumerate().find_map(|(i, slots)| {
            slots.as_ref().ok()?.iter().find_map(|(sg, st)| match st {
                SlotState::Valid(r, b) if *sg == g => Some((i, r.as_ref(), b.as_slice())),
                _ => None,
            })
        })
    }

    /// Every generation with a valid copy somewhere, newest first.
    pub fn valid_generations(&self) -> Vec<u64> {
        let set: BTreeSet<u64> = self
            .per_loc
            .iter()
            .filter_map(|s| s.as_ref().ok())
            .flatten()
            .filter(|(_, st)| matches!(st, SlotState::Valid(..)))
            .map(|(g, _)| *g)
            .collect();
        set.into_iter().rev().collect()
    }

    /// Highest generation number listed anywhere (valid or not).
    pub fn max_listed(&self) -> Option<u64> {
        self.per_loc
            .iter()
            .filter_map(|s| s.as_ref().ok())
            .flatten()
            .map(|(g, _)| *g)
            .max()
    }

    /// True when no location lists any slot.
    pub fn is_empty(&self) -> bool {
        self.max_listed().is_none()
    }
}
