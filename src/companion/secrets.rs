//! Device tokens: kept in the OS keyring, with an announced 0600-file fallback.
//!
//! Every keyring call runs on its own thread and is abandoned after [`KEYRING_TIMEOUT`]:
//! a Secret Service that hangs (locked collection waiting for a prompt nobody sees, a
//! stuck bus) must not hang the companion. When the keyring is unavailable and the backend
//! is `auto`, tokens go to `device-tokens.toml` (0600) in the config directory and the
//! store raises a [`FallbackNotice`] once, for the CLI to print and the tray to show.

use crate::secret::ApiToken;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Keyring service name under which device tokens are stored.
pub const KEYRING_SERVICE: &str = "tether";
/// Environment variable selecting the backend: `keyring`, `file` or `auto` (default).
pub const SECRETS_ENV: &str = "TETHER_SECRETS";
/// Upper bound for one keyring call.
pub const KEYRING_TIMEOUT: Duration = Duration::from_secs(3);
/// Name of the fallback file inside the config directory.
pub const SECRETS_FILE: &str = "device-tokens.toml";

/// Where device tokens may be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The keyring, falling back to the file (announced) when the keyring is unavailable.
    Auto,
    /// Only the keyring; unavailable is an error.
    Keyring,
    /// Only the file (chosen explicitly, so not announced).
    File,
}

impl Backend {
    /// Reads [`SECRETS_ENV`]; unset or empty means [`Backend::Auto`].
    pub fn from_env() -> Result<Backend, SecretsError> {
        match std::env::var(SECRETS_ENV) {
            Err(_) => Ok(Backend::Auto),
            Ok(v) => match v.trim() {
                "" | "auto" => Ok(Backend::Auto),
                "keyring" => Ok(Backend::Keyring),
                "file" => Ok(Backend::File),
                other => Err(SecretsError::BadBackend(other.to_string())),
            },
        }
    }
}

/// Where a token ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// In the OS keyring.
    Keyring,
    /// In the 0600 fallback file.
    File,
}

/// The one-time announcement that tokens are kept in a file because the keyring is unavailable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackNotice {
    /// Why the keyring could not be used.
    pub reason: String,
    /// The file that holds the tokens instead.
    pub file: PathBuf,
}

impl std::fmt::Display for FallbackNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the os keyring is not available ({}); device tokens are kept in {} ({}) instead",
            self.reason,
            self.file.display(),
            crate::files::PRIVATE_FILE
        )
    }
}

/// Why a device token could not be stored, read or deleted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// `TETHER_SECRETS` has an unknown value.
    #[error("{SECRETS_ENV}=`{0}` is not a secrets backend; use `keyring`, `file` or `auto`")]
    BadBackend(String),
    /// No token for the agent anywhere.
    #[error("no device token for agent {agent} in the keyring or {file}; pair again with `tether pair CODE`")]
    NotFound {
        /// The agent.
        agent: String,
        /// The fallback file that was searched too.
        file: PathBuf,
    },
    /// The keyring was required but is unavailable.
    #[error("the os keyring is not available for agent {agent}'s device token: {reason}; unlock or start the keyring, or set {SECRETS_ENV}=file")]
    KeyringUnavailable {
        /// The agent.
        agent: String,
        /// What the keyring said (or that it timed out).
        reason: String,
    },
    /// The keyring refused the operation for another reason.
    #[error("the os keyring failed on agent {agent}'s device token: {reason}")]
    Keyring {
        /// The agent.
        agent: String,
        /// What the keyring said.
        reason: String,
    },
    /// The fallback file could not be read, parsed or written.
    #[error("device token file {file}: {reason}")]
    File {
        /// The file.
        file: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// Outcome of one bounded keyring call.
enum KeyringOutcome<T> {
    Done(T),
    Missing,
    Unavailable(String),
    Failed(String),
}

/// The device-token store.
#[derive(Debug)]
pub struct SecretStore {
    backend: Backend,
    file: PathBuf,
    timeout: Duration,
    /// Set once when the first fallback happens; `taken` records that it was handed out.
    notice: Mutex<NoticeSlot>,
}

#[derive(Debug, Default)]
struct NoticeSlot {
    pending: Option<FallbackNotice>,
    announced: bool,
}

impl SecretStore {
    /// A store whose fallback file lives in `config_dir`.
    pub fn new(config_dir: &Path, backend: Backend) -> SecretStore {
        SecretStore {
            backend,
            file: config_dir.join(SECRETS_FILE),
            timeout: KEYRING_TIMEOUT,
            notice: Mutex::new(NoticeSlot::default()),
        }
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The fallback file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The fallback announcement, returned once after the first fallback, then `None`.
    pub fn take_notice(&self) -> Option<FallbackNotice> {
        // The mutex only guards the slot; a panic while holding it cannot leave it torn.
        let mut slot = self.notice.lock();
        slot.pending.take()
    }

    fn announce(&self, reason: String) {
        let mut slot = self.notice.lock();
        if !slot.announced {
            slot.announced = true;
            slot.pending = Some(FallbackNotice {
                reason,
                file: self.file.clone(),
            });
        }
    }

    /// Stores `token` as agent `agent`'s device token.
    pub fn store(&self, agent: &str, token: &ApiToken) -> Result<Stored, SecretsError> {
        if self.backend != Backend::File {
            let secret = token.secret().to_string();
            let user = agent.to_string();
            let outcome = self.keyring(move |e| e.set_password(&secret), &user);
            if self.settle(agent, outcome)?.is_some() {
                // A token left in the file from an earlier fallback is now stale.
                self.file_remove(agent)?;
                return Ok(Stored::Keyring);
            }
        }
        let mut map = self.file_read()?;
        map.insert(agent.to_string(), token.secret().to_string());
        self.file_write(&map)?;
        Ok(Stored::File)
    }

    /// What a keyring call's outcome means for `agent`: `Some` when it worked, `None` to
    /// carry on with the file (missing, or keyring unavailable in `Auto` mode, which is
    /// announced), an error otherwise.
    fn settle<T>(
        &self,
        agent: &str,
        outcome: KeyringOutcome<T>,
    ) -> Result<Option<T>, SecretsError> {
        match outcome {
            KeyringOutcome::Done(v) => Ok(Some(v)),
            KeyringOutcome::Missing => Ok(None),
            KeyringOutcome::Unavailable(reason) if self.backend == Backend::Auto => {
                self.announce(reason);
                Ok(None)
            }
            KeyringOutcome::Unavailable(reason) => Err(SecretsError::KeyringUnavailable {
                agent: agent.into(),
                reason,
            }),
            KeyringOutcome::Failed(reason) => Err(SecretsError::Keyring {
                agent: agent.into(),
                reason,
            }),
        }
    }

    /// Reads agent `agent`'s device token.
    pub fn load(&self, agent: &str) -> Result<ApiToken, SecretsError> {
        if self.backend != Backend::File {
            let user = agent.to_string();
            // Missing from the keyring: it may have been stored in the file during an outage.
            if let Some(t) = self.settle(agent, self.keyring(|e| e.get_password(), &user))? {
                return Ok(ApiToken::new(t));
            }
        }
        self.file_read()?
            .remove(agent)
            .map(ApiToken::new)
            .ok_or_else(|| SecretsError::NotFound {
                agent: agent.into(),
                file: self.file.clone(),
            })
    }

    /// Deletes agent `agent`'s device token wherever it is; a missing token is fine.
    pub fn delete(&self, agent: &str) -> Result<(), SecretsError> {
        if self.backend != Backend::File {
            let user = agent.to_string();
            // Deleted or missing from the keyring: the file may still hold a copy.
            self.settle(agent, self.keyring(|e| e.delete_credential(), &user))?;
        }
        self.file_remove(agent)
    }

    /// Runs one keyring call on its own thread, bounded by the timeout.
    fn keyring<T: Send + 'static>(
        &self,
        op: impl FnOnce(&keyring::Entry) -> keyring::Result<T> + Send + 'static,
        user: &str,
    ) -> KeyringOutcome<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        let user = user.to_string();
        let spawned = std::thread::Builder::new()
            .name("tether-keyring".into())
            .spawn(move || {
                let result = keyring::Entry::new(KEYRING_SERVICE, &user).and_then(|e| op(&e));
                // The receiver may have given up (timeout): nothing to do then.
                let _ = tx.send(result);
            });
        if let Err(e) = spawned {
            return KeyringOutcome::Failed(format!("cannot start a thread for the keyring: {e}"));
        }
        match rx.recv_timeout(self.timeout) {
            Ok(Ok(v)) => KeyringOutcome::Done(v),
            Ok(Err(keyring::Error::NoEntry)) => KeyringOutcome::Missing,
            Ok(Err(
                e @ (keyring::Error::PlatformFailure(_) | keyring::Error::NoStorageAccess(_)),
            )) => KeyringOutcome::Unavailable(one_line(&e.to_string())),
            Ok(Err(e)) => KeyringOutcome::Failed(one_line(&e.to_string())),
            // The thread is left to finish or hang on its own; it holds no lock of ours.
            Err(_) => KeyringOutcome::Unavailable(format!(
                "no answer within {} s",
                self.timeout.as_secs_f32()
            )),
        }
    }

    /// Agents whose device token is in the fallback file (not in the keyring); no token
    /// is returned.
    pub fn agents_in_file(&self) -> Vec<String> {
        self.file_read()
            .map(|m| m.into_keys().collect())
            .unwrap_or_default()
    }

    fn file_read(&self) -> Result<BTreeMap<String, String>, SecretsError> {
        let text = match std::fs::read_to_string(&self.file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(self.file_error(format!("cannot read: {e}"))),
        };
        #[derive(serde::Deserialize)]
        struct FileShape {
            #[serde(default)]
            tokens: BTreeMap<String, String>,
        }
        toml::from_str::<FileShape>(&text)
            .map(|f| f.tokens)
            // toml's message quotes the offending text, which could be a token: keep only the line.
            .map_err(|e| {
                let line = e.span().map_or(1, |s| {
                    text[..s.start.min(text.len())].matches('\n').count() + 1
                });
                self.file_error(format!(
                    "not valid at line {line}; fix or delete the file and pair again"
                ))
            })
    }

    fn file_write(&self, map: &BTreeMap<String, String>) -> Result<(), SecretsError> {
        let mut text = String::from("# tether device tokens (the os keyring was unavailable). Keep this file private.\n[tokens]\n");
        for (agent, token) in map {
            // toml::Value renders a correctly escaped string literal.
            text.push_str(&format!(
                "{} = {}\n",
                toml::Value::String(agent.clone()),
                toml::Value::String(token.clone())
            ));
        }
        crate::files::write_private(&self.file, text.as_bytes())
            .map_err(|e| self.file_error(format!("cannot write: {e}")))
    }

    fn file_remove(&self, agent: &str) -> Result<(), SecretsError> {
        let mut map = self.file_read()?;
        if map.remove(agent).is_some() {
            self.file_write(&map)?;
        }
        Ok(())
    }

    fn file_error(&self, reason: String) -> SecretsError {
        SecretsError::File {
            file: self.file.clone(),
            reason,
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

// `cfg(test)` right above `mod tests`, so scripts/structure.py reads it as the tests.
#[cfg(unix)]
#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn file_backend_round_trip_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path(), Backend::File);
        assert!(matches!(
            store.load("studio"),
            Err(SecretsError::NotFound { .. })
        ));
        assert_eq!(
            store.store("studio", &ApiToken::new("tok\"1")).unwrap(),
            Stored::File
        );
        store.store("lab", &ApiToken::new("tok2")).unwrap();
        assert_eq!(store.load("studio").unwrap().secret(), "tok\"1");
        let mode = std::fs::metadata(store.file())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        store.delete("studio").unwrap();
        assert!(store.load("studio").is_err());
        assert_eq!(store.load("lab").unwrap().secret(), "tok2");
        // An explicitly chosen file backend is not a fallback: nothing to announce.
        assert!(store.take_notice().is_none());
    }

    #[test]
    fn corrupt_file_error_names_the_line_but_not_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path(), Backend::File);
        std::fs::write(store.file(), "[tokens]\nstudio = \"SECRETVALUE\nx").unwrap();
        let err = store.load("studio").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("SECRETVALUE"), "{err}");
    }
}
