//! Why `agent.toml` could not be used.

use std::path::PathBuf;

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read agent config {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("agent config is not valid")]
    Parse(#[from] toml::de::Error),
    /// A value is out of range or inconsistent.
    #[error("agent config is not valid: {0}")]
    Invalid(String),
    /// An OpenBao location's settings break a rule.
    #[error("agent config is not valid")]
    OpenBao(#[from] crate::vault::openbao::config::OpenBaoConfigError),
}
