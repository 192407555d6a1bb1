//! The core's watcher inside the app: started with the app, restarted when pairings or
//! settings change, its events applied to the snapshot (or, for a notification click,
//! handed to the app).

use crate::bridge::{lock, Core, Requests, Running};
use chrono::Utc;
use std::sync::Arc;
use tether::companion::notifier::{self, Notifier, Pausable};
use tether::companion::watcher::WatchEvent;
use tokio::sync::oneshot;

impl Core {
    /// Starts the core's watcher inside the app's runtime; `requests` gets notification clicks.
    pub fn start(self: &Arc<Self>, requests: Requests) {
        *lock(&self.requests) = Some(requests);
        let me = self.clone();
        tauri::async_runtime::spawn(async move { me.restart_watcher().await });
    }

    /// (Re)spawns the watcher over the agents now in the config (after pairing changes).
    pub(crate) async fn restart_watcher(self: &Arc<Self>) {
        let old = lock(&self.watcher).take();
        if let Some(old) = old {
            let _ = old.stop.send(());
            let _ = old.done.await;
        }
        let Some(requests) = lock(&self.requests).clone() else {
            return; // Not started (tests that only drive commands).
        };
        let n: Arc<dyn Notifier> = Arc::new(Pausable::new(
            notifier::desktop_or_log(),
            self.pause.clone(),
        ));
        // No opener: a click comes back as `ReauthRequested` and the app runs it, so the
        // window shows the progress and offers "Cancel".
        let mut watcher = match self.companion.watch(n, None) {
            Ok(w) => w,
            Err(e) => return tracing::warn!("cannot start watching agents: {e}"),
        };
        let (stop, mut stop_rx) = oneshot::channel::<()>();
        let me = self.clone();
        let done = tauri::async_runtime::spawn(async move {
            loop {
                tokio::select! {
                    ev = watcher.next_event() => match ev {
                        Some(WatchEvent::ReauthRequested { agent, credential }) => requests(agent, credential),
                        Some(WatchEvent::NotifyFailed { agent, message }) => {
                            tracing::warn!("notification for agent {agent} failed: {message}")
                        }
                        Some(ev) => { me.snapshot.send_if_modified(|s| s.apply(&ev, Utc::now())); }
                        None => break,
                    },
                    _ = &mut stop_rx => { watcher.shutdown().await; break; }
                }
            }
        });
        *lock(&self.watcher) = Some(Running { stop, done });
    }
}
