//! What a commit or a reconcile did: written and failed locations, repairs, re-rendered
//! outputs. Every line is fit for a log or the health report (no secrets).

use std::fmt;
use std::path::PathBuf;

/// A location that did not take a write, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationFailure {
    /// `primary /path` or `backup 1 /path`.
    pub location: String,
    /// The error, naming the path and the fix.
    pub error: String,
    /// Its kind, as in the health report (`no_space`, `read_only`, ...).
    pub code: &'static str,
}

impl fmt::Display for LocationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.error)
    }
}

/// The result of a successful commit (at least one location took it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitReport {
    /// The credential.
    pub credential: String,
    /// The generation now stored.
    pub generation: u64,
    /// Locations that hold it now.
    pub written: Vec<String>,
    /// Locations that failed (the commit still succeeded).
    pub failed: Vec<LocationFailure>,
    /// Output files rendered from it.
    pub outputs: Vec<PathBuf>,
    /// Output files that could not be rendered.
    pub output_errors: Vec<String>,
    /// Non-fatal trouble (history trimming).
    pub warnings: Vec<String>,
    /// Copies of other credentials written because a location had to be recreated
    /// (its directory was deleted while the daemon ran).
    pub repairs: Vec<Repair>,
}

impl CommitReport {}

impl fmt::Display for CommitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "credential {} generation {} stored in {} of {} locations",
            self.credential,
            self.generation,
            self.written.len(),
            self.written.len() + self.failed.len()
        )?;
        for fail in &self.failed {
            write!(f, "; failed: {fail}")?;
        }
        for e in &self.output_errors {
            write!(f, "; output failed: {e}")?;
        }
        Ok(())
    }
}

/// What was wrong with a copy that reconcile replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairKind {
    /// The location had no generation of this credential at all.
    Missing,
    /// The location's newest generation was older.
    Older {
        /// Its newest valid generation.
        had: u64,
    },
    /// The file had 0 bytes.
    Empty,
    /// The file was cut short.
    Truncated,
    /// Garbage, checksum mismatch, unparsable or misplaced.
    Corrupt {
        /// The decode error.
        reason: String,
    },
}

/// One copy written by reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// The credential.
    pub credential: String,
    /// The location repaired (`primary /path`).
    pub location: String,
    /// The generation written there.
    pub generation: u64,
    /// What was wrong.
    pub was: RepairKind,
    /// The location the good copy came from.
    pub from: String,
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.was {
            RepairKind::Missing => "was missing".to_string(),
            RepairKind::Older { had } => format!("was missing (it had generation {had})"),
            RepairKind::Empty => "was an empty (0-byte) file".to_string(),
            RepairKind::Truncated => "was truncated".to_string(),
            RepairKind::Corrupt { reason } => format!("was corrupt ({reason})"),
        };
        write!(
            f,
            "repaired credential {} in {}: generation {} {what}; copied from {}",
            self.credential, self.location, self.generation, self.from
        )
    }
}

/// An invalid copy with no good copy anywhere, moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    /// The credential.
    pub credential: String,
    /// The generation lost.
    pub generation: u64,
    /// Where it was.
    pub path: String,
    /// Where it is now.
    pub moved_to: String,
    /// Why it was invalid.
    pub reason: String,
}

impl fmt::Display for Quarantine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "credential {}: generation {} at {} is invalid ({}) and no location has a good copy; moved it to {} for inspection",
            self.credential, self.generation, self.path, self.reason, self.moved_to
        )
    }
}

/// The result of reading every location and repairing what needed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Configuration risks (backup on the primary's filesystem, loose permissions).
    pub warnings: Vec<String>,
    /// Copies written.
    pub repairs: Vec<Repair>,
    /// Invalid copies with no good copy anywhere, moved aside.
    pub quarantined: Vec<Quarantine>,
    /// Trouble that could not be repaired (each names the path and the fix).
    pub problems: Vec<String>,
    /// Output files re-rendered because they were missing, wiped or stale.
    pub outputs: Vec<PathBuf>,
}

impl ReconcileReport {
    /// True when nothing needed doing and nothing is wrong (warnings aside).
    pub fn is_clean(&self) -> bool {
        self.repairs.is_empty()
            && self.quarantined.is_empty()
            && self.problems.is_empty()
            && self.outputs.is_empty()
    }

    /// Every entry as one human-readable line, warnings first.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .warnings
            .iter()
            .map(|w| format!("warning: {w}"))
            .collect();
        out.extend(self.repairs.iter().map(|r| r.to_string()));
        out.extend(self.quarantined.iter().map(|q| q.to_string()));
        out.extend(self.problems.iter().map(|p| format!("problem: {p}")));
        out.extend(
            self.outputs
                .iter()
                .map(|p| format!("re-rendered output {}", p.display())),
        );
        out
    }
}
