//! Reconcile: read every location, take the newest valid generation, repair every copy
//! that is missing, empty, truncated, corrupt or older, and trim history.
//!
//! Repairs only ever write a slot that is absent or invalid, with the exact bytes of a
//! valid copy of the same generation, so a valid generation is never replaced and an older
//! generation never lands over a newer one. Invalid copies with no good copy anywhere are
//! renamed aside (kept for inspection, reported). Links, unreadable files and records of
//! another schema version are reported and left exactly as they are.

use super::loc::Loc;
use super::location::{Location, LocationError};
use super::record::DecodeError;
use super::report::{Quarantine, ReconcileReport, Repair, RepairKind};
use super::scan::{self, SlotState};

/// Reconciles one credential across `locs`; returns the highest generation seen.
pub(crate) fn credential(
    locs_mut: &mut [Loc],
    name: &str,
    keep: usize,
    report: &mut ReconcileReport,
) -> Option<u64> {
    let locs: &[Loc] = locs_mut;
    // Write failures per location, applied to its health at the end.
    let mut failed: Vec<(usize, LocationError)> = Vec::new();
    let view = scan::view(locs, name);
    let newest = view.valid_generations().first().copied();

    for (li, slots) in view.per_loc.iter().enumerate() {
        let loc = &locs[li];
        let slots = match slots {
            Ok(s) => s,
            Err(e) => {
                if loc.ok {
                    report
                        .problems
                        .push(format!("credential {name} in {}: {e}", loc.label()));
                }
                continue;
            }
        };
        if let Err(e) = loc.location.clean_temp(name) {
            report
                .problems
                .push(format!("credential {name} in {}: {e}", loc.label()));
        }
        for (g, state) in slots {
            let path = loc.location.slot_label(name, *g);
            match state {
                SlotState::Valid(..) | SlotState::Vanished => {}
                SlotState::Invalid(err) => match view.valid_copy(*g) {
                    Some((src, _, bytes)) => {
                        let was = match err {
                            DecodeError::Empty => RepairKind::Empty,
                            DecodeError::Truncated { .. } => RepairKind::Truncated,
                            other => RepairKind::Corrupt {
                                reason: other.to_string(),
                            },
                        };
                        if let Err(e) = repair(locs, li, src, name, *g, bytes, was, report) {
                            failed.push((li, e));
                        }
                    }
                    // With no valid generation anywhere, moving the last evidence aside
                    // would make the credential look absent: leave it and report it.
                    None if newest.is_none() => report.problems.push(format!(
                        "credential {name}: generation {g} at {path} is invalid ({err}) and no location has a good copy; left in place"
                    )),
                    None => match loc.location.quarantine(name, *g) {
                        Ok(moved_to) => report.quarantined.push(Quarantine {
                            credential: name.to_string(),
                            generation: *g,
                            path,
                            moved_to,
                            reason: err.to_string(),
                        }),
                        Err(e) => report.problems.push(format!(
                            "credential {name}: generation {g} at {path} is invalid ({err}) and could not be moved aside: {e}"
                        )),
                    },
                },
                SlotState::Unsupported(found) => report.problems.push(format!(
                    "credential {name}: {path} has record schema {found}, which this build does not read; left untouched: upgrade tether, or move the file out of the vault"
                )),
                SlotState::Unreadable(e) => report
                    .problems
                    .push(format!("credential {name}: left untouched: {e}")),
            }
        }
        if let Some(g) = newest {
            if !slots.iter().any(|(sg, _)| *sg == g) {
                let had = slots
                    .iter()
                    .filter(|(_, st)| matches!(st, SlotState::Valid(..)))
                    .map(|(sg, _)| *sg)
                    .max();
                let was = match had {
                    Some(had) => RepairKind::Older { had },
                    None => RepairKind::Missing,
                };
                // valid_generations() only lists generations with a valid copy.
                let (src, _, bytes) = view.valid_copy(g).expect("newest has a valid copy");
                if let Err(e) = repair(locs, li, src, name, g, bytes, was, report) {
                    failed.push((li, e));
                }
            }
        }
    }

    if newest.is_none() && !view.is_empty() {
        report.problems.push(format!(
            "credential {name}: no valid generation in any location; copy a good record file from another machine or backup, or re-authorize the credential"
        ));
    }
    for loc in locs.iter().filter(|l| l.ok) {
        if let Err(e) = trim(loc.location.as_ref(), name, keep) {
            report.problems.push(format!(
                "credential {name} in {}: trimming history: {e}",
                loc.label()
            ));
        }
    }
    let max = view.max_listed();
    for (li, e) in failed {
        locs_mut[li].fail(&e);
    }
    max
}

#[allow(clippy::too_many_arguments)]
fn repair(
    locs: &[Loc],
    li: usize,
    src: usize,
    name: &str,
    generation: u64,
    bytes: &[u8],
    was: RepairKind,
    report: &mut ReconcileReport,
) -> Result<(), LocationError> {
    let from = locs[src].label();
    let loc = &locs[li];
    match loc.location.write(name, generation, bytes) {
        Ok(()) => {
            report.repairs.push(Repair {
                credential: name.to_string(),
                location: loc.label(),
                generation,
                was,
                from,
            });
            Ok(())
        }
        Err(e) => {
            report.problems.push(format!(
                "credential {name}: could not repair generation {generation} in {}: {e}",
                loc.label()
            ));
            Err(e)
        }
    }
}

/// Deletes all but the `keep` highest generations of `name` in one location.
pub(crate) fn trim(
    loc: &dyn Location,
    name: &str,
    keep: usize,
) -> Result<(), super::location::LocationError> {
    let mut gens = loc.generations(name)?;
    if gens.len() <= keep {
        return Ok(());
    }
    gens.sort_unstable_by(|a, b| b.cmp(a));
    for g in &gens[keep..] {
        loc.remove(name, *g)?;
    }
    Ok(())
}
