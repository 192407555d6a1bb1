//! Durable file writes, the one implementation: the daemon's small state files
//! (certificate, devices, pairing secrets, agent.toml edits), the companion's (config,
//! fallback secrets file) and the vault's generations and rendered outputs, which use the
//! variants that say which [`Step`] failed.
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

/// The step of a durable write that failed, for messages that say which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Creating the temp file.
    Create,
    /// Writing the content.
    Write,
    /// Flushing the temp file to disk.
    SyncFile,
    /// Renaming the temp file over the target.
    Rename,
    /// Flushing the directory entry to disk.
    SyncDir,
}

impl Step {
    /// Verb phrase for messages ("write", "fsync", ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "create a temp file in",
            Step::Write => "write",
            Step::SyncFile => "fsync",
            Step::Rename => "rename a temp file over",
            Step::SyncDir => "fsync the directory of",
        }
    }
}

/// Prefix of every temp file a write leaves behind if it crashes, so the leftovers can be
/// recognised and removed.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Whether the write may replace an existing target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Landing {
    /// Rename over whatever is there.
    Replace,
    /// Fail with `AlreadyExists` rather than replace anything.
    New,
}

/// Replaces `path` with `bytes` atomically and durably, mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (dir, name) = split(path)?;
    write_steps(dir, &name, bytes, Landing::Replace, |_| Ok(())).map_err(|(_, e)| e)
}

/// [`write_atomic`], creating the file's private (0700) directory first: for the
/// companion's config directory, which may not exist yet.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        ensure_private_dir(dir)?;
    }
    write_atomic(path, bytes)
}

/// Replaces `dir/file_name` with `bytes` atomically and durably (0600), saying which step
/// failed: the vault reports it. On failure the old target is untouched.
pub fn write_atomic_in(dir: &Path, file_name: &str, bytes: &[u8]) -> Result<(), (Step, io::Error)> {
    write_steps(dir, file_name, bytes, Landing::Replace, |_| Ok(()))
}

/// Like [`write_atomic_in`], but an existing target is never replaced (fails with
/// `AlreadyExists` at [`Step::Rename`]): for the vault's new generations, so even two
/// writers that bypass the lock cannot overwrite each other's.
pub fn write_new_in(dir: &Path, file_name: &str, bytes: &[u8]) -> Result<(), (Step, io::Error)> {
    write_steps(dir, file_name, bytes, Landing::New, |_| Ok(()))
}

/// Creates `path` with `bytes` only if it does not exist yet (0600, durable).
/// Returns false when another process created it first.
pub fn create_new(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let (dir, name) = split(path)?;
    match write_steps(dir, &name, bytes, Landing::New, |_| Ok(())) {
        Ok(()) => Ok(true),
        Err((Step::Rename, e)) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err((_, e)) => Err(e),
    }
}

/// Replaces `path` atomically and durably with `bytes`, keeping the old file's mode and
/// owner: for files an operator owns (agent.toml is root's, readable by the daemon's
/// group), which a 0600 rewrite by root would lock the daemon out of. Unix only: it is
/// for the daemon's config.
#[cfg(unix)]
pub fn replace_keeping_mode(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path)?;
    let (dir, name) = split(path)?;
    write_steps(dir, &name, bytes, Landing::Replace, |f| {
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
    .map_err(|(_, e)| e)
}

/// A path's directory (the current one for a bare name) and file name.
fn split(path: &Path) -> io::Result<(&Path, String)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Ok((dir, name.to_string_lossy().into_owned()))
}

/// The one write path: a new 0600 temp file beside the target, `prepare` (owner, mode),
/// the bytes, fsync, rename onto the target, fsync of the directory; the temp file goes on
/// any error, and the old target is untouched.
fn write_steps(
    dir: &Path,
    file_name: &str,
    bytes: &[u8],
    landing: Landing,
    prepare: impl FnOnce(&File) -> io::Result<()>,
) -> Result<(), (Step, io::Error)> {
    let tmp = dir.join(format!(
        "{TEMP_PREFIX}{file_name}-{}",
        crate::secret::random_token(6)
    ));
    let mut o = OpenOptions::new();
    // create_new: never through a link or over a file planted at the temp name.
    o.write(true).create_new(true);
    #[cfg(unix)]
    o.mode(0o600);
    let mut file = o.open(&tmp).map_err(|e| (Step::Create, e))?;
    let target = dir.join(file_name);
    let result = (|| {
        prepare(&file).map_err(|e| (Step::Create, e))?;
        file.write_all(bytes).map_err(|e| (Step::Write, e))?;
        file.sync_all().map_err(|e| (Step::SyncFile, e))?;
        drop(file);
        match landing {
            // Windows: std renames with MoveFileExW(MOVEFILE_REPLACE_EXISTING), which
            // replaces the target in one step on the same volume.
            Landing::Replace => fs::rename(&tmp, &target),
            Landing::New => rename_noreplace(&tmp, &target),
        }
        .map_err(|e| (Step::Rename, e))?;
        sync_dir(dir).map_err(|e| (Step::SyncDir, e))
    })();
    if result.is_err() {
        // Already renamed (only the directory sync failed) is fine: removal fails quietly.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Renames `from` to `to` unless `to` exists, in one step where the filesystem can.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
    };
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them like rename(2).
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // The filesystem has no RENAME_NOREPLACE: a hard link refuses an existing target too.
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {
            link_then_unlink(from, to)
        }
        _ => Err(err),
    }
}

/// Renames `from` to `to` unless `to` exists: a hard link fails on an existing target,
/// then the temp name is dropped.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    link_then_unlink(from, to)
}

fn link_then_unlink(from: &Path, to: &Path) -> io::Result<()> {
    fs::hard_link(from, to)?;
    fs::remove_file(from)
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
    fn a_failed_write_leaves_the_target_untouched_and_names_the_step() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic_in(dir.path(), "f.json", b"old").unwrap();
        // Renaming a file over a non-empty directory fails: the old content must survive.
        fs::create_dir(dir.path().join("d")).unwrap();
        fs::write(dir.path().join("d/x"), b"x").unwrap();
        let err = write_atomic_in(dir.path(), "d", b"new").unwrap_err();
        assert_eq!(err.0, Step::Rename);
        assert_eq!(fs::read(dir.path().join("f.json")).unwrap(), b"old");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "temp file left behind"
        );
    }

    #[test]
    fn write_new_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        write_new_in(dir.path(), "g", b"first").unwrap();
        let err = write_new_in(dir.path(), "g", b"second").unwrap_err();
        assert_eq!(err.0, Step::Rename);
        assert_eq!(err.1.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(dir.path().join("g")).unwrap(), b"first");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file left behind"
        );
    }

    #[test]
    fn write_private_makes_the_missing_directory_0700() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("conf");
        let path = sub.join("companion.toml");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&sub).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::read_dir(&sub).unwrap().count(),
            1,
            "temp file left behind"
        );
    }

    #[test]
    fn create_new_refuses_existing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        assert!(create_new(&p, b"a").unwrap());
        assert!(!create_new(&p, b"b").unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"a");
    }

    /// True while an open file waits in the kernel for the flock on `path`: a blocked
    /// request is listed in /proc/locks as `-> FLOCK ... MAJ:MIN:INODE ...`.
    #[cfg(target_os = "linux")]
    fn someone_waits_for_the_lock(path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(path).unwrap();
        let (dev, ino) = (m.dev(), m.ino());
        // Linux's dev_t encoding, undone as glibc's major() and minor() do.
        let major = ((dev & 0x0000_0000_000f_ff00) >> 8) | ((dev & 0xffff_f000_0000_0000) >> 32);
        let minor = (dev & 0xff) | ((dev & 0x0000_0fff_fff0_0000) >> 12);
        let id = format!("{major:02x}:{minor:02x}:{ino}");
        fs::read_to_string("/proc/locks")
            .unwrap()
            .lines()
            .any(|l| l.contains("-> FLOCK") && l.split_whitespace().any(|f| f == id))
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn file_lock_keeps_a_second_holder_out_until_dropped() {
        use std::sync::mpsc;
        use std::time::{Duration, Instant};
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
        // The second holder asked for the lock and the kernel made it wait (the positive
        // signal); only then does its absence say anything.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !someone_waits_for_the_lock(&p) {
            assert!(
                rx.try_recv().is_err(),
                "the second holder got the lock while the first held it"
            );
            assert!(
                Instant::now() < deadline,
                "the second holder never asked for the lock"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // And it stays out for as long as the first holds the lock: the pause is the test.
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
