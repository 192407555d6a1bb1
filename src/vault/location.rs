//! Where copies of records live: the [`Location`] trait and the directory location.
//!
//! A location stores opaque bytes per (credential, generation) slot; encoding, checksums
//! and the choice of the newest generation belong to the vault. The trait is the seam for
//! other kinds of place (an OS keyring entry per slot, a secrets engine's KV path): they
//! implement the same handful of slot operations. Their errors are in `location_error.rs`.

use super::atomic::{self, Kind};
pub use super::location_error::LocationError;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Largest record file the vault reads (records are a few KiB; this stops a planted
/// multi-gigabyte file from being read into memory).
pub const MAX_RECORD_BYTES: u64 = 1024 * 1024;

/// A place that holds copies of credential records.
pub trait Location: Send + Sync + fmt::Debug {
    /// Short label for reports and health (a directory's path).
    fn label(&self) -> String;
    /// Where one slot lives, for messages.
    fn slot_label(&self, name: &str, generation: u64) -> String;
    /// Gets the location ready (create it if missing) and checks it can be written.
    /// Returns warnings that do not stop it from working (loose permissions).
    fn prepare(&self) -> Result<Vec<String>, LocationError>;
    /// Credential names with at least a directory/entry here.
    fn credentials(&self) -> Result<Vec<String>, LocationError>;
    /// Generations present for `name` (valid or not; in no particular order).
    fn generations(&self, name: &str) -> Result<Vec<u64>, LocationError>;
    /// The stored bytes of one slot.
    fn read(&self, name: &str, generation: u64) -> Result<Vec<u8>, LocationError>;
    /// Stores a new slot durably and atomically; fails with [`LocationError::Exists`] if
    /// the slot is already there (a commit never replaces a stored generation).
    fn create(&self, name: &str, generation: u64, bytes: &[u8]) -> Result<(), LocationError>;
    /// Stores one slot durably and atomically, replacing an invalid copy of the same slot
    /// (repairs).
    fn write(&self, name: &str, generation: u64, bytes: &[u8]) -> Result<(), LocationError>;
    /// Deletes one slot (history trimming).
    fn remove(&self, name: &str, generation: u64) -> Result<(), LocationError>;
    /// Moves an unrecoverable slot aside, keeping it for inspection; returns where it went.
    fn quarantine(&self, name: &str, generation: u64) -> Result<String, LocationError>;
    /// Removes leftovers of interrupted writes for `name`; returns how many.
    fn clean_temp(&self, _name: &str) -> Result<usize, LocationError> {
        Ok(0)
    }
    /// Takes an exclusive lock shared with other processes using this location, if the
    /// location supports it; held until the returned guard is dropped.
    fn lock(&self) -> Result<Option<LocationLock>, LocationError> {
        Ok(None)
    }
    /// Sets aside `bytes` of room for the next generation of `name`, so a refresh token is
    /// spent only when its answer can be stored. The room is given back when the returned
    /// guard is dropped (just before the commit). `None`: this kind of location has no
    /// notion of room (it cannot fill up like a disk).
    fn reserve(&self, _name: &str, _bytes: usize) -> Result<Option<Reservation>, LocationError> {
        Ok(None)
    }
    /// True when other tether daemons write this location too (a secrets engine shared by
    /// a team): commits write here first, and a refused check-and-set
    /// ([`LocationError::Stale`]) aborts the commit everywhere.
    fn shared(&self) -> bool {
        false
    }
    /// The directory and device id, for "same filesystem as the primary" warnings.
    fn filesystem(&self) -> Option<(PathBuf, u64)> {
        None
    }
    /// Whether the location itself is there (a directory location whose directory was
    /// deleted is not); a missing location is recreated before the next commit.
    fn present(&self) -> bool {
        true
    }
    /// Bytes free for new records, where the location can tell (`statvfs`).
    fn free_bytes(&self) -> Option<u64> {
        None
    }
    /// A cheap summary of everything stored (names, sizes, times of the files), so the
    /// vault can tell "nothing changed since the last reconcile" without reading records.
    /// `None` when the location cannot tell cheaply (then only full reconciles see damage).
    fn stamp(&self) -> Option<u64> {
        None
    }
}

/// Room set aside in a location ([`Location::reserve`]); given back on drop.
#[derive(Debug)]
pub struct Reservation {
    path: PathBuf,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // Best effort: a leftover is a temp file, removed by the next `clean_temp`.
        let _ = fs::remove_file(&self.path);
    }
}

/// An exclusive inter-process lock; released on drop (and by the kernel if the process dies).
#[derive(Debug)]
pub struct LocationLock {
    _file: File,
}

/// A directory on a local filesystem: `<root>/<name>/gen-<generation, 12 digits>.json`.
#[derive(Debug, Clone)]
pub struct DirLocation {
    root: PathBuf,
}

/// Name of the lock file in a directory location's root.
const LOCK_FILE: &str = ".lock";

impl DirLocation {
    /// A directory location at `root` (nothing is touched until [`Location::prepare`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirLocation { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of one credential.
    pub fn credential_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// File of one slot.
    pub fn slot_path(&self, name: &str, generation: u64) -> PathBuf {
        self.credential_dir(name).join(file_name(generation))
    }

    /// Makes sure the credential directory is a real directory, creating it (0700) if missing.
    fn ensure_credential_dir(&self, name: &str) -> Result<PathBuf, LocationError> {
        let dir = self.credential_dir(name);
        match atomic::kind(&dir).map_err(|e| LocationError::from_io("inspect", &dir, e))? {
            Kind::Dir => Ok(dir),
            Kind::Symlink => Err(LocationError::Symlink { path: dir }),
            Kind::File | Kind::Other => Err(LocationError::NotADirectory { path: dir }),
            Kind::Missing => {
                atomic::create_private_dir(&dir)
                    .map_err(|e| LocationError::from_io("create the directory", &dir, e))?;
                Ok(dir)
            }
        }
    }

    /// The credential directory if it exists as a real directory; `None` if missing.
    fn existing_credential_dir(&self, name: &str) -> Result<Option<PathBuf>, LocationError> {
        let dir = self.credential_dir(name);
        match atomic::kind(&dir).map_err(|e| LocationError::from_io("inspect", &dir, e))? {
            Kind::Dir => Ok(Some(dir)),
            Kind::Missing => Ok(None),
            Kind::Symlink => Err(LocationError::Symlink { path: dir }),
            Kind::File | Kind::Other => Err(LocationError::NotADirectory { path: dir }),
        }
    }
}

/// `gen-000000000042.json`.
pub fn file_name(generation: u64) -> String {
    format!("gen-{generation:012}.json")
}

/// The generation in a slot file name, if it is one.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("gen-")?.strip_suffix(".json")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl Location for DirLocation {
    fn label(&self) -> String {
        self.root.display().to_string()
    }

    fn slot_label(&self, name: &str, generation: u64) -> String {
        self.slot_path(name, generation).display().to_string()
    }

    fn prepare(&self) -> Result<Vec<String>, LocationError> {
        let root = &self.root;
        let mut warnings = Vec::new();
        match atomic::kind(root).map_err(|e| LocationError::from_io("inspect", root, e))? {
            Kind::Dir => {}
            // The root itself may be a link an operator set up (/var/lib/tether -> /data):
            // allowed when it leads to a directory. Links inside are never followed.
            Kind::Symlink if root.is_dir() => {}
            Kind::Missing => atomic::create_private_dir_all(root)
                .map_err(|e| LocationError::from_io("create the directory", root, e))?,
            _ => {
                return Err(LocationError::NotADirectory {
                    path: root.to_path_buf(),
                })
            }
        }
        let mode = fs::metadata(root)
            .map_err(|e| LocationError::from_io("inspect", root, e))?
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            warnings.push(format!(
                "vault location {} has mode {mode:03o}, readable by other users; run `chmod 700 {}`",
                root.display(),
                root.display()
            ));
        }
        // A real write is the only honest writability test (root ignores mode bits, a
        // read-only mount does not show in them).
        let probe = root.join(format!(".probe-{}", crate::secret::random_token(6)));
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(atomic::FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&probe)
            .map_err(|e| LocationError::from_io("create a file in", root, e))?;
        fs::remove_file(&probe).map_err(|e| LocationError::from_io("remove", &probe, e))?;
        Ok(warnings)
    }

    fn credentials(&self) -> Result<Vec<String>, LocationError> {
        let entries =
            fs::read_dir(&self.root).map_err(|e| LocationError::from_io("list", &self.root, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| LocationError::from_io("list", &self.root, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !crate::protocol::valid_credential_name(&name) {
                continue;
            }
            // Links are listed too, so that reading them reports the refusal.
            match entry.file_type() {
                Ok(t) if t.is_dir() || t.is_symlink() => names.push(name),
                _ => {}
            }
        }
        names.sort();
        Ok(names)
    }

    fn generations(&self, name: &str) -> Result<Vec<u64>, LocationError> {
        let Some(dir) = self.existing_credential_dir(name)? else {
            return Ok(Vec::new());
        };
        let entries = fs::read_dir(&dir).map_err(|e| LocationError::from_io("list", &dir, e))?;
        let mut gens = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| LocationError::from_io("list", &dir, e))?;
            if let Some(g) = entry.file_name().to_str().and_then(parse_file_name) {
                gens.push(g);
            }
        }
        Ok(gens)
    }

    fn read(&self, name: &str, generation: u64) -> Result<Vec<u8>, LocationError> {
        let Some(_) = self.existing_credential_dir(name)? else {
            let path = self.slot_path(name, generation);
            return Err(LocationError::from_io(
                "read",
                &path,
                io::Error::from(io::ErrorKind::NotFound),
            ));
        };
        let path = self.slot_path(name, generation);
        atomic::read_file(&path, MAX_RECORD_BYTES).map_err(|e| LocationError::from_read(&path, e))
    }

    fn create(&self, name: &str, generation: u64, bytes: &[u8]) -> Result<(), LocationError> {
        let dir = self.ensure_credential_dir(name)?;
        let target = dir.join(file_name(generation));
        crate::files::write_new_in(&dir, &file_name(generation), bytes).map_err(|(step, e)| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                LocationError::Exists {
                    path: target.clone(),
                }
            } else {
                LocationError::from_io(step.as_str(), &target, e)
            }
        })
    }

    fn write(&self, name: &str, generation: u64, bytes: &[u8]) -> Result<(), LocationError> {
        let dir = self.ensure_credential_dir(name)?;
        let target = dir.join(file_name(generation));
        // Never replace a link or a directory planted at the slot: refuse instead.
        match atomic::kind(&target).map_err(|e| LocationError::from_io("inspect", &target, e))? {
            Kind::Missing | Kind::File => {}
            Kind::Symlink => return Err(LocationError::Symlink { path: target }),
            Kind::Dir | Kind::Other => return Err(LocationError::NotAFile { path: target }),
        }
        crate::files::write_atomic_in(&dir, &file_name(generation), bytes)
            .map_err(|(step, e)| LocationError::from_io(step.as_str(), &target, e))
    }

    fn remove(&self, name: &str, generation: u64) -> Result<(), LocationError> {
        let path = self.slot_path(name, generation);
        // Only regular files are ours to delete; anything else is reported by reads.
        if atomic::kind(&path).map_err(|e| LocationError::from_io("inspect", &path, e))?
            == Kind::File
        {
            fs::remove_file(&path).map_err(|e| LocationError::from_io("remove", &path, e))?;
        }
        Ok(())
    }

    fn quarantine(&self, name: &str, generation: u64) -> Result<String, LocationError> {
        let path = self.slot_path(name, generation);
        if atomic::kind(&path).map_err(|e| LocationError::from_io("inspect", &path, e))?
            != Kind::File
        {
            return Err(LocationError::NotAFile { path });
        }
        let aside = path.with_file_name(format!(
            "{}.corrupt-{}",
            file_name(generation),
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
        ));
        fs::rename(&path, &aside).map_err(|e| LocationError::from_io("move aside", &path, e))?;
        if let Some(dir) = path.parent() {
            crate::files::sync_dir(dir).map_err(|e| LocationError::from_io("fsync", dir, e))?;
        }
        Ok(aside.display().to_string())
    }

    fn clean_temp(&self, name: &str) -> Result<usize, LocationError> {
        let Some(dir) = self.existing_credential_dir(name)? else {
            return Ok(0);
        };
        let entries = fs::read_dir(&dir).map_err(|e| LocationError::from_io("list", &dir, e))?;
        let mut removed = 0;
        for entry in entries.flatten() {
            let is_temp = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(crate::files::TEMP_PREFIX));
            if is_temp && entry.file_type().is_ok_and(|t| t.is_file()) {
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| LocationError::from_io("remove", &path, e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn reserve(&self, name: &str, bytes: usize) -> Result<Option<Reservation>, LocationError> {
        let dir = self.ensure_credential_dir(name)?;
        // A temp-prefixed name: a crash leaves something `clean_temp` removes.
        let path = dir.join(format!("{}reserve", crate::files::TEMP_PREFIX));
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)?;
            f.write_all(&vec![0u8; bytes])?;
            f.sync_all()
        };
        match write() {
            Ok(()) => Ok(Some(Reservation { path })),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(LocationError::from_io("reserve room in", &path, e))
            }
        }
    }

    fn lock(&self) -> Result<Option<LocationLock>, LocationError> {
        let path = self.root.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(atomic::FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| LocationError::from_io("open the lock file", &path, e))?;
        use std::os::fd::AsRawFd;
        loop {
            // SAFETY: the descriptor is open for the lifetime of `file`.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(Some(LocationLock { _file: file }));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(LocationError::from_io("lock", &path, err));
            }
        }
    }

    fn filesystem(&self) -> Option<(PathBuf, u64)> {
        let meta = fs::metadata(&self.root).ok()?;
        let canonical = fs::canonicalize(&self.root).ok()?;
        Some((canonical, meta.dev()))
    }

    fn present(&self) -> bool {
        self.root.is_dir()
    }

    fn free_bytes(&self) -> Option<u64> {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(self.root.as_os_str().as_bytes()).ok()?;
        // SAFETY: `path` is a valid NUL-terminated string and `st` a plain C struct that
        // statvfs fills in; both live across the call.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statvfs(path.as_ptr(), &mut st) };
        if rc != 0 {
            return None;
        }
        Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }

    fn stamp(&self) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        // One readdir of the root and of each credential directory plus an lstat per
        // file: no record is opened.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let root = fs::metadata(&self.root).ok()?;
        (root.dev(), root.ino()).hash(&mut h);
        let mut names: Vec<_> = fs::read_dir(&self.root)
            .ok()?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in names {
            let Some(n) = name.to_str() else { continue };
            if !crate::protocol::valid_credential_name(n) {
                continue;
            }
            let dir = self.root.join(n);
            let Ok(meta) = fs::symlink_metadata(&dir) else {
                continue;
            };
            (n, meta.ino(), meta.file_type().is_dir()).hash(&mut h);
            if !meta.file_type().is_dir() {
                continue;
            }
            let mut files: Vec<(std::ffi::OsString, u64, u64, i64, i64)> = fs::read_dir(&dir)
                .ok()?
                .flatten()
                .filter_map(|e| {
                    let m = e.metadata().ok()?;
                    Some((e.file_name(), m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
                })
                .collect();
            files.sort();
            files.hash(&mut h);
        }
        Some(h.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        assert_eq!(file_name(42), "gen-000000000042.json");
        assert_eq!(parse_file_name("gen-000000000042.json"), Some(42));
        assert_eq!(parse_file_name("gen-.json"), None);
        assert_eq!(parse_file_name("gen-12.json.corrupt-x"), None);
        assert_eq!(parse_file_name(".tmp-gen-000000000001.json-abc"), None);
    }
}
