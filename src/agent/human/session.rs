//! `kind = "session"` credentials: the agent's own session (a WhatsApp Web link, a
//! browser login) that Tether cannot test. No token, no provider calls: the health is what
//! the agent reports (`human::challenge`). This file is the staleness task: it makes the
//! credential `dead` when the agent has not reported for `stale_after` (a crashed agent
//! cannot say so); the pure rules are `credential::session_rule`.

use crate::agent::credential::runtime::Credential;
use crate::agent::credential::session_rule::SESSION_STALE;
use crate::agent::daemon::Daemon;
use crate::protocol::ErrorInfo;
use std::sync::Arc;
use tokio::time::Instant;

/// Watches one session credential until shutdown: `dead` once `stale_after` passes
/// without a report (counted from the daemon's start until the first one). Each report
/// wakes it to start the clock again.
pub async fn run(daemon: Arc<Daemon>, cred: Arc<Credential>) {
    let mut shutdown = std::pin::pin!(daemon.shutdown_signal());
    let Some(stale_after) = cred.config.stale_after else {
        // Nothing to watch: the state changes only through the agent's reports.
        shutdown.await;
        return;
    };
    let started = Instant::now();
    let mut announced: Option<Instant> = None;
    loop {
        let last = cred.human().last_report;
        let due = last.unwrap_or(started) + stale_after;
        if Instant::now() >= due && announced != Some(due) {
            announced = Some(due);
            let words = crate::duration::format(stale_after);
            let description = match last {
                Some(_) => format!(
                    "the agent has not reported on its session for {words}; is it running?"
                ),
                None => format!(
                    "the agent has not reported on its session since the daemon started ({words} ago); is it running?"
                ),
            };
            let provider = cred.provider().name.clone();
            daemon.apply_result(
                &cred,
                Err(&crate::agent::credential::human_state::dead_error(
                    &provider,
                    ErrorInfo {
                        code: SESSION_STALE.into(),
                        description,
                    },
                )),
            );
        }
        // Past the deadline and announced: sleep until a report moves it.
        let wake_at = if Instant::now() >= due {
            None
        } else {
            Some(due)
        };
        tokio::select! {
            _ = &mut shutdown => return,
            _ = cred.wake.notified() => {}
            _ = async {
                match wake_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
}
