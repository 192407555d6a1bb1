//! What differs between the platforms this crate is written for, in one place.
//!
//! Linux is the tested platform and has everything. The agent daemon, its vault, the
//! demo and the commands built on them (`tether agent`, `vault`, `oauth`, `token`,
//! `demo`) are compiled for Linux alone: they rely on `renameat2(RENAME_NOREPLACE)`,
//! `flock`, `statvfs`, inotify, `/proc`, Unix permissions and ownership, and SIGHUP. On
//! other platforms those commands exist and answer [`PlatformError::DaemonUnsupported`].
//! The companion (pairing, status, watch, re-authorization, the tray app) is written for
//! macOS and Windows too; what it does differently there is said where it happens
//! (`files.rs`: private files; `companion/notifier.rs`: notification actions;
//! `companion/pair.rs`: the host name).

use std::path::{Component, Path, PathBuf};

/// The platform's name as the messages say it.
pub const OS: &str = std::env::consts::OS;

/// What this platform cannot do, and what to do instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// A command of the agent daemon's side on a platform it is not built for.
    #[error(
        "`tether {command}` is not available on {os}: the agent daemon, its vault and the demo \
         are built for Linux only (they rely on renameat2, flock, statvfs, inotify, Unix \
         file permissions and signals); run them on a Linux server, in WSL or in a Linux \
         virtual machine, and pair this computer's companion with that daemon"
    )]
    DaemonUnsupported {
        /// The command as typed (`agent serve`).
        command: String,
        /// The platform it was typed on.
        os: &'static str,
    },
    /// A private file asked for outside the one place where this platform keeps files
    /// private without code of ours (Windows: the user profile).
    #[error(
        "{} is outside your user profile ({}): on {os} Tether keeps private files only \
         inside the profile, whose access list admits only you, SYSTEM and the \
         Administrators; choose a folder inside it (TETHER_CONFIG_DIR)",
        path.display(),
        profile.display()
    )]
    NotPrivate {
        /// The directory asked for.
        path: PathBuf,
        /// The user profile directory.
        profile: PathBuf,
        /// The platform.
        os: &'static str,
    },
}

/// The error for `tether <command>` on a platform without the daemon.
pub fn daemon_unsupported(command: &str) -> PlatformError {
    PlatformError::DaemonUnsupported {
        command: command.to_string(),
        os: OS,
    }
}

/// Whether `path` lies inside `base`, component by component, ignoring ASCII case (as
/// Windows compares names). Relative paths and `..` never count as inside: a check that
/// could be walked out of is no check.
pub fn within(base: &Path, path: &Path) -> bool {
    let plain = |p: &Path| {
        p.is_absolute()
            && !p
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    };
    if !plain(base) || !plain(path) {
        return false;
    }
    let mut inner = path.components();
    base.components().all(|b| match inner.next() {
        Some(p) => b
            .as_os_str()
            .to_string_lossy()
            .eq_ignore_ascii_case(&p.as_os_str().to_string_lossy()),
        None => false,
    })
}

/// Refuses a private directory outside `profile` (see [`PlatformError::NotPrivate`]).
/// Used on Windows, where files inherit their directory's access list and we set none.
pub fn require_in_profile(profile: &Path, dir: &Path) -> Result<(), PlatformError> {
    if within(profile, dir) {
        Ok(())
    } else {
        Err(PlatformError::NotPrivate {
            path: dir.to_path_buf(),
            profile: profile.to_path_buf(),
            os: OS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_compares_whole_components_ignoring_case() {
        let base = Path::new("/home/Alice");
        assert!(within(base, Path::new("/home/Alice")));
        assert!(within(base, Path::new("/home/alice/AppData/tether")));
        assert!(!within(base, Path::new("/home/Alice2/tether")));
        assert!(!within(base, Path::new("/home")));
        assert!(!within(base, Path::new("/srv/tether")));
    }

    #[test]
    fn within_refuses_relative_and_parent_paths() {
        let base = Path::new("/home/alice");
        assert!(!within(base, Path::new("/home/alice/../bob")));
        assert!(!within(base, Path::new("home/alice/tether")));
        assert!(!within(Path::new("home/alice"), Path::new("home/alice/x")));
    }

    #[test]
    fn a_directory_outside_the_profile_is_refused_with_the_fix() {
        let err = require_in_profile(Path::new("/home/alice"), Path::new("/srv/shared"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/srv/shared is outside your user profile (/home/alice)"));
        assert!(err.contains("TETHER_CONFIG_DIR"), "{err}");
        require_in_profile(Path::new("/home/alice"), Path::new("/home/alice/.config")).unwrap();
    }

    #[test]
    fn the_daemon_error_names_the_command_the_platform_and_the_way_out() {
        let err = daemon_unsupported("agent serve").to_string();
        assert!(err.starts_with(&format!("`tether agent serve` is not available on {OS}")));
        assert!(err.contains("Linux server, in WSL"), "{err}");
    }
}
