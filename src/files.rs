//! Durable file helpers for small state files: the daemon's (certificate, devices, pairing
//! secrets) and the companion's (config, fallback secrets file). The vault has its own
//! variant in `vault::atomic` that reports which step of a write failed.
//!
//! Every write goes to a temp file in the same directory, is fsynced, renamed over the
//! target, and the directory is fsynced, so a crash leaves either the old or the new file.
//! Files are 0600 and directories 0700.
//!
//! Windows has no modes: a new file takes the access list its directory passes down, and
//! this code sets none. There a private directory must lie inside the user profile, whose
//! inherited list admits only the user, SYSTEM and the Administrators
//! ([`crate::platform::require_in_profile`]); elsewhere it is refused. Windows cannot
//! fsync a directory either: the file's data is flushed before the rename, and the rename
//! itself is durable once NTFS commits its journal (within seconds), not when it returns.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// How a private file is kept private here, as messages say it.
#[cfg(unix)]
pub const PRIVATE_FILE: &str = "mode 0600";
/// How a private file is kept private here, as messages say it.
#[cfg(not(unix))]
pub const PRIVATE_FILE: &str = "inside your user profile, readable only by you";

/// Creates `dir` (and parents) with mode 0700 if missing, and tightens an existing one.
#[cfg(unix)]
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

/// Creates `dir` (and parents) if missing, inside the user profile only (see the module
/// doc: the profile's inherited access list is what keeps it private).
#[cfg(not(unix))]
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    let profile = directories::BaseDirs::new()
        .map(|b| b.home_dir().to_path_buf())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "cannot find your user profile directory, so no private directory can be made",
            )
        })?;
    crate::platform::require_in_profile(&profile, dir)
        .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
    fs::create_dir_all(dir)
}

/// Opens a new file for writing that only its owner may read: 0600 on Unix; on Windows
/// the directory's inherited access list (see the module doc).
fn create_private(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    o.mode(0o600);
    o.open(path)
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
/// group), which a 0600 rewrite by root would lock the daemon out of. Unix only: it is
/// for the daemon's config.
#[cfg(unix)]
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
        let mut f = create_private(&tmp)?;
        prepare(&f)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        // Windows: std renames with MoveFileExW(MOVEFILE_REPLACE_EXISTING), which
        // replaces the target in one step on the same volume.
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
    let mut f = create_private(&tmp)?;
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
#[cfg(unix)]
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Windows opens no directory for flushing; NTFS journals the rename (module doc).
#[cfg(not(unix))]
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let _ = dir;
    Ok(())
}

/// An exclusive advisory lock on a file, held until dropped (`flock` on Unix, `LockFileEx`
/// on Windows), so the daemon
/// and `tether agent` commands never interleave read-modify-write cycles.
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until the lock on `path` (created 0600 if missing) is held.
    pub fn acquire(path: &Path) -> io::Result<FileLock> {
        let mut o = OpenOptions::new();
        o.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        o.mode(0o600);
        let file = o.open(path)?;
        loop {
            match lock_exclusive(&file) {
                Ok(()) => return Ok(FileLock { _file: file }),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(unix)]
fn lock_exclusive(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a valid, owned file descriptor has no memory effects.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `File::lock` is `LockFileEx` on Windows. It needs Rust 1.89, above `rust-version`,
/// which the locked dependencies already exceed (they need 1.91).
#[cfg(not(unix))]
#[allow(clippy::incompatible_msrv)]
fn lock_exclusive(file: &File) -> io::Result<()> {
    file.lock()
}

#[cfg(all(test, unix))]
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
    fn file_lock_keeps_a_second_holder_out_until_dropped() {
        use std::sync::mpsc;
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".lock");
        let first = FileLock::acquire(&p).unwrap();
        let (tx, rx) = mpsc::channel();
        let p2 = p.clone();
        let waiter = std::thread::spawn(move || {
            // A separate open file: the lock is per open file, as between two processes.
            let second = FileLock::acquire(&p2).unwrap();
            tx.send(()).unwrap();
            drop(second);
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the second holder got the lock while the first held it"
        );
        drop(first);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the second holder gets the lock once the first is dropped");
        waiter.join().unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
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
