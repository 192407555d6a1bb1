//! Generation history of one credential, for `tether vault history` and rollback.

use chrono::{DateTime, Utc};

/// One kept generation (no secrets: only what an operator needs to pick a rollback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Generation number.
    pub generation: u64,
    /// Provider preset.
    pub provider: String,
    /// Account label.
    pub account: Option<String>,
    /// When its tokens were obtained.
    pub obtained_at: DateTime<Utc>,
    /// When its access token expires(d).
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether it holds a refresh token.
    pub has_refresh_token: bool,
    /// Short SHA-256 prefix of the refresh token, to tell generations apart without
    /// showing the token (12 hex characters; not reversible).
    pub refresh_token_id: Option<String>,
    /// Locations holding a valid copy.
    pub locations: Vec<String>,
}

/// A short, non-reversible identifier of a token for display.
pub(crate) fn token_id(secret: &str) -> String {
    crate::secret::sha256_hex(secret)[..12].to_string()
}
