//! Watches what the agent reads: an inotify watch (the `notify` crate) on the directories
//! of the rendered outputs and on every vault location, so a wiped, truncated, corrupted
//! or deleted file is restored within moments instead of at the next periodic check
//! (which stays as the fallback: `vault_watch::run`).
//!
//! A directory that does not exist (yet) is covered by a watch on its nearest existing
//! ancestor: an output directory is usually created by the first render, after the
//! daemon started, and may be deleted and recreated later. Every batch of events (and a
//! config reload) re-arms the watches: a directory that appeared gets its own watch, one
//! that vanished falls back to its ancestor, and the outputs are checked at once, since a
//! wipe may have happened before the new watch was in place.
//!
//! The daemon's own writes trigger the watch too; the checks it runs are idempotent and
//! cheap (a read and a compare per output, a stamp of the vault's files), so that costs a
//! check, not a loop.

use crate::agent::config::vault::VAULT_DIR;
use crate::agent::daemon::Daemon;
use notify::{RecursiveMode, Watcher};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Events arriving within this window are handled together (an editor's save, a `cp`,
/// a truncate-then-write are bursts).
const DEBOUNCE: Duration = Duration::from_millis(30);

/// What a batch of events touched.
#[derive(Debug, Default, PartialEq, Eq)]
struct Touched {
    outputs: bool,
    vault: bool,
}

/// A directory the daemon wants watched, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    dir: PathBuf,
    recursive: bool,
}

/// The watches in place: each wanted directory is covered by a watch on itself or, while
/// it does not exist, on its nearest existing ancestor (never recursive: an ancestor may
/// be a whole home directory).
#[derive(Debug, Default)]
struct Arming {
    /// Watched path → recursive.
    watched: BTreeMap<PathBuf, bool>,
    /// Paths the platform refused, logged once while refused.
    refused: BTreeSet<PathBuf>,
}

/// What one re-arming found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Armed {
    /// A watch was added: events before it may have been missed.
    added: bool,
    /// Every wanted directory is watched itself (not through an ancestor).
    all_direct: bool,
    /// Every wanted directory is covered (itself or an ancestor).
    all_covered: bool,
}

/// The nearest existing directory at or above `dir`.
fn nearest_existing(dir: &Path) -> Option<&Path> {
    dir.ancestors().find(|p| p.is_dir())
}

impl Arming {
    /// Brings the watches in line with `wanted` and the file system as it is now.
    fn arm(&mut self, w: &mut impl Watcher, wanted: &[Wanted]) -> Armed {
        let mut armed = Armed {
            all_direct: true,
            all_covered: true,
            ..Armed::default()
        };
        // A directory can appear between the look and the watch (the render creates
        // `a/b`, then `a/b/c`): look again until nothing changes. Each round adds a watch
        // deeper down or stops, so this ends.
        for _ in 0..64 {
            let before = self.watched.clone();
            let round = self.arm_once(w, wanted);
            armed = Armed {
                added: armed.added || round.added,
                ..round
            };
            if self.watched == before {
                break;
            }
        }
        armed
    }

    fn arm_once(&mut self, w: &mut impl Watcher, wanted: &[Wanted]) -> Armed {
        let mut armed = Armed {
            added: false,
            all_direct: true,
            all_covered: true,
        };
        // Watches on directories that vanished are gone with them.
        let gone: Vec<PathBuf> = self
            .watched
            .keys()
            .filter(|p| !p.is_dir())
            .cloned()
            .collect();
        for p in gone {
            let _ = w.unwatch(&p);
            self.watched.remove(&p);
        }
        let mut targets: BTreeMap<PathBuf, bool> = BTreeMap::new();
        for want in wanted {
            match nearest_existing(&want.dir) {
                Some(p) if p == want.dir => {
                    targets.insert(want.dir.clone(), want.recursive);
                }
                Some(p) => {
                    armed.all_direct = false;
                    targets.entry(p.to_path_buf()).or_insert(false);
                }
                None => {
                    armed.all_direct = false;
                    armed.all_covered = false;
                }
            }
        }
        // A path inside a recursively watched directory is already covered.
        let recursive: Vec<PathBuf> = targets
            .iter()
            .filter(|(_, r)| **r)
            .map(|(p, _)| p.clone())
            .collect();
        targets.retain(|p, r| *r || !recursive.iter().any(|d| p.starts_with(d)));
        let stale: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|(p, r)| targets.get(*p) != Some(*r))
            .map(|(p, _)| p.clone())
            .collect();
        for p in stale {
            let _ = w.unwatch(&p);
            self.watched.remove(&p);
        }
        for (p, recursive) in targets {
            if self.watched.contains_key(&p) {
                continue;
            }
            let mode = if recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            match w.watch(&p, mode) {
                Ok(()) => {
                    self.watched.insert(p.clone(), recursive);
                    self.refused.remove(&p);
                    armed.added = true;
                }
                Err(e) => {
                    armed.all_direct = false;
                    armed.all_covered = false;
                    if self.refused.insert(p.clone()) {
                        tracing::warn!(
                            "cannot watch {} ({e}); files there are restored by the periodic checks only",
                            p.display()
                        );
                    }
                }
            }
        }
        armed
    }
}

/// The output files and the directories to watch for them and for the vault.
fn wanted(daemon: &Daemon) -> (Vec<PathBuf>, Vec<Wanted>, Vec<Wanted>) {
    let outputs: Vec<PathBuf> = daemon.vault.outputs().into_iter().map(|o| o.path).collect();
    let mut dirs: Vec<PathBuf> = outputs
        .iter()
        .filter_map(|p| p.parent().map(PathBuf::from))
        .collect();
    dirs.sort();
    dirs.dedup();
    let output_dirs = dirs
        .into_iter()
        .map(|dir| Wanted {
            dir,
            recursive: false,
        })
        .collect();
    let mut vault_dirs = vec![daemon.config.state_dir.join(VAULT_DIR)];
    vault_dirs.extend(daemon.config.backup_dirs.iter().cloned());
    let vault_dirs = vault_dirs
        .into_iter()
        .map(|dir| Wanted {
            dir,
            recursive: true,
        })
        .collect();
    (outputs, output_dirs, vault_dirs)
}

/// Runs the watch until shutdown. When the platform refuses a watch (inotify limits), the
/// periodic checks carry on alone and the log says so once.
pub async fn run(daemon: Arc<Daemon>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<PathBuf>>();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Reads (open, access, close) change nothing, and the checks below read these
        // very files: reacting to them would make the checks trigger themselves forever.
        match res {
            Ok(ev) if changes(&ev.kind) => {
                let _ = tx.send(ev.paths);
            }
            _ => {}
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("cannot watch the output files and the vault ({e}); wiped files are restored by the periodic check only");
            return;
        }
    };
    let mut arming = Arming::default();
    let mut shutdown = std::pin::pin!(daemon.shutdown_signal());
    let mut paths: Vec<PathBuf> = Vec::new();
    loop {
        let (outputs, output_dirs, vault_dirs) = wanted(&daemon);
        let all: Vec<Wanted> = output_dirs.iter().chain(&vault_dirs).cloned().collect();
        let armed = arming.arm(&mut watcher, &all);
        // Probes check the outputs themselves while a directory is covered by nothing.
        daemon
            .outputs_watched
            .store(armed.all_covered, Ordering::Relaxed);
        // Only a watch on the vault directories themselves sees every stored file.
        let vault_direct = vault_dirs
            .iter()
            .all(|v| arming.watched.contains_key(&v.dir));
        daemon.vault_watched.store(vault_direct, Ordering::Relaxed);
        let vault_dirs: Vec<PathBuf> = vault_dirs.into_iter().map(|w| w.dir).collect();
        let t = touched(&paths, &outputs, &vault_dirs);
        if t.outputs || armed.added {
            daemon.check_outputs().await;
        }
        if t.vault {
            daemon.quick_check().await;
        }
        paths = tokio::select! {
            _ = &mut shutdown => return,
            // A reload changed the outputs: re-arm for the new set.
            _ = daemon.outputs_rearm.notified() => Vec::new(),
            p = rx.recv() => match p { Some(p) => p, None => return },
        };
        tokio::time::sleep(DEBOUNCE).await;
        while let Ok(more) = rx.try_recv() {
            paths.extend(more);
        }
    }
}

/// True for events that can change what a file holds (not reads).
fn changes(kind: &notify::EventKind) -> bool {
    !matches!(kind, notify::EventKind::Access(_))
}

fn touched(paths: &[PathBuf], outputs: &[PathBuf], vault_dirs: &[PathBuf]) -> Touched {
    let mut t = Touched::default();
    for p in paths {
        // An output, a temp file beside it that a rename will turn into it, or a
        // directory on the way to it (created or removed).
        if outputs
            .iter()
            .any(|o| o == p || o.parent() == p.parent() || o.starts_with(p))
        {
            t.outputs = true;
        }
        if vault_dirs
            .iter()
            .any(|d| p.starts_with(d) || d.starts_with(p))
        {
            t.vault = true;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_not_changes() {
        use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind};
        assert!(!changes(&notify::EventKind::Access(AccessKind::Read)));
        assert!(!changes(&notify::EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(changes(&notify::EventKind::Modify(ModifyKind::Any)));
        assert!(changes(&notify::EventKind::Create(CreateKind::File)));
        assert!(changes(&notify::EventKind::Remove(RemoveKind::File)));
    }

    #[test]
    fn events_are_sorted_into_outputs_and_vault() {
        let outputs = vec![PathBuf::from("/home/agent/yt/token.json")];
        let vault = vec![PathBuf::from("/var/lib/tether/vault")];
        let t = |p: &str| touched(&[PathBuf::from(p)], &outputs, &vault);
        assert_eq!(
            t("/home/agent/yt/token.json"),
            Touched {
                outputs: true,
                vault: false
            }
        );
        // The output's directory appeared (seen through the watch on its parent).
        assert_eq!(
            t("/home/agent/yt"),
            Touched {
                outputs: true,
                vault: false
            }
        );
        assert_eq!(
            t("/var/lib/tether/vault/yt/gen-000000000001.json"),
            Touched {
                outputs: false,
                vault: true
            }
        );
        assert_eq!(t("/tmp/other"), Touched::default());
        assert_eq!(t("/home/agent/notes.txt"), Touched::default());
    }

    /// A real inotify watcher whose events go nowhere: the tests look at what it holds.
    fn watcher() -> notify::RecommendedWatcher {
        notify::recommended_watcher(|_: notify::Result<notify::Event>| {}).unwrap()
    }

    #[test]
    fn a_missing_directory_is_covered_by_its_ancestor_until_it_appears_and_after_it_goes() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("home/agent/out");
        let wanted = [Wanted {
            dir: out.clone(),
            recursive: false,
        }];
        let mut w = watcher();
        let mut a = Arming::default();
        let armed = a.arm(&mut w, &wanted);
        assert!(armed.added && armed.all_covered && !armed.all_direct);
        assert_eq!(
            a.watched.keys().collect::<Vec<_>>(),
            [&root.path().to_path_buf()]
        );
        // The first render creates the whole path: the watch moves to the directory.
        std::fs::create_dir_all(&out).unwrap();
        let armed = a.arm(&mut w, &wanted);
        assert!(armed.added && armed.all_direct, "{armed:?}");
        assert_eq!(a.watched.keys().collect::<Vec<_>>(), [&out]);
        // Nothing changed: nothing to add, nothing to check.
        assert!(!a.arm(&mut w, &wanted).added);
        // Someone deletes the directory: back to the nearest ancestor still there.
        std::fs::remove_dir_all(root.path().join("home/agent")).unwrap();
        let armed = a.arm(&mut w, &wanted);
        assert!(armed.added && !armed.all_direct);
        assert_eq!(
            a.watched.keys().collect::<Vec<_>>(),
            [&root.path().join("home")]
        );
    }

    #[test]
    fn directories_inside_a_recursive_watch_need_no_watch_of_their_own() {
        let root = tempfile::tempdir().unwrap();
        let vault = root.path().join("state/vault");
        let out = vault.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let wanted = [
            Wanted {
                dir: vault.clone(),
                recursive: true,
            },
            Wanted {
                dir: out,
                recursive: false,
            },
        ];
        let mut a = Arming::default();
        let armed = a.arm(&mut watcher(), &wanted);
        assert!(armed.all_covered);
        assert_eq!(a.watched, BTreeMap::from([(vault, true)]));
    }
}
