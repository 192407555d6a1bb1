//! Re-authorization by device code (RFC 8628), run by the daemon itself: it asks the
//! provider for a code, posts it as the credential's challenge (so the companion, the
//! alert channels and the owner's phone all see the page and the code), polls the token
//! endpoint at the provider's `interval` (longer after each `slow_down`) and stores the new
//! grant. No browser on the laptop and no loopback listener are involved.
//!
//! It starts when a device asks (`POST /v1/credentials/{name}/device-reauth`), and by
//! itself when a credential configured with `reauth = "device"` dies.

use super::credential::Credential;
use super::error::OpError;
use super::Daemon;
use crate::oauth::device::{self, Poll, SLOW_DOWN_STEP};
use crate::protocol::{Challenge, CredentialHealth};
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Daemon {
    /// Starts a device-code re-authorization of `name` (or reports the one running).
    pub async fn device_reauth(self: &Arc<Self>, name: &str) -> Result<CredentialHealth, OpError> {
        let cred = self.credential(name)?.clone();
        super::session::refuse_token_ops(&cred)?;
        let provider = self
            .ensure_provider(&cred)
            .await
            .map_err(|e| e.into_op(&self.config.name, name))?;
        if provider.device_authorization_url.is_none() {
            return Err(OpError::WrongKind {
                name: name.to_string(),
                message: "its provider has no device authorization endpoint; set device_authorization_url in [credentials.overrides], or re-authorize in the browser".into(),
            });
        }
        if cred.device_flow.swap(true, Ordering::SeqCst) {
            // One flow at a time: the owner is already shown its code.
            return Ok(cred.health());
        }
        let scopes = cred
            .config
            .scopes
            .clone()
            .unwrap_or_else(|| provider.default_scopes.clone());
        let auth = match device::start(&self.http, &provider, &cred.client, &scopes).await {
            Ok(a) => a,
            Err(source) => {
                cred.device_flow.store(false, Ordering::SeqCst);
                return Err(OpError::Provider {
                    name: name.to_string(),
                    source,
                });
            }
        };
        tracing::info!(
            "credential {name}: device authorization started; the owner enters {} at {}",
            auth.user_code,
            auth.verification_uri
        );
        let posted = self
            .post_challenge(
                name,
                Challenge::DeviceCode {
                    verification_uri: auth.verification_uri.clone(),
                    user_code: auth.user_code.clone(),
                    verification_uri_complete: auth.verification_uri_complete.clone(),
                    expires_at: Some(auth.expires_at),
                },
            )
            .await;
        if let Err(e) = posted {
            cred.device_flow.store(false, Ordering::SeqCst);
            return Err(e);
        }
        let d = self.clone();
        let c = cred.clone();
        tokio::spawn(async move {
            d.poll_device(&c, auth).await;
            c.device_flow.store(false, Ordering::SeqCst);
        });
        Ok(cred.health())
    }

    /// Polls until the owner finished, declined, or the code expired.
    async fn poll_device(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
        auth: device::DeviceAuthorization,
    ) {
        let name = cred.name.as_str();
        let mut interval = auth.interval;
        let mut shutdown = std::pin::pin!(self.shutdown_signal());
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(interval) => {}
            }
            if chrono::Utc::now() >= auth.expires_at {
                tracing::warn!(
                    "credential {name}: the device code expired before the owner used it"
                );
                self.device_ended(cred, "the device code expired before it was used")
                    .await;
                return;
            }
            let provider = cred.provider();
            match device::poll(&self.http, &provider, &cred.client, &auth).await {
                Ok(Poll::Pending) => {}
                Ok(Poll::SlowDown) => interval += SLOW_DOWN_STEP,
                Ok(Poll::Tokens(ts)) => {
                    let _flight = cred.flight.lock().await;
                    let _writes = self.writes.read().await;
                    // The code is answered: the challenge goes before the state is
                    // recorded, so the credential can turn ok.
                    cred.human.lock().challenge = None;
                    match self.store_grant(cred, ts, false).await {
                        Ok(h) => tracing::info!(
                            "credential {name}: re-authorized by device code ({})",
                            h.state
                        ),
                        Err(e) => tracing::error!(
                            "credential {name}: the device flow's tokens could not be stored: {e}"
                        ),
                    }
                    return;
                }
                Ok(Poll::Ended(e)) => {
                    self.device_ended(cred, &format!("the sign-in ended ({})", e.info))
                        .await;
                    return;
                }
                Err(e) => {
                    self.device_ended(
                        cred,
                        &format!("polling the token endpoint failed ({})", e.info),
                    )
                    .await;
                    return;
                }
            }
        }
    }

    /// The flow ended without tokens: the owner is told how to start again.
    async fn device_ended(self: &Arc<Self>, cred: &Arc<Credential>, why: &str) {
        let message = format!(
            "{why}; start the device sign-in again for a new code (POST /v1/credentials/{}/device-reauth)",
            cred.name
        );
        if let Err(e) = self
            .post_challenge(&cred.name, Challenge::Text { message })
            .await
        {
            tracing::warn!("credential {}: {e}", cred.name);
        }
    }
}
