//! Integration tests for `tether::vault`: one module per group of properties, shared
//! helpers here (temp vaults, sample records, file snapshots, a tmpfs mount guard).

mod bad_input;
mod basics;
mod cli;
mod client;
mod crash;
mod env_shell;
mod full_disk;
mod openbao;
mod repair;
mod vanished;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;
use tether::secret::{AccessToken, RefreshToken};
use tether::vault::{Record, Vault, VaultConfig};

/// A temp directory with a primary and `n` backup location paths (not created yet: the
/// vault creates them).
pub struct Dirs {
    pub tmp: TempDir,
    pub primary: PathBuf,
    pub backups: Vec<PathBuf>,
}

impl Dirs {
    pub fn new(backups: usize) -> Dirs {
        // On the real disk (the target dir), not a tmpfs: fsync and rename behave as in use.
        let tmp = tempfile::Builder::new()
            .prefix("vault-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temp dir under the target dir");
        let primary = tmp.path().join("primary");
        let backups = (1..=backups)
            .map(|i| tmp.path().join(format!("backup{i}")))
            .collect();
        Dirs {
            tmp,
            primary,
            backups,
        }
    }

    pub fn config(&self) -> VaultConfig {
        VaultConfig::new(&self.primary, self.backups.clone())
    }

    pub fn open(&self) -> (Vault, tether::vault::ReconcileReport) {
        Vault::open(self.config()).expect("open the test vault")
    }

    /// Every location root, primary first.
    pub fn roots(&self) -> Vec<PathBuf> {
        std::iter::once(self.primary.clone())
            .chain(self.backups.iter().cloned())
            .collect()
    }
}

/// A record with recognisable tokens for generation-independent checks.
pub fn sample(name: &str, tag: &str) -> Record {
    let mut r = Record::new(name, "google");
    r.access_token = Some(AccessToken::new(format!("ya29.access-{tag}")));
    r.refresh_token = Some(RefreshToken::new(format!("1//refresh-{tag}")));
    r.scopes = vec!["https://www.googleapis.com/auth/youtube.upload".into()];
    r.expires_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    r
}

/// The refresh token of a record, as a plain string.
pub fn refresh(r: &Record) -> String {
    r.refresh_token
        .as_ref()
        .expect("refresh token")
        .secret()
        .to_string()
}

/// Path of one generation file in a directory location.
pub fn slot(root: &Path, name: &str, generation: u64) -> PathBuf {
    root.join(name).join(format!("gen-{generation:012}.json"))
}

/// Generations present as files in a location, ascending.
pub fn gens(root: &Path, name: &str) -> Vec<u64> {
    let mut out: Vec<u64> = std::fs::read_dir(root.join(name))
        .map(|d| {
            d.filter_map(|e| {
                let n = e.ok()?.file_name().into_string().ok()?;
                tether::vault::location::parse_file_name(&n)
            })
            .collect()
        })
        .unwrap_or_default();
    out.sort_unstable();
    out
}

/// Every file under `root` (path → bytes), the lock file aside, for "nothing touched" checks.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let t = e.file_type().expect("file type");
            if t.is_dir() {
                walk(&p, out);
            } else if e.file_name() != ".lock" {
                let content = content(&p).expect("listed file");
                out.insert(p, content);
            }
        }
    }
    walk(root, &mut out);
    out
}

/// A file's bytes, or `-> target` for a symbolic link (never followed); `None` if gone.
pub fn content(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).ok()?;
        Some(format!("-> {}", target.display()).into_bytes())
    } else {
        std::fs::read(path).ok()
    }
}

/// True when running as root (mounts possible; file modes do not stop writes).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A tmpfs mounted for one test; unmounted on drop, also when the test panics.
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "64k") at `path` (created). `None` when not root or
    /// the mount fails (the caller skips with `require!`).
    pub fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        if !is_root() {
            return None;
        }
        std::fs::create_dir_all(path).ok()?;
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs {
            path: path.to_path_buf(),
        })
    }

    /// Remounts read-only (or read-write).
    pub fn remount(&self, read_only: bool) {
        let opt = if read_only {
            "remount,ro"
        } else {
            "remount,rw"
        };
        let status = Command::new("mount")
            .args(["-o", opt])
            .arg(&self.path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -o {opt} {}", self.path.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Busy (an open file in a failing test): detach it so nothing stays mounted.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}
