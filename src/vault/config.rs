//! The vault's configuration: where its copies live and what it renders (the `[vault]`
//! table of the agent's config file).

use super::openbao;
use super::output::OutputSpec;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Default number of generations kept per credential.
pub const DEFAULT_KEEP: usize = 5;

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
}
