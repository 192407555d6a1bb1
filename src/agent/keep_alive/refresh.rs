//! The single-flight refresh of a credential: one refresh at a time, its waiters sharing
//! the result, the durable note of the refresh token being spent before it leaves, and
//! the new generation committed (`keep_alive::commit`) before anyone sees the new token.

use crate::agent::credential::runtime::{CachedToken, Credential};
use crate::agent::daemon::Daemon;
use crate::agent::error::{CheckError, VaultFailure};
use crate::agent::metrics;
use crate::oauth::{self, ErrorClass, OAuthError};
use crate::protocol::ErrorInfo;
use crate::provider::{CredentialKind, Provider};
use chrono::Utc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Daemon {
    /// Refreshes `cred` once for every concurrent caller: callers that arrive while a
    /// refresh is running wait for it and share its result. With `only_if_stale`, a caller
    /// that finds a token fresh for the credential's `refresh_ahead` margin gets it without
    /// a refresh. The work runs in its own task, so a caller that goes away (a dropped
    /// HTTP request) cannot cut a refresh between the provider's answer and the commit.
    pub async fn refresh(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
        only_if_stale: bool,
    ) -> Result<CachedToken, CheckError> {
        if cred.config.is_session() {
            // No token to refresh: its health is the agent's report.
            return Err(CheckError::NoToken);
        }
        let d = self.clone();
        let c = cred.clone();
        let seen = cred.flights.load(Ordering::SeqCst);
        tokio::spawn(async move { d.refresh_flight(&c, seen, only_if_stale).await })
            .await
            .unwrap_or(Err(CheckError::ShuttingDown))
    }

    async fn refresh_flight(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
        seen: u64,
        only_if_stale: bool,
    ) -> Result<CachedToken, CheckError> {
        let _flight = cred.flight.lock().await;
        if cred.flights.load(Ordering::SeqCst) != seen {
            // Another caller refreshed while we waited: share its outcome.
            if let Some(r) = cred.last_flight.lock().clone() {
                return r;
            }
        }
        if only_if_stale {
            if let Some(t) = cred.cached_token() {
                if t.fresh_for_broker(cred.config.refresh_ahead, Utc::now()) {
                    return Ok(t);
                }
            }
        }
        if self.is_shutting_down() {
            return Err(CheckError::ShuttingDown);
        }
        let _writes = self.writes.read().await;
        let result = self.refresh_locked(cred).await;
        *cred.last_flight.lock() = Some(result.clone());
        cred.flights.fetch_add(1, Ordering::SeqCst);
        result
    }

    /// Resolves a `generic` provider by discovery if that failed before.
    pub(in crate::agent) async fn ensure_provider(
        &self,
        cred: &Credential,
    ) -> Result<Arc<Provider>, CheckError> {
        if cred.needs_discovery.load(Ordering::SeqCst) {
            let issuer = cred.config.issuer.clone().unwrap_or_default();
            let public = cred.client.client_secret.is_none();
            let p = cred
                .config
                .discover_provider(&self.http, &issuer, public)
                .await
                .map_err(|e| {
                    CheckError::Provider(OAuthError {
                        provider: cred.config.provider.clone(),
                        class: ErrorClass::TRANSIENT,
                        info: ErrorInfo {
                            code: "discovery_failed".into(),
                            description: crate::report::chain(&e),
                        },
                    })
                })?;
            cred.set_provider(p);
        }
        Ok(cred.provider())
    }

    async fn refresh_locked(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
    ) -> Result<CachedToken, CheckError> {
        let name = cred.name.as_str();
        // A rotated generation that could not be stored earlier goes first: its refresh
        // token is the only live one, and spending the old one again would kill the grant.
        let pending = cred.pending.lock().take();
        if let Some(rec) = pending {
            let token = CachedToken::from_record(&rec, false);
            let end = rec.refresh_expires_at;
            match self.commit(cred, rec.clone()).await {
                Ok(_) => {
                    self.clear_intent(name);
                    cred.set_token(token.clone());
                    self.apply_result(cred, Ok(end));
                    if let Some(t) = token {
                        return Ok(t);
                    }
                }
                Err(e) => {
                    *cred.pending.lock() = Some(rec);
                    self.apply_result(cred, Err(&e));
                    return Err(e);
                }
            }
        }
        // HA: only the lease holder talks to the provider; the others serve what it commits.
        // (Pasted tokens are never refreshed, so any daemon may check them.)
        if let Some(leases) = &self.lease {
            if leases.holds(name).is_none() && cred.provider().kind != CredentialKind::Paste {
                if let Some(r) =
                    crate::agent::lease::hooks::follow_recorded(self, leases, cred).await
                {
                    return r;
                }
            }
        }
        let provider = match self.ensure_provider(cred).await {
            Ok(p) => p,
            Err(e) => {
                self.apply_result(cred, Err(&e));
                return Err(e);
            }
        };
        let record = match self.read_stored(name).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.apply_result(cred, Err(&CheckError::NoToken));
                return Err(CheckError::NoToken);
            }
            Err(e) => {
                self.apply_result(cred, Err(&e));
                return Err(e);
            }
        };
        if provider.kind == CredentialKind::Paste {
            return self.verify_stored_paste(cred, &provider, &record).await;
        }
        let Some(rt) = record.refresh_token.clone() else {
            self.apply_result(cred, Err(&CheckError::NoToken));
            return Err(CheckError::NoToken);
        };
        // A refresh cut off earlier (crash, lost answer): find out before spending again.
        if let Some(intent) = self.intents.get(name) {
            if let Err(e) = self
                .resolve_interrupted_refresh(cred, &provider, &record, intent)
                .await
            {
                self.apply_result(cred, Err(&e));
                return Err(e);
            }
        }
        // A rotating refresh token is spent only when its answer can be stored: room for
        // it first, then a durable note that this token is being spent. (A token that does
        // not rotate survives a lost answer: no ceremony.)
        let mut reserved = None;
        if self.may_rotate(&provider, name).await {
            reserved = match self.reserve(name).await {
                Ok(r) => Some(r),
                Err(e) => {
                    self.apply_result(cred, Err(&e));
                    return Err(e);
                }
            };
            let intent = crate::agent::credential::intent::Intent {
                generation: record.generation,
                token_id: crate::vault::history::token_id(rt.secret()),
                started_at: Utc::now(),
            };
            if let Err(e) = self.intents.begin(name, &intent) {
                let e = CheckError::Vault(VaultFailure::plain(format!(
                    "cannot record the refresh intent in the state directory ({e}), so the refresh token was not spent; check that the state directory is writable and has space"
                )));
                self.apply_result(cred, Err(&e));
                return Err(e);
            }
        }
        // HA: the spend is written into the lease (renewing it) before the token leaves;
        // the provider call gets less time than the lease then has left.
        let result = match &self.lease {
            Some(leases) => {
                match crate::agent::lease::hooks::spend(self, leases, cred, &provider, &record, &rt)
                    .await
                {
                    Ok(r) => r,
                    Err(follow) => return follow,
                }
            }
            None => oauth::refresh(&self.http, &provider, &cred.client, &rt).await,
        };
        let ts = match result {
            Ok(ts) => {
                self.metrics.inc(
                    metrics::REFRESHES,
                    &[("credential", name), ("result", "ok")],
                );
                ts
            }
            Err(e) => {
                self.metrics.inc(
                    metrics::REFRESHES,
                    &[("credential", name), ("result", e.class.as_str())],
                );
                // An answer (or a connection that never opened) means nothing was rotated;
                // a timeout or a cut connection leaves it unknown, and the intent stays.
                if !matches!(
                    e.info.code.as_str(),
                    "timeout" | "network" | "malformed_response"
                ) {
                    self.clear_intent(name);
                }
                let e = CheckError::Provider(e);
                self.apply_result(cred, Err(&e));
                return Err(e);
            }
        };
        // The room goes back just before the commit that needs it.
        drop(reserved);
        let next = crate::agent::keep_alive::token_record::refreshed(&record, &ts);
        let token = CachedToken::obtained_now(ts.access_token, ts.token_type, ts.expires_at);
        let based_on = self.lease.is_some().then_some(record.generation);
        match self.commit_after(cred, next.clone(), based_on).await {
            Ok(_) => {
                self.clear_intent(name);
                if let Some(leases) = &self.lease {
                    crate::agent::lease::hooks::spent(leases, name).await;
                }
                cred.set_token(Some(token.clone()));
                self.record_granted(cred, next.refresh_expires_at, &ts.scopes, false);
                Ok(token)
            }
            Err(e) if crate::agent::lease::hooks::is_stale(&e) => {
                // Lost the lease mid-refresh and another daemon committed a newer
                // generation: this answer must not replace it (and is not kept to retry).
                tracing::error!(
                    "credential {name}: lost the HA lease during a refresh; the vault refused to commit this daemon's result over a newer generation ({}); it is discarded",
                    e.info().description
                );
                self.clear_intent(name);
                self.apply_result(cred, Err(&e));
                Err(e)
            }
            Err(e) => {
                if ts.rotated {
                    // The old refresh token is spent: keep the new one in memory and store
                    // it before anything else happens to this credential.
                    *cred.pending.lock() = Some(next);
                } else {
                    // Nothing was lost: the stored refresh token still works. The new access
                    // token may be used.
                    cred.set_token(Some(token.clone()));
                }
                self.apply_result(cred, Err(&e));
                Err(e)
            }
        }
    }

    pub(in crate::agent::keep_alive) fn clear_intent(&self, name: &str) {
        if let Err(e) = self.intents.clear(name) {
            // Harmless but noisy: the next refresh will ask the provider first.
            tracing::warn!("credential {name}: cannot remove the refresh intent: {e}");
        }
    }
}
