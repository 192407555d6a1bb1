//! The vault's configuration: where its copies live and what it renders (the `[vault]`
//! table of the agent's config file).

use super::{openbao, OutputSpec, DEFAULT_KEEP};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
