//! Re-authorization by device code (RFC 8628), run by the daemon itself: it asks the
//! provider for a code, posts it as the credential's challenge (so the companion, the
//! alert channels and the owner's phone all see the page and the code), polls the token
//! endpoint at the provider's `interval` (longer after each `slow_down`) and stores the new
//! grant. No browser on the laptop and no loopback listener are involved.
//!
//! It starts when a device asks (`POST /v1/credentials/{name}/device-reauth`), and by
//! itself when a credential configured with `reauth = "device"` is found dead (from
//! [`Daemon::apply_result`]); a code that expires unused is then replaced by a new one. The
//! flow in progress is kept on disk ([`crate::agent::human::device_store`]), so a restart resumes
//! polling with the code the owner may be typing.

use crate::agent::config::ReauthMode;
use crate::agent::credential::runtime::Credential;
use crate::agent::daemon::Daemon;
use crate::agent::error::OpError;
use crate::agent::human::device_store::DeviceStore;
use crate::oauth::device::{self, Poll};
use crate::protocol::{Challenge, ChallengeOrigin, CredentialHealth};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How a flow ended.
enum End {
    /// Tokens stored, or a reason told to the owner: nothing more to do.
    Done,
    /// The code expired unused: a credential that re-authorizes by device code gets a new
    /// one.
    Expired,
    /// The daemon is stopping: the stored flow stays for the next start.
    Stopped,
}

impl Daemon {
    /// Starts a device-code re-authorization of `name` (or reports the one running).
    pub async fn device_reauth(self: &Arc<Self>, name: &str) -> Result<CredentialHealth, OpError> {
        let cred = self.credential(name)?.clone();
        crate::agent::credential::session_rule::refuse_token_ops(&cred.config)?;
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
        let scopes = cred.requested_scopes(&provider);
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
        // Shown to the owner as "Tether's own sign-in": the page must be the provider's.
        for page in std::iter::once(&auth.verification_uri).chain(&auth.verification_uri_complete) {
            if !provider.owns_page(page) {
                cred.device_flow.store(false, Ordering::SeqCst);
                return Err(OpError::ChallengeRefused {
                    name: name.to_string(),
                    why: format!(
                        "the provider's device authorization answer names the page {page:?}, which is not on the provider's own site; Tether does not show it to the owner. Check device_authorization_url (and the issuer's discovery document)"
                    ),
                });
            }
        }
        // The code is for the owner's eyes: the log says where, the code only at debug.
        tracing::info!(
            "credential {name}: device authorization started; the owner enters the code at {}",
            auth.verification_uri
        );
        tracing::debug!("credential {name}: device user code {}", auth.user_code);
        // On disk before the owner sees the code: a restart from here on resumes it.
        if let Err(e) = self.device_store().save(name, &auth, false) {
            tracing::warn!(
                "credential {name}: {}; a restart now would need a new code",
                crate::report::chain(&e)
            );
        }
        if let Err(e) = self.post_device_code(name, &auth, false).await {
            cred.device_flow.store(false, Ordering::SeqCst);
            let _ = self.device_store().remove(name);
            return Err(e);
        }
        self.spawn_poll(&cred, auth);
        Ok(cred.health())
    }

    fn device_store(&self) -> DeviceStore {
        DeviceStore::new(&self.config.state_dir)
    }

    /// Posts the flow's code as the daemon's own challenge (news to the owner unless
    /// `already_told`: a flow resumed after a restart), then notes on disk that the owner
    /// was sent it, so the next restart does not alert again.
    async fn post_device_code(
        self: &Arc<Self>,
        name: &str,
        auth: &device::DeviceAuthorization,
        already_told: bool,
    ) -> Result<CredentialHealth, OpError> {
        let health = self
            .post_challenge_from(
                name,
                Challenge::DeviceCode {
                    verification_uri: auth.verification_uri.clone(),
                    user_code: auth.user_code.clone(),
                    verification_uri_complete: auth.verification_uri_complete.clone(),
                    expires_at: Some(auth.expires_at),
                },
                ChallengeOrigin::Daemon,
                already_told,
            )
            .await?;
        if !already_told {
            if let Err(e) = self.device_store().save(name, auth, true) {
                tracing::warn!("credential {name}: {}", crate::report::chain(&e));
            }
        }
        Ok(health)
    }

    /// Polls in its own task; the credential's flow flag is set by the caller and cleared
    /// here when the flow ends.
    fn spawn_poll(self: &Arc<Self>, cred: &Arc<Credential>, auth: device::DeviceAuthorization) {
        let d = self.clone();
        let c = cred.clone();
        tokio::spawn(async move {
            let end = d.poll_device(&c, auth).await;
            if !matches!(end, End::Stopped) {
                if let Err(e) = d.device_store().remove(&c.name) {
                    tracing::warn!("credential {}: {}", c.name, crate::report::chain(&e));
                }
            }
            c.device_flow.store(false, Ordering::SeqCst);
            match end {
                End::Expired if c.config.reauth == ReauthMode::Device => d.auto_device_reauth(&c),
                End::Expired => {
                    d.device_ended(&c, "the device code expired before it was used")
                        .await
                }
                End::Done | End::Stopped => {}
            }
        });
    }

    /// The grant of a `reauth = "device"` credential was found dead: start a device-code
    /// sign-in (unless one runs), in the background.
    pub(crate) fn auto_device_reauth(self: &Arc<Self>, cred: &Arc<Credential>) {
        if cred.config.reauth != ReauthMode::Device || self.is_shutting_down() {
            return;
        }
        let d = self.clone();
        let name = cred.name.clone();
        tokio::spawn(async move {
            if let Err(e) = d.device_reauth(&name).await {
                tracing::error!(
                    "credential {name}: the device sign-in could not start: {}",
                    crate::report::chain(&e)
                );
            }
        });
    }

    /// At start: resumes every device-code sign-in a previous run left unfinished (the
    /// owner may be typing its code), and forgets the expired ones.
    pub(crate) fn resume_device_flows(self: &Arc<Self>) {
        let store = self.device_store();
        for cred in self.credentials.snapshot().values() {
            let (auth, announced) = match store.load(&cred.name) {
                Ok(Some(a)) => a,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("credential {}: {}", cred.name, crate::report::chain(&e));
                    let _ = store.remove(&cred.name);
                    continue;
                }
            };
            if auth.expires_at <= chrono::Utc::now() {
                let _ = store.remove(&cred.name);
                continue;
            }
            if cred.device_flow.swap(true, Ordering::SeqCst) {
                continue;
            }
            tracing::info!(
                "credential {}: resuming the device sign-in (code at {})",
                cred.name,
                auth.verification_uri
            );
            let d = self.clone();
            let c = cred.clone();
            tokio::spawn(async move {
                if let Err(e) = d.post_device_code(&c.name, &auth, announced).await {
                    tracing::warn!("credential {}: {}", c.name, crate::report::chain(&e));
                }
                d.spawn_poll(&c, auth);
            });
        }
    }

    /// Polls until the owner finished, declined, or the code expired.
    async fn poll_device(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
        mut auth: device::DeviceAuthorization,
    ) -> End {
        let name = cred.name.as_str();
        let mut shutdown = std::pin::pin!(self.shutdown_signal());
        loop {
            tokio::select! {
                _ = &mut shutdown => return End::Stopped,
                _ = tokio::time::sleep(auth.interval) => {}
            }
            if chrono::Utc::now() >= auth.expires_at {
                tracing::warn!(
                    "credential {name}: the device code expired before the owner used it"
                );
                return End::Expired;
            }
            // After a restart, a provider found by discovery may not be resolved yet.
            let provider = match self.ensure_provider(cred).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("credential {name}: {}; polling again", e.info());
                    continue;
                }
            };
            match device::poll(&self.http, &provider, &cred.client, &auth).await {
                Ok(Poll::Pending) => {}
                Ok(Poll::SlowDown) => {
                    // RFC 8628 3.5: this and every later poll waits 5 s longer; the longer
                    // interval is kept for a resumed flow too. `slow_down` and
                    // `authorization_pending` are the normal course of a device flow: the
                    // interval in force is said once when it changes, nothing else.
                    auth.slow_down();
                    tracing::info!(
                        "credential {name}: the provider asks for slower polling; polling every {} s",
                        auth.interval.as_secs()
                    );
                    if let Err(e) = self.device_store().save(name, &auth, true) {
                        tracing::warn!("credential {name}: {}", crate::report::chain(&e));
                    }
                }
                Ok(Poll::Tokens(ts)) => {
                    let _flight = cred.flight.lock().await;
                    let _writes = self.writes.read().await;
                    // The code is answered: the challenge goes before the state is
                    // recorded, so the credential can turn ok.
                    cred.human.lock().challenge = None;
                    match self
                        .store_grant(
                            cred,
                            ts,
                            crate::agent::human::account_pin::AccountRule::SameAccount,
                        )
                        .await
                    {
                        Ok(h) => tracing::info!(
                            "credential {name}: re-authorized by device code ({})",
                            h.state
                        ),
                        Err(e) => tracing::error!(
                            "credential {name}: the device flow's tokens could not be stored: {e}"
                        ),
                    }
                    return End::Done;
                }
                Ok(Poll::Ended(e)) if e.info.code == "expired_token" => return End::Expired,
                Ok(Poll::Ended(e)) => {
                    self.device_ended(cred, &format!("the sign-in ended ({})", e.info))
                        .await;
                    return End::Done;
                }
                Err(e) => {
                    self.device_ended(
                        cred,
                        &format!("polling the token endpoint failed ({})", e.info),
                    )
                    .await;
                    return End::Done;
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
            .post_challenge_from(
                &cred.name,
                Challenge::Text { message },
                ChallengeOrigin::Daemon,
                false,
            )
            .await
        {
            tracing::warn!("credential {}: {e}", cred.name);
        }
    }
}
