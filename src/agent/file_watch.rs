//! Watches what the agent reads: an inotify watch (the `notify` crate) on the directories
//! of the rendered outputs and on every vault location, so a wiped, truncated, corrupted
//! or deleted file is restored within moments instead of at the next periodic check
//! (which stays as the fallback: `vault_watch::run`).
//!
//! The daemon's own writes trigger the watch too; the checks it runs are idempotent and
//! cheap (a read and a compare per output, a stamp of the vault's files), so that costs a
//! check, not a loop.

use super::daemon::{Daemon, VAULT_DIR};
use notify::{RecursiveMode, Watcher};
use std::path::PathBuf;
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

/// Runs the watch until shutdown. When the platform refuses a watch (inotify limits, a
/// directory that does not exist yet), the periodic checks carry on alone and the log
/// says so once.
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
    let outputs: Vec<PathBuf> = daemon.vault.outputs().into_iter().map(|o| o.path).collect();
    let mut vault_dirs = vec![daemon.config.state_dir.join(VAULT_DIR)];
    vault_dirs.extend(daemon.config.backup_dirs.iter().cloned());
    let mut output_dirs: Vec<PathBuf> = outputs
        .iter()
        .filter_map(|p| p.parent().map(PathBuf::from))
        .collect();
    output_dirs.sort();
    output_dirs.dedup();
    let mut all_outputs = true;
    let mut all_vault = true;
    for (dir, mode) in output_dirs
        .iter()
        .map(|d| (d, RecursiveMode::NonRecursive))
        .chain(vault_dirs.iter().map(|d| (d, RecursiveMode::Recursive)))
    {
        if let Err(e) = watcher.watch(dir, mode) {
            all_outputs &= !output_dirs.contains(dir);
            all_vault &= !vault_dirs.contains(dir);
            tracing::warn!(
                "cannot watch {} ({e}); files there are restored by the periodic checks only",
                dir.display()
            );
        }
    }
    daemon
        .outputs_watched
        .store(all_outputs, std::sync::atomic::Ordering::Relaxed);
    daemon
        .vault_watched
        .store(all_vault, std::sync::atomic::Ordering::Relaxed);
    let mut shutdown = std::pin::pin!(daemon.shutdown_signal());
    loop {
        let first = tokio::select! {
            _ = &mut shutdown => return,
            p = rx.recv() => match p { Some(p) => p, None => return },
        };
        let mut paths = first;
        tokio::time::sleep(DEBOUNCE).await;
        while let Ok(more) = rx.try_recv() {
            paths.extend(more);
        }
        let t = touched(&paths, &outputs, &vault_dirs);
        if t.outputs {
            daemon.check_outputs().await;
        }
        if t.vault {
            daemon.quick_check().await;
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
        // An output, or a temp file beside it that a rename will turn into it.
        if outputs.iter().any(|o| o == p || o.parent() == p.parent()) {
            t.outputs = true;
        }
        if vault_dirs.iter().any(|d| p.starts_with(d)) {
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
        assert_eq!(
            t("/var/lib/tether/vault/yt/gen-000000000001.json"),
            Touched {
                outputs: false,
                vault: true
            }
        );
        assert_eq!(t("/tmp/other"), Touched::default());
    }
}
