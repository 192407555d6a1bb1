//! What went wrong in a vault location: [`LocationError`], whose every message names the
//! path (or server) and the fix, and its machine-readable [`code`](LocationError::code).

use super::atomic::ReadError;
use std::io;
use std::path::{Path, PathBuf};

/// What went wrong in a location. Every message names the path and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocationError {
    /// The location path is a file (or something else), not a directory.
    #[error("{path} is not a directory; point the vault location at a directory (it is created if missing) or move what is there away")]
    NotADirectory {
        /// The offending path.
        path: PathBuf,
    },
    /// A symbolic link where a file or directory should be.
    #[error("{path} is a symbolic link; tether never follows links inside a vault location: replace it with the real file or directory")]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// A directory, FIFO or device where a record file should be.
    #[error("{path} is not a regular file; move it out of the vault location")]
    NotAFile {
        /// The offending path.
        path: PathBuf,
    },
    /// A record file far larger than any record.
    #[error("{path} is {size} bytes, far larger than a record; move it out of the vault location")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The location cannot be written: read-only filesystem.
    #[error("{path} is on a read-only filesystem; remount it read-write or remove this location from the vault config")]
    ReadOnly {
        /// The path that refused the write.
        path: PathBuf,
    },
    /// Permission denied.
    #[error("permission denied on {path}; make the vault location owned by the daemon's user with mode 700 (chown, chmod 700)")]
    PermissionDenied {
        /// The path that refused access.
        path: PathBuf,
    },
    /// The filesystem is full.
    #[error("no space left on the device holding {path}; free space there (the previous generation is kept)")]
    NoSpace {
        /// The path that could not be written.
        path: PathBuf,
    },
    /// A new generation's slot is taken already (a writer that bypassed the lock).
    #[error("{path} already exists, so it was not overwritten: another process is writing this vault without its lock; stop it, then run `tether vault reconcile`")]
    Exists {
        /// The slot.
        path: PathBuf,
    },
    /// A remote location (OpenBao) does not answer.
    #[error("cannot reach OpenBao at {location} ({detail}); the other locations keep every credential meanwhile: check that the server runs and that the address and CA file are right")]
    Unreachable {
        /// The location.
        location: String,
        /// The transport error.
        detail: String,
    },
    /// A remote location refused the daemon's token.
    #[error("OpenBao at {location} refused to {op} {path}: permission denied; give the daemon's token the policy in dist/openbao-policy.hcl")]
    Denied {
        /// The location.
        location: String,
        /// What was tried.
        op: &'static str,
        /// The API path.
        path: String,
    },
    /// A check-and-set write refused: another writer committed since this process looked.
    #[error("OpenBao at {location}: {path} changed since this daemon read it, so check-and-set refused the write and nothing was overwritten (another daemon committed a newer generation)")]
    Stale {
        /// The location.
        location: String,
        /// The API path.
        path: String,
    },
    /// Any other answer from a remote location (sealed, a login that failed, a 5xx).
    #[error("{location}: {detail}")]
    Remote {
        /// The location.
        location: String,
        /// What failed, with the fix.
        detail: String,
    },
    /// Any other I/O failure.
    #[error("failed to {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl LocationError {
    /// Machine-readable kind, as in the health report (`no_space`, `read_only`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            LocationError::NoSpace { .. } => "no_space",
            LocationError::ReadOnly { .. } => "read_only",
            LocationError::PermissionDenied { .. } => "permission_denied",
            LocationError::NotADirectory { .. } => "not_a_directory",
            LocationError::Unreachable { .. } => "unreachable",
            LocationError::Denied { .. } => "permission_denied",
            LocationError::Stale { .. } => "stale",
            LocationError::Remote { .. } => "remote_error",
            LocationError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                "missing"
            }
            _ => "io",
        }
    }

    /// Classifies an I/O error on `path` into the variant with the right fix.
    pub fn from_io(op: &'static str, path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        match source.raw_os_error() {
            Some(libc::EROFS) => LocationError::ReadOnly { path },
            Some(libc::EACCES) | Some(libc::EPERM) => LocationError::PermissionDenied { path },
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => LocationError::NoSpace { path },
            Some(libc::ELOOP) => LocationError::Symlink { path },
            Some(libc::ENOTDIR) => LocationError::NotADirectory { path },
            _ => LocationError::Io { op, path, source },
        }
    }

    pub(super) fn from_read(path: &Path, err: ReadError) -> Self {
        let path = path.to_path_buf();
        match err {
            ReadError::Symlink => LocationError::Symlink { path },
            ReadError::NotAFile => LocationError::NotAFile { path },
            ReadError::TooLarge(size) => LocationError::TooLarge { path, size },
            ReadError::Io(e) => LocationError::from_io("read", &path, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_path_and_the_fix() {
        let e = LocationError::from_io(
            "write",
            Path::new("/v/b"),
            io::Error::from_raw_os_error(libc::EROFS),
        );
        let msg = e.to_string();
        assert!(msg.contains("/v/b") && msg.contains("remount"), "{msg}");
        let e = LocationError::from_io(
            "write",
            Path::new("/v/b"),
            io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert!(matches!(e, LocationError::NoSpace { .. }));
    }
}
