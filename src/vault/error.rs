//! The vault's error type: what failed, on which credential or path, and how to fix it.

use super::location::LocationError;
use super::record::SCHEMA_VERSION;
use super::report::LocationFailure;
use std::path::PathBuf;

/// Everything that can go wrong in the vault. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// A credential name that could escape its directory or is not allowed on the wire.
    #[error("invalid credential name {name:?}: use 1 to 64 characters from a-z, 0-9, `_` and `-`, starting with a letter or digit")]
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// A config value that cannot work.
    #[error("invalid vault config: {0}")]
    Config(String),
    /// A location that is misconfigured (a file, not a directory): refused at open.
    #[error("cannot use the {role} vault location")]
    Location {
        /// `primary` or `backup N`.
        role: String,
        /// What is wrong there.
        #[source]
        source: LocationError,
    },
    /// Not a single location can be used.
    #[error("no vault location can be used; fix at least one: {}", details.join("; "))]
    NoUsableLocation {
        /// One line per location.
        details: Vec<String>,
    },
    /// No location has room for the next generation ([`super::Vault::reserve`]).
    #[error("credential {name}: no vault location has room for a new generation, so the refresh token was not spent: {}; free space in at least one location", details.join("; "))]
    NoRoom {
        /// The credential.
        name: String,
        /// Why each location refused.
        details: Vec<String>,
    },
    /// The inter-process lock could not be taken anywhere.
    #[error("cannot take the vault's lock in any location, so nothing was changed (another tether process could be writing at the same time): {}; check that the vault directories are writable", details.join("; "))]
    Lock {
        /// Why each location refused.
        details: Vec<String>,
    },
    /// A commit reached no location at all.
    #[error("credential {name}: generation {generation} could not be stored in any location, nothing changed: {}", failures.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; "))]
    AllLocationsFailed {
        /// The credential.
        name: String,
        /// The generation that was being written.
        generation: u64,
        /// Why each location refused.
        failures: Vec<LocationFailure>,
    },
    /// Another daemon committed a newer generation since this one read the record it
    /// changed: nothing was written anywhere (an older generation never replaces a newer
    /// one).
    #[error("credential {name}: not committed, because generation {newer} is newer than the generation {based_on} this change was made from (another daemon sharing {location} committed it); nothing was overwritten")]
    Stale {
        /// The credential.
        name: String,
        /// The generation the change was based on.
        based_on: u64,
        /// The newer generation found (or the one refused by check-and-set).
        newer: u64,
        /// The shared location.
        location: String,
    },
    /// The newest generation was written by a newer build.
    #[error("credential {name}: {path} was written by another tether version (record schema {found}, this build reads {SCHEMA_VERSION}); upgrade tether, or move that file out of the vault to fall back to the previous generation")]
    UnsupportedSchema {
        /// The credential.
        name: String,
        /// The file.
        path: String,
        /// Its schema version.
        found: u32,
    },
    /// The newest generation exists but cannot be read anywhere (a link, permissions).
    #[error("credential {name}: the newest generation {generation} cannot be read")]
    Unreadable {
        /// The credential.
        name: String,
        /// The generation.
        generation: u64,
        /// Where it is.
        path: String,
        /// Why (with the fix).
        #[source]
        source: LocationError,
    },
    /// Record files exist but none of them is valid.
    #[error("credential {name}: no valid generation in any location ({details}); copy a good record file from another machine or backup, or re-authorize the credential")]
    NoValidGeneration {
        /// The credential.
        name: String,
        /// What was found.
        details: String,
    },
    /// The credential does not exist.
    #[error("credential {name} is not in the vault; list credentials with `tether vault status`")]
    NotFound {
        /// The credential.
        name: String,
    },
    /// Rollback to a generation that is not kept.
    #[error("credential {name} has no valid generation {generation}; kept generations: {}; see `tether vault history {name}`", available.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(", "))]
    GenerationNotFound {
        /// The credential.
        name: String,
        /// The generation asked for.
        generation: u64,
        /// Generations that exist.
        available: Vec<u64>,
    },
    /// Some outputs could not be rendered.
    #[error("{} output file(s) could not be rendered: {}", failures.len(), failures.join("; "))]
    Outputs {
        /// One message per failed output (path and fix).
        failures: Vec<String>,
        /// Outputs that were re-rendered anyway.
        rerendered: Vec<PathBuf>,
    },
}
