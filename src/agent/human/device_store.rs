//! A device-code sign-in in progress, kept on disk (`<state_dir>/device-flow/<name>.json`,
//! 0600, written atomically and durably) so a daemon restarted while the owner is typing
//! the code resumes polling with the same code instead of losing it.
//!
//! The file holds the device code, which is redeemed for tokens: it is a secret, private
//! to the daemon's user like the vault, and removed as soon as the flow ends. A crash
//! after the provider answered with tokens but before they were committed leaves a spent
//! code behind; the next poll then ends the flow (`expired_token`/`invalid_grant`) and
//! the stored credential is untouched.

use crate::oauth::device::DeviceAuthorization;
use crate::secret::RefreshToken;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The directory under the state directory.
pub const DEVICE_FLOW_DIR: &str = "device-flow";

/// The file's content. The device code is a [`RefreshToken`]-style secret, so a `Debug`
/// of this never prints it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    device_code: RefreshToken,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    expires_at: DateTime<Utc>,
    interval_secs: u64,
    /// The owner was sent this code (the alert went out): a resumed flow shows it again
    /// without alerting a second time. Absent in files of older daemons: not yet sent.
    #[serde(default)]
    announced: bool,
}

/// Where the flows of one daemon are kept.
#[derive(Debug, Clone)]
pub struct DeviceStore {
    dir: PathBuf,
}

/// Why a stored flow could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceStoreError {
    /// Writing, reading or removing the file failed.
    #[error("device sign-in file {path}: check that the state directory is writable")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file is not a stored flow (damaged): it is ignored and removed.
    #[error("device sign-in file {path} is damaged; a new sign-in is started instead")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

impl DeviceStore {
    /// The store under `state_dir`.
    pub fn new(state_dir: &Path) -> DeviceStore {
        DeviceStore {
            dir: state_dir.join(DEVICE_FLOW_DIR),
        }
    }

    fn path(&self, credential: &str) -> PathBuf {
        // Credential names are `[a-z0-9][a-z0-9_-]*` (checked by the config), so this stays
        // inside the directory.
        self.dir.join(format!("{credential}.json"))
    }

    /// Saves (or updates, after a `slow_down`) the flow of `credential`; `announced` says
    /// whether the owner has been sent its code.
    pub fn save(
        &self,
        credential: &str,
        a: &DeviceAuthorization,
        announced: bool,
    ) -> Result<(), DeviceStoreError> {
        let path = self.path(credential);
        let io = |source| DeviceStoreError::Io {
            path: path.clone(),
            source,
        };
        crate::files::ensure_private_dir(&self.dir).map_err(io)?;
        let stored = Stored {
            device_code: RefreshToken::new(a.device_code.secret()),
            user_code: a.user_code.clone(),
            verification_uri: a.verification_uri.clone(),
            verification_uri_complete: a.verification_uri_complete.clone(),
            expires_at: a.expires_at,
            interval_secs: a.interval.as_secs(),
            announced,
        };
        // Invariant: plain strings, a time and a number always serialize.
        let bytes = serde_json::to_vec(&stored).expect("a stored flow serializes");
        crate::files::write_atomic(&path, &bytes).map_err(io)
    }

    /// The flow of `credential` a previous run left, if any, and whether its code was sent
    /// to the owner.
    pub fn load(
        &self,
        credential: &str,
    ) -> Result<Option<(DeviceAuthorization, bool)>, DeviceStoreError> {
        let path = self.path(credential);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(DeviceStoreError::Io { path, source }),
        };
        let s: Stored = serde_json::from_slice(&bytes)
            .map_err(|source| DeviceStoreError::Damaged { path, source })?;
        Ok(Some((
            DeviceAuthorization {
                device_code: s.device_code,
                user_code: s.user_code,
                verification_uri: s.verification_uri,
                verification_uri_complete: s.verification_uri_complete,
                expires_at: s.expires_at,
                interval: Duration::from_secs(s.interval_secs.clamp(1, 300)),
            },
            s.announced,
        )))
    }

    /// Forgets the flow of `credential` (it ended); a missing file is fine.
    pub fn remove(&self, credential: &str) -> Result<(), DeviceStoreError> {
        let path = self.path(credential);
        match std::fs::remove_file(&path) {
            Ok(()) => crate::files::sync_dir(&self.dir).map_err(|source| DeviceStoreError::Io {
                path: self.dir.clone(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(DeviceStoreError::Io { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn flow() -> DeviceAuthorization {
        DeviceAuthorization {
            device_code: RefreshToken::new("device-code-SECRET"),
            user_code: "WDJB-MJHT".into(),
            verification_uri: "https://example.com/device".into(),
            verification_uri_complete: None,
            expires_at: Utc::now() + chrono::Duration::minutes(10),
            interval: Duration::from_secs(10),
        }
    }

    #[test]
    fn a_saved_flow_comes_back_private_and_goes_away() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeviceStore::new(dir.path());
        assert!(store.load("gh").unwrap().is_none());
        store.save("gh", &flow(), false).unwrap();
        let path = dir.path().join(DEVICE_FLOW_DIR).join("gh.json");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (back, announced) = store.load("gh").unwrap().unwrap();
        assert!(!announced);
        assert_eq!(back.device_code.secret(), "device-code-SECRET");
        assert_eq!(back.user_code, "WDJB-MJHT");
        assert_eq!(back.interval, Duration::from_secs(10));
        assert!(!format!("{back:?}").contains("SECRET"));
        store.save("gh", &back, true).unwrap();
        assert!(store.load("gh").unwrap().unwrap().1, "the code was sent");
        store.remove("gh").unwrap();
        assert!(store.load("gh").unwrap().is_none());
        store.remove("gh").unwrap();
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeviceStore::new(dir.path());
        std::fs::create_dir_all(dir.path().join(DEVICE_FLOW_DIR)).unwrap();
        std::fs::write(dir.path().join(DEVICE_FLOW_DIR).join("gh.json"), b"").unwrap();
        let e = store.load("gh").unwrap_err();
        assert!(e.to_string().contains("gh.json"), "{e}");
    }
}
