//! Durable file helpers for small state files: the daemon's (certificate, devices, pairing
//! secrets) and the companion's (config, fallback secrets file). The vault has its own
//! variant in `vault::atomic` that reports which step of a write failed.
//!
//! Every write goes to a temp file in the same directory, is fsynced, renamed over the
//! target, and the directory is fsynced, so a crash leaves either the old or the new file.
//! Files are 0600 and directories 0700.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` (and parents) with mode 0700 if missing, and tightens an existing one.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = fs::metadata(dir)?;
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically and durably with mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // A bare file name has an empty parent: the current directory.
    if path.parent().is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path has no directory",
        ));
    }
    replace_via_temp(path, bytes, |_| Ok(()))
}

/// Replaces `path` atomically and durably with `bytes`, keeping the old file's mode and
/// owner: for files an operator owns (agent.toml is root's, readable by the daemon's
/// group), which a 0600 rewrite by root would lock the daemon out of.
pub fn replace_keeping_mode(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path)?;
    replace_via_temp(path, bytes, |f| {
        // Owner first: chown clears set-id bits, and the mode is set after it.
        if let Err(e) = std::os::unix::fs::fchown(f, Some(meta.uid()), Some(meta.gid())) {
            // Only root may give a file away; a non-root editor of its own file keeps its
            // own uid, which is the old owner anyway.
            if e.kind() != io::ErrorKind::PermissionDenied {
                return Err(e);
            }
        }
        f.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))
    })
}

/// The one write path: a 0600 temp file beside `path`, `prepare` (owner, mode), the bytes,
/// fsync, rename over `path`, fsync of the directory; the temp file goes on any error.
fn replace_via_temp(
    path: &Path,
    bytes: &[u8],
    prepare: impl FnOnce(&File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        crate::secret::random_token(6)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        prepare(&f)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` with `bytes` only if it does not exist yet (0600, durable).
/// Returns false when another process created it first.
pub fn create_new(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no directory"))?;
    // Write the content under a temp name, then hard-link it into place: link fails if
    // the target exists, so two racing creators never see a half-written file.
    let tmp = dir.join(format!(".new.{}.tmp", crate::secret::random_token(6)));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let res = f.write_all(bytes).and_then(|_| f.sync_all());
    drop(f);
    let linked = res.and_then(|_| match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    });
    let _ = fs::remove_file(&tmp);
    let linked = linked?;
    sync_dir(dir)?;
    Ok(linked)
}

/// Fsyncs a directory so a rename or unlink in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// An exclusive advisory lock on a file, held until dropped (`flock`), so the daemon
/// and `tether agent` commands never interleave read-modify-write cycles.
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until the lock on `path` (created 0600 if missing) is held.
    pub fn acquire(path: &Path) -> io::Result<FileLock> {
        use std::os::fd::AsRawFd;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        loop {
            // SAFETY: flock on a valid, owned file descriptor has no memory effects.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(FileLock { _file: file });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_creates_overwrites_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // No temp files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn replace_keeping_mode_keeps_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent.toml");
        fs::write(&p, b"old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        replace_keeping_mode(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn create_new_refuses_existing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        assert!(create_new(&p, b"a").unwrap());
        assert!(!create_new(&p, b"b").unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"a");
    }

    #[test]
    fn private_dir_is_0700() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("a/b");
        ensure_private_dir(&d).unwrap();
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
