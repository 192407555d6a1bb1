//! Files on disk, safely: private directories whose creation is durable, and reads that
//! refuse symbolic links. Writes are [`crate::files`]'s, the one durable-write path.

use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every file the vault writes.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory the vault creates.
pub const DIR_MODE: u32 = 0o700;

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
                crate::files::sync_dir(parent)?;
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
