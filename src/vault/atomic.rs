//! Files on disk, safely: durable atomic replacement, private directories, and reads that
//! refuse symbolic links.
//!
//! A write goes to a temp file in the target's directory, is fsynced, renamed over the
//! target, and the directory is fsynced, so a crash leaves either the old file or the new
//! one, never a truncated mix. Nothing is ever truncated in place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every file the vault writes.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory the vault creates.
pub const DIR_MODE: u32 = 0o700;

/// The step of an atomic write that failed, for error messages.
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

/// Prefix of temp files, so leftovers of a crash can be recognised and removed.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Replaces `dir/file_name` with `bytes` atomically and durably, mode 0600.
///
/// On failure the temp file is removed and the old target is untouched.
pub fn write_atomic(dir: &Path, file_name: &str, bytes: &[u8]) -> Result<(), (Step, io::Error)> {
    write_with(dir, file_name, bytes, false)
}

/// Like [`write_atomic`], but the target must not exist yet: an existing file is never
/// replaced (fails with `AlreadyExists`). Used for new generations, so even two writers
/// that bypass the lock cannot overwrite each other's generation.
pub fn write_new(dir: &Path, file_name: &str, bytes: &[u8]) -> Result<(), (Step, io::Error)> {
    write_with(dir, file_name, bytes, true)
}

/// Renames `from` to `to` unless `to` exists (atomically where the filesystem supports it).
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
        // The filesystem has no RENAME_NOREPLACE: a hard link also refuses an existing
        // target, then the temp name is dropped.
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {
            fs::hard_link(from, to)?;
            fs::remove_file(from)
        }
        _ => Err(err),
    }
}

fn write_with(
    dir: &Path,
    file_name: &str,
    bytes: &[u8],
    must_be_new: bool,
) -> Result<(), (Step, io::Error)> {
    let tmp = dir.join(format!(
        "{TEMP_PREFIX}{file_name}-{}",
        crate::secret::random_token(6)
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(|e| (Step::Create, e))?;
    let result = (|| {
        // The umask can only remove bits from 0600, but say it explicitly anyway.
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))
            .map_err(|e| (Step::Create, e))?;
        file.write_all(bytes).map_err(|e| (Step::Write, e))?;
        file.sync_all().map_err(|e| (Step::SyncFile, e))?;
        if must_be_new {
            rename_noreplace(&tmp, &dir.join(file_name)).map_err(|e| (Step::Rename, e))?;
        } else {
            fs::rename(&tmp, dir.join(file_name)).map_err(|e| (Step::Rename, e))?;
        }
        sync_dir(dir).map_err(|e| (Step::SyncDir, e))
    })();
    if result.is_err() {
        // Already renamed (only the directory sync failed) is fine: removal then fails quietly.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Flushes a directory's entries (a rename, a new file) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What sits at a path, without following a symbolic link there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nothing.
    Missing,
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link (never followed).
    Symlink,
    /// A socket, FIFO or device.
    Other,
}

/// Looks at `path` with `symlink_metadata`.
pub fn kind(path: &Path) -> io::Result<Kind> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Ok(Kind::Symlink),
        Ok(m) if m.is_dir() => Ok(Kind::Dir),
        Ok(m) if m.is_file() => Ok(Kind::File),
        Ok(_) => Ok(Kind::Other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Kind::Missing),
        Err(e) => Err(e),
    }
}

/// Creates one directory with mode 0700 (its parent must exist) and makes the new entry
/// durable. Returns `Ok(false)` when it already existed as a directory.
pub fn create_private_dir(path: &Path) -> io::Result<bool> {
    match fs::DirBuilder::new().mode(DIR_MODE).create(path) {
        Ok(()) => {
            fs::set_permissions(path, fs::Permissions::from_mode(DIR_MODE))?;
            if let Some(parent) = path.parent() {
                sync_dir(parent)?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates a directory and its missing parents, each new one mode 0700.
pub fn create_private_dir_all(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            create_private_dir_all(parent)?;
        }
    }
    create_private_dir(path).map(|_| ())
}

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The path is a symbolic link (refused, not followed).
    Symlink,
    /// The path is a directory, FIFO, socket or device.
    NotAFile,
    /// Larger than the caller's limit.
    TooLarge(u64),
    /// Any other I/O error (including not found).
    Io(io::Error),
}

/// Reads a regular file without following a symbolic link at `path`, up to `max` bytes.
pub fn read_file(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    // O_NONBLOCK keeps a FIFO planted at the path from blocking the open.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                ReadError::Symlink
            } else {
                ReadError::Io(e)
            }
        })?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile);
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge(meta.len()));
    }
    let mut out = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut out)
        .map_err(ReadError::Io)?;
    if out.len() as u64 > max {
        return Err(ReadError::TooLarge(out.len() as u64));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn creates_and_replaces_with_mode_0600_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "f.json", b"one").unwrap();
        write_atomic(dir.path(), "f.json", b"two").unwrap();
        let path = dir.path().join("f.json");
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temp file left behind");
    }

    #[test]
    fn failed_write_leaves_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "f.json", b"old").unwrap();
        // Renaming a file over a non-empty directory fails: the old content must survive.
        fs::create_dir(dir.path().join("d")).unwrap();
        fs::write(dir.path().join("d/x"), b"x").unwrap();
        let err = write_atomic(dir.path(), "d", b"new").unwrap_err();
        assert_eq!(err.0, Step::Rename);
        assert_eq!(fs::read(dir.path().join("f.json")).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn write_new_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        write_new(dir.path(), "g", b"first").unwrap();
        let err = write_new(dir.path(), "g", b"second").unwrap_err();
        assert_eq!(err.1.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(dir.path().join("g")).unwrap(), b"first");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file left behind"
        );
    }

    #[test]
    fn private_dirs_are_0700() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        create_private_dir_all(&deep).unwrap();
        for p in ["a", "a/b", "a/b/c"] {
            let mode = fs::metadata(dir.path().join(p)).unwrap().mode() & 0o777;
            assert_eq!(mode, 0o700, "{p}");
        }
    }

    #[test]
    fn reads_refuse_symlinks_and_fifos() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("real"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        assert!(matches!(
            read_file(&dir.path().join("link"), 100),
            Err(ReadError::Symlink)
        ));
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(read_file(&fifo, 100), Err(ReadError::NotAFile)));
        assert!(matches!(
            read_file(&dir.path().join("real"), 0),
            Err(ReadError::TooLarge(1))
        ));
    }
}
