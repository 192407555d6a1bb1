//! `kind = "session"` credentials: the agent's own session (a WhatsApp Web link, a
//! browser login) that Tether cannot test. No token, no provider calls: the health is what
//! the agent reports (`agent::challenge`), and the staleness rule here makes it `dead`
//! when the agent has not reported for `stale_after` (a crashed agent cannot say so).

use crate::agent::config::CredentialConfig;
use crate::agent::credential::runtime::Credential;
use crate::agent::daemon::Daemon;
use crate::protocol::{Cadence, ErrorInfo};
use crate::provider::Provider;
use std::sync::Arc;
use tokio::time::Instant;

/// Error code of a session whose agent stopped reporting.
pub const SESSION_STALE: &str = "session_stale";

/// The provider entry of a session credential: a label with no endpoints, so nothing
/// ever calls out and the re-auth kind is `none` (the fix is the agent's challenge).
pub fn provider(label: &str) -> Provider {
    // Invariant: `generic` is in the built-in catalog.
    let mut p = crate::provider::preset("generic").expect("generic preset exists");
    p.name = if label.is_empty() {
        "session".into()
    } else {
        label.to_string()
    };
    p.auth_url = None;
    p.token_url = None;
    p.revoke_url = None;
    p.probe = None;
    p.probe_fallbacks.clear();
    p
}

/// Token operations (access tokens, browser re-authorization) on a session credential
/// are refused with what to do instead.
pub(crate) fn refuse_token_ops(cred: &Credential) -> Result<(), crate::agent::error::OpError> {
    if !cred.config.is_session() {
        return Ok(());
    }
    Err(crate::agent::error::OpError::WrongKind {
        name: cred.name.clone(),
        message: "this is a session credential: it holds no token, and the agent re-links it itself by posting a challenge (POST /v1/credentials/{name}/challenge) that the owner answers".into(),
    })
}

/// What health says about how a session credential is watched.
pub fn cadence(cfg: &CredentialConfig) -> Cadence {
    let note = match cfg.stale_after {
        Some(d) => format!(
            "the agent reports its session; dead when it has not reported for {}",
            crate::duration::format(d)
        ),
        None => "the agent reports its session (no staleness rule: set stale_after to notice an agent that stopped reporting)".into(),
    };
    Cadence {
        probe_interval_secs: None,
        refresh_interval_secs: 0,
        worst_case_detection_secs: cfg.stale_after.map_or(0, |d| d.as_secs()),
        mode: "agent_reports".into(),
        probe: None,
        note: Some(note),
    }
}

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
            daemon.record(
                &cred,
                Err(&crate::agent::human::challenge::dead_error(
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
