//! Who may call the daemon: device tokens (the companion) and agent tokens (the user's
//! agent), pairing secrets, and the rate limit on failed pairing attempts.
//!
//! Only SHA-256 hashes of tokens and pairing secrets are stored, in `devices.json` and
//! `pairing/<hash>.json` under the state directory. The daemon and the `tether agent`
//! commands share these files (read-modify-write under an `flock`), so `tether agent
//! pair`, `revoke` and `token create` work while the daemon runs: the daemon notices a
//! changed `devices.json` on the next request.

use crate::files;
use crate::secret::{constant_time_eq, random_token, sha256_hex, ApiToken, PairingSecret};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Devices file in the state directory.
pub const DEVICES_FILE: &str = "devices.json";
/// Pairing secrets directory in the state directory.
pub const PAIRING_DIR: &str = "pairing";
/// Lifetime of a pairing secret.
pub const PAIRING_TTL: Duration = Duration::from_secs(600);
/// Failed pairing attempts allowed per client address within [`PAIR_WINDOW`].
pub const PAIR_FAILURES_ALLOWED: usize = 5;
/// Window of the pairing rate limit.
pub const PAIR_WINDOW: Duration = Duration::from_secs(600);

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The owner's companion: health, events, re-auth, secret push, metrics.
    Device,
    /// The user's agent: access tokens and nothing else.
    Agent,
}

impl Role {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Device => "device",
            Role::Agent => "agent",
        }
    }
}

/// Why an auth-store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The state files could not be read or written.
    #[error("failed to access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `devices.json` is not valid.
    #[error("{path} is corrupt: {reason}; restore it from a backup or delete it and pair again")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Parser message.
        reason: String,
    },
    /// Unknown, used or wrong pairing secret.
    #[error("pairing secret is not valid (wrong, already used, or expired); run `tether agent pair` for a new code")]
    PairingInvalid,
    /// The pairing secret expired.
    #[error("pairing secret expired; run `tether agent pair` for a new code")]
    PairingExpired,
    /// Bad device name.
    #[error("device name must be 1 to 100 printable characters")]
    BadName,
}

/// One entry of `devices.json` (only the token hash is stored).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Short id for `tether agent revoke`.
    pub id: String,
    /// Device or agent name.
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was last used (flushed periodically by the daemon).
    #[serde(default)]
    pub last_used: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevicesFile {
    version: u32,
    tokens: Vec<TokenEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PairingFile {
    expires_at: DateTime<Utc>,
}

/// The caller behind a valid token.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Token id.
    pub id: String,
    /// Token name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// File identity used to notice that another process rewrote `devices.json`.
type Stamp = Option<(u64, u64, i64, i64)>;

struct Cache {
    tokens: Vec<TokenEntry>,
    stamp: Stamp,
    used: HashMap<String, DateTime<Utc>>,
}

/// The token store of one state directory.
pub struct AuthStore {
    dir: PathBuf,
    cache: Mutex<Cache>,
    limiter: Mutex<PairLimiter>,
}

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
}

impl AuthStore {
    /// Opens the store in `state_dir` (creating the directories 0700).
    pub fn open(state_dir: &Path) -> Result<AuthStore, AuthError> {
        let store = AuthStore {
            dir: state_dir.to_path_buf(),
            cache: Mutex::new(Cache {
                tokens: Vec::new(),
                stamp: None,
                used: HashMap::new(),
            }),
            limiter: Mutex::new(PairLimiter::default()),
        };
        let pairing = store.dir.join(PAIRING_DIR);
        files::ensure_private_dir(&pairing).map_err(|source| AuthError::Io {
            path: pairing,
            source,
        })?;
        store.reload_if_changed()?;
        Ok(store)
    }

    fn devices_path(&self) -> PathBuf {
        self.dir.join(DEVICES_FILE)
    }

    fn io(&self, path: &Path) -> impl Fn(std::io::Error) -> AuthError {
        let path = path.to_path_buf();
        move |source| AuthError::Io {
            path: path.clone(),
            source,
        }
    }

    fn read_file(&self) -> Result<DevicesFile, AuthError> {
        let path = self.devices_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| AuthError::Corrupt {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DevicesFile {
                version: 1,
                tokens: Vec::new(),
            }),
            Err(e) => Err(self.io(&path)(e)),
        }
    }

    /// Read-modify-write of `devices.json` under the lock shared with other processes.
    fn update<T>(&self, f: impl FnOnce(&mut DevicesFile) -> T) -> Result<T, AuthError> {
        let lock_path = self.dir.join(".devices.lock");
        let _lock = files::FileLock::acquire(&lock_path).map_err(self.io(&lock_path))?;
        let mut file = self.read_file()?;
        let out = f(&mut file);
        file.version = 1;
        let path = self.devices_path();
        // Invariant: DevicesFile is plain data; serializing it cannot fail.
        let bytes = serde_json::to_vec_pretty(&file).expect("devices file serializes");
        files::write_atomic(&path, &bytes).map_err(self.io(&path))?;
        drop(_lock);
        self.reload_if_changed()?;
        Ok(out)
    }

    fn reload_if_changed(&self) -> Result<(), AuthError> {
        let path = self.devices_path();
        let now = stamp(&path);
        // Invariant: the cache lock is never held across a panic-prone call.
        let mut cache = self.cache.lock();
        if cache.stamp == now && now.is_some() {
            return Ok(());
        }
        let file = self.read_file()?;
        cache.tokens = file.tokens;
        cache.stamp = now;
        Ok(())
    }

    /// Makes a new token of `role` called `name` and returns its id and the token (shown once).
    pub fn create_token(&self, role: Role, name: &str) -> Result<(String, ApiToken), AuthError> {
        let name = check_name(name)?;
        let token = ApiToken::new(format!("tth_{}_{}", role.as_str(), random_token(32)));
        let id = random_token(6).to_lowercase().replace(['-', '_'], "x");
        let entry = TokenEntry {
            id: id.clone(),
            name: name.to_string(),
            role,
            token_hash: sha256_hex(token.secret()),
            created_at: Utc::now(),
            last_used: None,
        };
        self.update(|f| f.tokens.push(entry))?;
        Ok((id, token))
    }

    /// Every token (hashes included; callers show only id, name, role and dates).
    pub fn list(&self) -> Result<Vec<TokenEntry>, AuthError> {
        self.reload_if_changed()?;
        let cache = self.cache.lock();
        let mut out = cache.tokens.clone();
        for t in &mut out {
            if let Some(u) = cache.used.get(&t.id) {
                t.last_used = Some(t.last_used.map_or(*u, |old| old.max(*u)));
            }
        }
        Ok(out)
    }

    /// Removes the token with `id`; false when there is none. Effective at once, also for
    /// a running daemon (it rereads the file on the next request).
    pub fn revoke(&self, id: &str) -> Result<bool, AuthError> {
        self.update(|f| {
            let before = f.tokens.len();
            f.tokens.retain(|t| t.id != id);
            f.tokens.len() != before
        })
    }

    /// True while the token with `id` exists (not revoked). Rereads `devices.json` when
    /// another process (`tether agent revoke`) changed it; when it cannot be reread, the
    /// answer is no (fail closed).
    pub fn is_current(&self, id: &str) -> bool {
        if let Err(e) = self.reload_if_changed() {
            tracing::error!("cannot reload the device list: {e}");
            return false;
        }
        let cache = self.cache.lock();
        cache.tokens.iter().any(|t| t.id == id)
    }

    /// The principal behind `token`, if it is a current token. Every stored hash is compared
    /// in constant time so timing tells nothing about which prefix matched.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        if let Err(e) = self.reload_if_changed() {
            // Fail closed: a list that cannot be read may be one that revoked this token.
            tracing::error!(
                "cannot reload the device list, refusing every token until it can be read: {e}"
            );
            return None;
        }
        let hash = sha256_hex(token);
        let mut cache = self.cache.lock();
        let mut found = None;
        for t in &cache.tokens {
            if constant_time_eq(t.token_hash.as_bytes(), hash.as_bytes()) {
                found = Some(Principal {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    role: t.role,
                });
            }
        }
        if let Some(p) = &found {
            cache.used.insert(p.id.clone(), Utc::now());
        }
        found
    }

    /// Writes the in-memory last-use times to `devices.json` (called periodically and at
    /// shutdown, so a busy agent does not rewrite the file on every request).
    pub fn flush_last_used(&self) -> Result<(), AuthError> {
        let used = {
            let mut cache = self.cache.lock();
            if cache.used.is_empty() {
                return Ok(());
            }
            std::mem::take(&mut cache.used)
        };
        self.update(|f| {
            for t in &mut f.tokens {
                if let Some(u) = used.get(&t.id) {
                    t.last_used = Some(t.last_used.map_or(*u, |old| old.max(*u)));
                }
            }
        })
    }

    /// Makes a single-use pairing secret valid for `ttl`; only its hash is written.
    pub fn create_pairing(
        &self,
        ttl: Duration,
    ) -> Result<(PairingSecret, DateTime<Utc>), AuthError> {
        let secret = PairingSecret::new(random_token(32));
        let expires_at =
            Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(10));
        let path = self.pairing_path(&secret);
        // Invariant: PairingFile is plain data.
        let bytes =
            serde_json::to_vec(&PairingFile { expires_at }).expect("pairing file serializes");
        files::write_atomic(&path, &bytes).map_err(self.io(&path))?;
        self.prune_pairings();
        Ok((secret, expires_at))
    }

    fn pairing_path(&self, secret: &PairingSecret) -> PathBuf {
        // The file name is a hex hash, so no secret text ever reaches a path.
        self.dir
            .join(PAIRING_DIR)
            .join(format!("{}.json", sha256_hex(secret.secret())))
    }

    /// Deletes expired pairing secrets.
    pub fn prune_pairings(&self) {
        let dir = self.dir.join(PAIRING_DIR);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in entries.flatten() {
            let expired = std::fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice::<PairingFile>(&b).ok())
                .map(|p| p.expires_at <= Utc::now())
                .unwrap_or(true);
            if expired && e.file_name().to_string_lossy().ends_with(".json") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Redeems a pairing secret for a new device token (single use). The whole request is
    /// checked before the secret is consumed: a bad device name leaves it usable.
    pub fn redeem_pairing(
        &self,
        secret: &PairingSecret,
        device_name: &str,
    ) -> Result<(String, ApiToken), AuthError> {
        check_name(device_name)?;
        let path = self.pairing_path(secret);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AuthError::PairingInvalid)
            }
            Err(e) => return Err(self.io(&path)(e)),
        };
        // Claim it: of two concurrent redeemers only one unlink succeeds.
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AuthError::PairingInvalid)
            }
            Err(e) => return Err(self.io(&path)(e)),
        }
        let _ = files::sync_dir(&self.dir.join(PAIRING_DIR));
        let file: PairingFile =
            serde_json::from_slice(&bytes).map_err(|_| AuthError::PairingInvalid)?;
        if file.expires_at <= Utc::now() {
            return Err(AuthError::PairingExpired);
        }
        self.create_token(Role::Device, device_name)
    }

    /// Whether `addr` may try to pair now (false once it failed too often).
    pub fn pairing_allowed(&self, addr: IpAddr) -> bool {
        self.limiter.lock().begin(addr, Instant::now())
    }

    /// The attempt that [`pairing_allowed`](Self::pairing_allowed) let through was not a
    /// wrong guess (it paired, or failed for another reason): it does not count.
    pub fn pairing_not_a_guess(&self, addr: IpAddr) {
        self.limiter.lock().refund(addr);
    }
}

/// A token or device name, trimmed: 1 to 100 characters, none of them control characters.
fn check_name(name: &str) -> Result<&str, AuthError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AuthError::BadName);
    }
    Ok(name)
}

/// Sliding-window count of failed pairing attempts, per address and overall.
#[derive(Default)]
struct PairLimiter {
    per_addr: HashMap<IpAddr, VecDeque<Instant>>,
}

impl PairLimiter {
    fn expire(q: &mut VecDeque<Instant>, now: Instant) {
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= PAIR_WINDOW)
        {
            q.pop_front();
        }
    }

    /// Reserves one attempt for `addr` (failures and attempts in flight both count, so
    /// parallel requests cannot overrun the cap); false when the cap is reached. There is
    /// no global cap: the secret is 256 random bits, so guessing is hopeless anyway, and a
    /// global cap would let anyone lock the owner out of pairing.
    fn begin(&mut self, addr: IpAddr, now: Instant) -> bool {
        let q = self.per_addr.entry(addr).or_default();
        Self::expire(q, now);
        if q.len() >= PAIR_FAILURES_ALLOWED {
            return false;
        }
        q.push_back(now);
        true
    }

    /// The attempt did not fail (paired, or refused for a reason that is not a guess):
    /// its reservation is given back.
    fn refund(&mut self, addr: IpAddr) {
        if let Some(q) = self.per_addr.get_mut(&addr) {
            q.pop_back();
            if q.is_empty() {
                self.per_addr.remove(&addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::open(dir.path()).unwrap();
        let (id, token) = store.create_token(Role::Agent, "uploader").unwrap();
        let text = std::fs::read_to_string(dir.path().join(DEVICES_FILE)).unwrap();
        assert!(!text.contains(token.secret()));
        let p = store.authenticate(token.secret()).unwrap();
        assert_eq!((p.id.as_str(), p.role), (id.as_str(), Role::Agent));
        assert!(store.authenticate("tth_agent_wrong").is_none());
        // A second store (another process) revokes; the first notices at once.
        let other = AuthStore::open(dir.path()).unwrap();
        assert!(other.revoke(&id).unwrap());
        assert!(store.authenticate(token.secret()).is_none());
        assert!(!other.revoke(&id).unwrap());
    }

    #[test]
    fn pairing_is_single_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::open(dir.path()).unwrap();
        let (secret, _) = store.create_pairing(PAIRING_TTL).unwrap();
        let (_, token) = store.redeem_pairing(&secret, "laptop").unwrap();
        assert_eq!(
            store.authenticate(token.secret()).unwrap().role,
            Role::Device
        );
        assert!(matches!(
            store.redeem_pairing(&secret, "laptop"),
            Err(AuthError::PairingInvalid)
        ));
        let (secret, _) = store.create_pairing(Duration::from_secs(0)).unwrap();
        assert!(store.redeem_pairing(&secret, "laptop").is_err());
    }

    #[test]
    fn a_bad_device_name_does_not_spend_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::open(dir.path()).unwrap();
        let (secret, _) = store.create_pairing(PAIRING_TTL).unwrap();
        for bad in ["", "   ", "tab\there", &"x".repeat(101)] {
            assert!(matches!(
                store.redeem_pairing(&secret, bad),
                Err(AuthError::BadName)
            ));
        }
        assert!(store.redeem_pairing(&secret, "laptop").is_ok());
    }

    #[test]
    fn limiter_blocks_after_failures_and_forgets_after_window() {
        let mut l = PairLimiter::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..PAIR_FAILURES_ALLOWED {
            assert!(l.begin(a, t0));
        }
        assert!(!l.begin(a, t0));
        assert!(l.begin(b, t0));
        assert!(l.begin(a, t0 + PAIR_WINDOW));
    }

    #[test]
    fn parallel_attempts_cannot_overrun_the_cap_and_nobody_else_is_locked_out() {
        let mut l = PairLimiter::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        // Fifty requests in flight at once: only the cap's worth get through.
        let through = (0..50).filter(|_| l.begin(a, t0)).count();
        assert_eq!(through, PAIR_FAILURES_ALLOWED);
        // A thousand failures from many addresses lock out none of the others.
        for i in 0..1000u32 {
            let x = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            for _ in 0..PAIR_FAILURES_ALLOWED {
                l.begin(x, t0);
            }
        }
        let owner: IpAddr = "198.51.100.7".parse().unwrap();
        assert!(l.begin(owner, t0));
        // A successful pairing gives its reservation back.
        l.refund(owner);
        assert!(!l.per_addr.contains_key(&owner));
    }

    #[test]
    fn an_unreadable_device_list_accepts_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::open(dir.path()).unwrap();
        let (_, token) = store.create_token(Role::Device, "laptop").unwrap();
        assert!(store.authenticate(token.secret()).is_some());
        std::fs::write(dir.path().join(DEVICES_FILE), b"{ not json").unwrap();
        assert!(store.authenticate(token.secret()).is_none(), "fail closed");
    }
}
