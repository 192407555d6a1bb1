//! The window's re-authorization commands on the core: the browser flow (each step lands
//! in the snapshot, so a window opened mid-flow shows it and "Cancel"), its cancel, the
//! device-code flow the agent runs, and pasted tokens.

use crate::bridge::{err, Core};
use crate::error::CommandError;
use chrono::Utc;
use tether::companion::progress::Progress;
use tether::companion::reauth::{ReauthOptions, ReauthProgress};
use tether::protocol::CredentialHealth;
use tether::secret::AccessToken;

impl Core {
    /// Runs the one-click re-authorization of `agent/credential`; each step lands in the
    /// snapshot, so every window (opened now or later) shows it.
    pub async fn reauth(
        &self,
        agent: &str,
        credential: &str,
        accept_new_server: bool,
    ) -> Result<CredentialHealth, CommandError> {
        let report = |p: ReauthProgress| {
            self.snapshot
                .send_modify(|s| s.progress(agent, credential, &p, Utc::now()))
        };
        let opts = ReauthOptions {
            accept_new_server,
            ..ReauthOptions::default()
        };
        let result = self
            .companion
            .reauth(agent, credential, self.opener.as_ref(), opts, &report)
            .await;
        result.map_err(|e| {
            let e = err(e);
            // Errors before the run started are not reported by the core; a refused
            // second run must not overwrite the first one's step.
            if e.code != "already_running" {
                report(ReauthProgress::Failed {
                    message: e.message.clone(),
                });
            }
            e
        })
    }

    /// Cancels a running re-authorization of `agent/credential`.
    pub fn cancel_reauth(&self, agent: &str, credential: &str) -> Result<(), CommandError> {
        self.companion.cancel_reauth(agent, credential).map_err(err)
    }

    /// Asks the agent to re-authorize by device code; its code arrives as the challenge.
    pub async fn device_reauth(
        &self,
        agent: &str,
        credential: &str,
    ) -> Result<CredentialHealth, CommandError> {
        let health = self
            .companion
            .device_reauth(agent, credential)
            .await
            .map_err(err)?;
        self.snapshot
            .send_modify(|s| s.upsert(agent, health.clone(), Utc::now()));
        Ok(health)
    }

    /// Pushes a new token for a paste-kind credential; the agent verifies it first (and,
    /// unless `new_account`, that it is the same account as the stored one).
    pub async fn paste(
        &self,
        agent: &str,
        credential: &str,
        token: AccessToken,
        new_account: bool,
    ) -> Result<CredentialHealth, CommandError> {
        let health = self
            .companion
            .paste(agent, credential, token, new_account)
            .await
            .map_err(err)?;
        self.snapshot.send_modify(|s| {
            s.upsert(agent, health.clone(), Utc::now());
            s.finished(Progress::done(
                agent,
                credential,
                "Done: the new token works.",
                Utc::now(),
            ));
        });
        Ok(health)
    }
}
