//! The broker: access tokens for the user's agent (refreshed ahead of expiry, single
//! flight; a dead credential refuses and counts the refusal), and the agent's report that
//! an access token was refused.

use crate::agent::credential::runtime::{CachedToken, Credential};
use crate::agent::daemon::Daemon;
use crate::agent::error::{CheckError, OpError};
use crate::agent::metrics;
use crate::protocol::{CredentialHealth, CredentialState, ErrorInfo, RejectedReport};
use chrono::Utc;
use std::sync::Arc;

/// Reports of a refused access token within this long of the last confirming refresh share
/// its result instead of spending the refresh token again.
pub const REJECTED_MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

impl Daemon {
    /// A fresh access token for the user's agent; refreshed ahead of expiry (single flight).
    /// A dead credential refuses, and the refusal is counted.
    pub async fn access_token(self: &Arc<Self>, name: &str) -> Result<CachedToken, OpError> {
        let cred = self.credential(name)?;
        crate::agent::credential::session_rule::refuse_token_ops(&cred.config)?;
        let count = |outcome: &str| {
            self.metrics.inc(
                metrics::ACCESS_TOKEN_REQUESTS,
                &[("credential", name), ("outcome", outcome)],
            )
        };
        if let Some(e) = self.refuse_if_dead(&cred) {
            count("blocked");
            return Err(e);
        }
        if let Some(t) = cred.cached_token() {
            if t.fresh_for_broker(cred.config.refresh_ahead, Utc::now()) {
                count("served");
                return Ok(t);
            }
        }
        match self.refresh(&cred, true).await {
            Ok(t) => {
                count("served");
                Ok(t)
            }
            Err(e) if e.is_dead() => {
                count("blocked");
                Err(self
                    .refuse_if_dead(&cred)
                    .unwrap_or_else(|| self.dead_error(&cred, &e.info())))
            }
            Err(e @ CheckError::NoToken) => {
                count("no_token");
                Err(e.into_op(&self.config.name, name))
            }
            Err(e) => {
                // Transient trouble: a token that has not expired yet still works.
                if let Some(t) = cred.cached_token() {
                    if t.fresh_for(std::time::Duration::ZERO, Utc::now()) {
                        count("served_stale");
                        return Ok(t);
                    }
                }
                count("unavailable");
                Err(e.into_op(&self.config.name, name))
            }
        }
    }

    fn dead_error(&self, cred: &Credential, info: &ErrorInfo) -> OpError {
        OpError::Dead {
            agent: self.config.name.clone(),
            name: cred.name.clone(),
            code: info.code.clone(),
            description: info.description.clone(),
        }
    }

    /// If the credential is dead: counts the refusal and returns the error.
    fn refuse_if_dead(&self, cred: &Credential) -> Option<OpError> {
        let info = cred.block_if_dead()?.unwrap_or(ErrorInfo {
            code: "dead".into(),
            description: "the grant is gone".into(),
        });
        Some(self.dead_error(cred, &info))
    }

    /// The agent's report that the API refused the access token it was given. Drops the
    /// cached token and runs one confirming refresh test at once (single flight: a flood
    /// of reports shares one refresh, and reports within [`REJECTED_MIN_INTERVAL`] of the
    /// last confirming refresh get its result without another). Answers with the
    /// credential's state and, while it is alive, a fresh access token.
    pub async fn confirm_rejected_token(
        self: &Arc<Self>,
        name: &str,
        report: &RejectedReport,
    ) -> Result<(CredentialHealth, Option<CachedToken>), OpError> {
        let cred = self.credential(name)?;
        self.metrics
            .inc(metrics::REJECTED_REPORTS, &[("credential", name)]);
        tracing::info!(
            "credential {name}: the agent reports its access token was refused{}{}",
            report
                .status
                .map(|s| format!(" (HTTP {s})"))
                .unwrap_or_default(),
            report
                .detail
                .as_deref()
                .map(|d| format!(": {}", crate::provider::clean_text(d, 200)))
                .unwrap_or_default()
        );
        if cred.status().state == CredentialState::Dead {
            self.refuse_if_dead(&cred);
            return Ok((cred.health(), None));
        }
        let fresh_report = {
            let mut last = cred.last_rejected_refresh.lock();
            let now = std::time::Instant::now();
            let recent = last.is_some_and(|t| now.duration_since(t) < REJECTED_MIN_INTERVAL);
            if !recent {
                *last = Some(now);
            }
            !recent
        };
        let result = if fresh_report {
            // The refused token must not be served again while the refresh runs.
            cred.set_token(None);
            let r = self.refresh(&cred, false).await;
            cred.wake.notify_one();
            r
        } else {
            // A report right after a confirming refresh: share its outcome.
            self.refresh(&cred, true).await
        };
        match result {
            Ok(t) => Ok((cred.health(), Some(t))),
            Err(CheckError::ShuttingDown) => Err(OpError::ShuttingDown),
            Err(e) => {
                if e.is_dead() {
                    self.refuse_if_dead(&cred);
                }
                Ok((cred.health(), None))
            }
        }
    }
}
