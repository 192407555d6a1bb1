//! One location as the vault holds it: the [`Location`] with its role and what the vault
//! last saw there. Below the handle and the files that walk the locations (`scan.rs`,
//! `reconcile.rs`, `placement.rs`).

use super::location::{Location, LocationError};

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
