//! Refresh intents: a durable note written before a refresh token is spent and removed once
//! the answer is stored (or the provider's answer is known), so a refresh cut by a crash or
//! a lost connection is never replayed blindly.
//!
//! A rotating provider kills the old refresh token the moment it answers; presenting it
//! again is a "reuse", and reuse detection (OAuth 2.0 Security BCP 4.14) revokes the whole
//! grant. After a restart with an intent outstanding the daemon asks the provider about the
//! old refresh token where it can (RFC 7662 introspection), and otherwise tells the owner
//! plainly that the rotation was cut ([`crate::agent::daemon::Daemon::resolve_interrupted_refresh`]).

use crate::files;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// Directory of intents inside the daemon's state directory.
pub const INTENTS_DIR: &str = "intents";

/// One outstanding refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The vault generation whose refresh token is being spent.
    pub generation: u64,
    /// Short, non-reversible id of that refresh token (never the token).
    pub token_id: String,
    /// When the refresh started.
    pub started_at: DateTime<Utc>,
}

/// The intents of one daemon, one small file per credential.
#[derive(Debug)]
pub struct Intents {
    dir: PathBuf,
}

impl Intents {
    /// Opens (and creates, 0700) the intents directory under `state_dir`.
    pub fn open(state_dir: &Path) -> io::Result<Intents> {
        let dir = state_dir.join(INTENTS_DIR);
        files::ensure_private_dir(&dir)?;
        Ok(Intents { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        // Names are checked credential names (`[a-z0-9][a-z0-9_-]*`): no path tricks.
        self.dir.join(format!("{name}.json"))
    }

    /// Durably records that `intent` is about to be spent; returns once it is on disk.
    pub fn begin(&self, name: &str, intent: &Intent) -> io::Result<()> {
        // Invariant: Intent is plain data; serializing it cannot fail.
        let bytes = serde_json::to_vec(intent).expect("intent serializes");
        files::write_atomic(&self.path(name), &bytes)
    }

    /// The outcome is known (stored, or answered by the provider): forget the intent.
    pub fn clear(&self, name: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(name)) {
            Ok(()) => files::sync_dir(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The outstanding intent of `name`, if any. An unreadable file counts as outstanding
    /// with nothing known (generation 0), so it is never silently ignored.
    pub fn get(&self, name: &str) -> Option<Intent> {
        match std::fs::read(self.path(name)) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).unwrap_or(Intent {
                generation: 0,
                token_id: String::new(),
                started_at: Utc::now(),
            })),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_get_clear() {
        let dir = tempfile::tempdir().unwrap();
        let i = Intents::open(dir.path()).unwrap();
        assert_eq!(i.get("yt"), None);
        let intent = Intent {
            generation: 7,
            token_id: "abcdef012345".into(),
            started_at: Utc::now(),
        };
        i.begin("yt", &intent).unwrap();
        assert_eq!(i.get("yt"), Some(intent));
        i.clear("yt").unwrap();
        assert_eq!(i.get("yt"), None);
        i.clear("yt").unwrap();
    }

    #[test]
    fn a_damaged_intent_is_still_outstanding() {
        let dir = tempfile::tempdir().unwrap();
        let i = Intents::open(dir.path()).unwrap();
        std::fs::write(dir.path().join(INTENTS_DIR).join("yt.json"), b"").unwrap();
        assert_eq!(i.get("yt").map(|x| x.generation), Some(0));
    }
}
