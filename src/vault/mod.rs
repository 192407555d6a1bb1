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
//!
//! # Files
//!
//! - `handle.rs`: [`Vault`], its locations' state, open, read, reconcile and health;
//!   `loc.rs`: one location as the vault holds it (role, usable, last error).
//! - `config.rs`: [`VaultConfig`], the `[vault]` table, and [`DEFAULT_KEEP`].
//! - `commit.rs`: commits, reservations before a rotating token is spent, rollback.
//! - `render.rs`: keeping the output files current.
//! - `placement.rs`: warnings about backups that protect against less than they seem to.
//! - `record.rs`: the record and its checksummed encoding; `scan.rs`: the newest valid
//!   generation across locations; `reconcile.rs`: repairs and history trimming.
//! - `location.rs`: the [`Location`] trait and [`DirLocation`]; `location_error.rs`:
//!   [`LocationError`]; `atomic.rs`: durable file operations for the directory location.
//! - `output.rs`: rendering one output file; `import.rs`: reading existing token files;
//!   `history.rs`: kept generations; `report.rs`: what a commit or reconcile did;
//!   `error.rs`: [`VaultError`].
//! - `openbao/`: an OpenBao KV v2 mount as a location.

pub mod atomic;
mod commit;
mod config;
mod error;
mod handle;
pub mod history;
pub mod import;
mod loc;
pub mod location;
mod location_error;
pub mod openbao;
pub mod output;
mod placement;
pub mod reconcile;
pub mod record;
mod render;
mod report;
pub mod scan;

pub use commit::{Reserved, RESERVE_BYTES};
pub use config::{VaultConfig, DEFAULT_KEEP};
pub use error::VaultError;
pub use handle::{Vault, MIN_FREE_BYTES};
pub use history::HistoryEntry;
pub use location::{DirLocation, Location, LocationError};
pub use output::{OutputError, OutputFormat, OutputSpec};
pub use record::{Record, SCHEMA_VERSION};
pub use report::{CommitReport, LocationFailure, Quarantine, ReconcileReport, Repair, RepairKind};
