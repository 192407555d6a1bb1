//! Private, atomic file writes for the companion's config and fallback secrets file.

use std::io;
use std::path::Path;

pub(crate) use crate::files::ensure_private_dir;

/// Replaces `path` with `bytes` atomically and durably (0600), creating its private (0700)
/// directory first: the companion's config directory may not exist yet.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        ensure_private_dir(dir)?;
    }
    crate::files::write_atomic(path, bytes)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_creates_and_overwrites_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("conf");
        let path = sub.join("companion.toml");
        atomic_write(&path, b"one").unwrap();
        atomic_write(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = fs::metadata(&sub).unwrap().permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700);
        // No temp files left behind.
        assert_eq!(fs::read_dir(&sub).unwrap().count(), 1);
    }
}
