//! Channel secrets (bot tokens, SMTP passwords, ntfy tokens): a redacting newtype and
//! reading one from the file or environment variable the config names.

use super::error::AlertsConfigError;
use std::fmt;
use std::path::{Path, PathBuf};

/// A secret an alert channel needs: never printed, reached only through `.secret()`.
///
/// Local to the alerts module because these secrets belong to the owner's notification
/// services, not to any OAuth flow, and must not be mixed up with the crate's token types.
#[derive(Clone)]
pub struct ChannelSecret(String);

impl ChannelSecret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        ChannelSecret(value.into())
    }

    /// The secret itself: call only where it is sent.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ChannelSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChannelSecret([redacted])")
    }
}

impl fmt::Display for ChannelSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret comes from, as named by two optional config fields.
pub(crate) struct SecretSource<'a> {
    /// Channel label, for error messages.
    pub channel: &'a str,
    /// What the secret is, e.g. `bot token`.
    pub what: &'static str,
    /// Name of the file field, e.g. `bot_token_file`.
    pub file_field: &'static str,
    /// Name of the environment field, e.g. `bot_token_env`.
    pub env_field: &'static str,
    /// The file field's value.
    pub file: Option<&'a Path>,
    /// The environment field's value.
    pub env: Option<&'a str>,
}

impl SecretSource<'_> {
    /// Reads the secret; `Ok(None)` when neither field is set.
    pub fn read(&self) -> Result<Option<ChannelSecret>, AlertsConfigError> {
        let value = match (self.file, self.env) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                return Err(AlertsConfigError::Invalid {
                    channel: self.channel.to_string(),
                    problem: format!(
                        "both {} and {} are set; keep only one",
                        self.file_field, self.env_field
                    ),
                })
            }
            (Some(path), None) => {
                let raw = std::fs::read_to_string(path).map_err(|source| {
                    AlertsConfigError::SecretFile {
                        channel: self.channel.to_string(),
                        what: self.what,
                        path: PathBuf::from(path),
                        source,
                    }
                })?;
                // Editors and `echo` add a trailing newline that is not part of the secret.
                raw.trim_end_matches(['\r', '\n']).to_string()
            }
            (None, Some(var)) => std::env::var(var).map_err(|_| AlertsConfigError::SecretEnv {
                channel: self.channel.to_string(),
                what: self.what,
                var: var.to_string(),
            })?,
        };
        if value.trim().is_empty() {
            return Err(AlertsConfigError::Invalid {
                channel: self.channel.to_string(),
                problem: format!(
                    "the {} read from {} is empty",
                    self.what,
                    match (self.file, self.env) {
                        (Some(p), _) => p.display().to_string(),
                        (_, Some(v)) => format!("${v}"),
                        _ => unreachable!("handled above: one source is set"),
                    }
                ),
            });
        }
        Ok(Some(ChannelSecret(value)))
    }

    /// Reads a secret that must be present.
    pub fn read_required(&self) -> Result<ChannelSecret, AlertsConfigError> {
        self.read()?.ok_or_else(|| AlertsConfigError::Invalid {
            channel: self.channel.to_string(),
            problem: format!(
                "no {} configured; set {} (a 0600 file) or {}",
                self.what, self.file_field, self.env_field
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = ChannelSecret::new("123:ABCSECRET");
        assert_eq!(format!("{s:?}"), "ChannelSecret([redacted])");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(s.secret(), "123:ABCSECRET");
    }

    #[test]
    fn reads_file_without_trailing_newline_and_rejects_both_sources() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("token");
        std::fs::write(&path, "abc\n").expect("write token");
        let src = SecretSource {
            channel: "tg",
            what: "bot token",
            file_field: "bot_token_file",
            env_field: "bot_token_env",
            file: Some(&path),
            env: None,
        };
        assert_eq!(src.read_required().expect("token").secret(), "abc");
        let both = SecretSource {
            env: Some("X"),
            ..src
        };
        assert!(both.read().is_err());
        let missing = SecretSource {
            file: Some(Path::new("/nonexistent/token")),
            env: None,
            ..both
        };
        let err = missing.read().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/token"), "{err}");
    }
}
