//! Re-authorization and paste: starting a session (the daemon keeps `state` and the PKCE
//! verifier, see [`crate::agent::access::reauth_sessions`]), completing it (the redirect the companion used must
//! fit [`RedirectRequirement::check`]), and storing a pasted secret the provider accepted.

use crate::agent::access::reauth_sessions::{Session, SessionError};
use crate::agent::credential::runtime::{CachedToken, Credential};
use crate::agent::daemon::Daemon;
use crate::agent::error::{OpError, RedirectMismatch};
use crate::agent::human::account_pin::{self, AccountRule};
use crate::agent::keep_alive::token_record;
use crate::oauth::{self, ProbeOutcome};
use crate::protocol::{CredentialHealth, ReauthStart, RedirectPort, RedirectRequirement};
use crate::provider::CredentialKind;
use crate::secret::{constant_time_eq, AccessToken, AuthorizationCode, RefreshToken};
use crate::vault::Record;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl RedirectRequirement {
    /// Checks that `redirect_uri` fits this rule: http on the loopback host, the path, the
    /// fixed port (or any non-zero one), no query or fragment.
    pub fn check(&self, redirect_uri: &str) -> Result<(), RedirectMismatch> {
        let bad = |why: &'static str| {
            Err(RedirectMismatch {
                uri: redirect_uri.to_string(),
                rule: format!(
                    "http://{}:{}{}",
                    self.host,
                    match self.port {
                        RedirectPort::Any => "<any port>".to_string(),
                        RedirectPort::Fixed(p) => p.to_string(),
                    },
                    self.path
                ),
                why,
            })
        };
        let Ok(u) = url::Url::parse(redirect_uri) else {
            return bad("not a URL");
        };
        if u.scheme() != "http" {
            return bad("the scheme must be http (loopback)");
        }
        let host_ok = match u.host() {
            Some(url::Host::Domain(h)) => h == self.host,
            Some(url::Host::Ipv4(ip)) => ip.to_string() == self.host,
            Some(url::Host::Ipv6(ip)) => ip.to_string() == self.host.trim_matches(['[', ']']),
            None => false,
        };
        if !host_ok {
            return bad("wrong host");
        }
        if u.path() != self.path {
            return bad("wrong path");
        }
        match (self.port, u.port()) {
            (RedirectPort::Fixed(p), Some(q)) if p == q => {}
            (RedirectPort::Any, Some(q)) if q != 0 => {}
            _ => return bad("wrong port"),
        }
        if u.query().is_some() || u.fragment().is_some() {
            return bad("no query or fragment allowed");
        }
        Ok(())
    }
}

impl Daemon {
    /// Starts a re-auth session: the daemon keeps `state` and the PKCE verifier.
    pub async fn reauth_start(self: &Arc<Self>, name: &str) -> Result<ReauthStart, OpError> {
        let cred = self.credential(name)?;
        crate::agent::credential::session_rule::refuse_token_ops(&cred.config)?;
        let provider = self
            .ensure_provider(&cred)
            .await
            .map_err(|e| e.into_op(&self.config.name, name))?;
        if provider.kind == CredentialKind::Paste {
            return Err(OpError::WrongKind {
                name: name.to_string(),
                message: "this credential is a pasted token; push a new one with PUT /v1/credentials/{name}/secret (`tether reauth` offers to paste it)".into(),
            });
        }
        if cred.client.client_id.is_empty() {
            return Err(OpError::WrongKind {
                name: name.to_string(),
                message:
                    "no client_id is configured for it in agent.toml, so it cannot be re-authorized"
                        .into(),
            });
        }
        let scopes = cred.config.scopes.clone().unwrap_or_default();
        let (pending, url) = oauth::AuthorizationRequest::new(&provider, &cred.client, &scopes)
            .map_err(|source| OpError::Provider {
                name: name.to_string(),
                source,
            })?;
        let redirect = provider.requirement();
        let state = pending.state.clone();
        let (session, expires_at) = self.sessions.start(name, pending, redirect.clone());
        Ok(ReauthStart {
            session,
            credential: name.to_string(),
            authorize_url: url.as_str().to_string(),
            state,
            redirect,
            expires_at,
        })
    }

    /// Completes a re-auth session: checks `state` and `redirect_uri`, exchanges the code
    /// with the verifier and client credentials, commits the new generation, marks the
    /// credential ok. On any failure the old generation stays.
    /// With [`AccountRule::NewAccount`], a grant for another account than the credential's
    /// replaces it.
    pub async fn reauth_complete(
        self: &Arc<Self>,
        session_id: &str,
        code: AuthorizationCode,
        state: &str,
        redirect_uri: &str,
        rule: AccountRule,
    ) -> Result<CredentialHealth, OpError> {
        // Taking the session consumes it: a replay, or a second try after a wrong state,
        // finds nothing.
        let session = self.sessions.take(session_id)?;
        if !constant_time_eq(session.pending.state.as_bytes(), state.as_bytes()) {
            return Err(OpError::Session(SessionError::StateMismatch));
        }
        session.redirect.check(redirect_uri)?;
        let cred = self.credential(&session.credential)?;
        let d = self.clone();
        let redirect_uri = redirect_uri.to_string();
        // Own task: once the code is spent, the new tokens must reach the vault even if
        // the companion hangs up.
        tokio::spawn(async move {
            d.complete_locked(&cred, session, code, &redirect_uri, rule)
                .await
        })
        .await
        .unwrap_or(Err(OpError::ShuttingDown))
    }

    async fn complete_locked(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
        session: Session,
        code: AuthorizationCode,
        redirect_uri: &str,
        rule: AccountRule,
    ) -> Result<CredentialHealth, OpError> {
        let name = cred.name.clone();
        let _flight = cred.flight.lock().await;
        if self.is_shutting_down() {
            return Err(OpError::ShuttingDown);
        }
        let _writes = self.writes.read().await;
        let provider = cred.provider();
        let ts = oauth::exchange(
            &self.http,
            &provider,
            &cred.client,
            code,
            session.pending.verifier,
            redirect_uri,
        )
        .await
        .map_err(|source| OpError::Provider {
            name: name.clone(),
            source,
        })?;
        self.store_grant(cred, ts, rule).await
    }

    /// Who a new grant is for. Where the scopes allow it, the YouTube channel it acts as
    /// (one Google account may own several, and the channel is what an uploading agent
    /// needs to stay the same); else the account the provider's probe names; else the
    /// OpenID Connect id_token of this very answer, checked as `oauth::id_token` says.
    /// `None` when nothing names one.
    async fn grant_identity(
        &self,
        cred: &Credential,
        provider: &crate::provider::Provider,
        ts: &oauth::TokenSet,
        requested: &[String],
    ) -> Option<oauth::Identity> {
        let name = &cred.name;
        if let Some(lookup) = provider
            .youtube_channels
            .as_ref()
            .filter(|l| l.applies_to(token_record::granted(ts, requested)))
        {
            match oauth::youtube::channel(&self.http, &provider.name, lookup, &ts.access_token)
                .await
            {
                Ok(Some(channel)) => return Some(channel),
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    "credential {name}: which YouTube channel the grant acts as is not known ({}); the account is pinned instead",
                    e.info
                ),
            }
        }
        if provider.probe.is_some() {
            if let (ProbeOutcome::Alive, Some(account)) =
                oauth::probe_account(&self.http, provider, &cred.client, &ts.access_token).await
            {
                return Some(account);
            }
        }
        let t = ts.id_token.as_ref()?;
        match oauth::id_token::account(
            t.secret(),
            &cred.client.client_id,
            cred.config.issuer.as_deref(),
            chrono::Utc::now(),
        ) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("credential {name}: {e}; the account is not pinned from it");
                None
            }
        }
    }

    /// Stores the tokens of a new grant (a code exchange, a device flow) as the
    /// credential's next generation and marks it working. The caller holds the flight lock
    /// and a `writes` guard.
    pub(crate) async fn store_grant(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
        ts: oauth::TokenSet,
        rule: AccountRule,
    ) -> Result<CredentialHealth, OpError> {
        let name = cred.name.clone();
        let provider = cred.provider();
        if ts.refresh_token.is_none() {
            tracing::warn!(
                "credential {name}: the provider issued no refresh token at re-authorization"
            );
        }
        let old = self.read_stored(&name).await.ok().flatten();
        let requested = cred.requested_scopes(&provider);
        let fresh = self.grant_identity(cred, &provider, &ts, &requested).await;
        // Identity pinning: a grant for another account than the one this credential
        // belongs to, or one for which nothing names an account, is refused, and nothing
        // stored changes.
        if let Err(m) = account_pin::check(old.as_ref(), fresh.as_ref(), rule) {
            tracing::warn!(
                "credential {name}: re-authorization as {} refused; it belongs to {}",
                m.got,
                m.expected
            );
            return Err(self.wrong_account(&name, m, false));
        }
        // The new grant's account, even when unnamed after a replacement on purpose: the
        // old pin is not this grant's.
        let rec = token_record::from_grant(&name, &provider.name, fresh.as_ref(), &ts, &requested);
        let account = fresh.map(|a| a.label);
        self.commit(cred, rec)
            .await
            .map_err(|e| e.into_op(&self.config.name, &name))?;
        let token = CachedToken::obtained_now(ts.access_token, ts.token_type, ts.expires_at);
        cred.set_token(Some(token.clone()));
        *cred.pending.lock() = None;
        *cred.last_flight.lock() = Some(Ok(token));
        cred.flights.fetch_add(1, Ordering::SeqCst);
        cred.set_grant(account, ts.refresh_expires_at);
        {
            // A new grant answers the daemon's own challenge (a device code, or "start the
            // sign-in again"); one the agent posted stays until the agent resolves it.
            let mut h = cred.human.lock();
            if h.challenge
                .as_ref()
                .is_some_and(|c| c.origin == crate::protocol::ChallengeOrigin::Daemon)
            {
                h.challenge = None;
            }
        }
        self.record_granted(cred, ts.refresh_expires_at, &ts.scopes, true);
        cred.wake.notify_one();
        Ok(cred.health())
    }

    fn wrong_account(&self, name: &str, m: account_pin::Mismatch, pasted: bool) -> OpError {
        OpError::WrongAccount {
            agent: self.config.name.clone(),
            name: name.to_string(),
            expected: m.expected,
            got: m.got,
            pasted,
        }
    }

    /// Stores a pasted secret for a paste-kind credential after the provider accepted it.
    /// With [`AccountRule::NewAccount`], a token of another account (another Telegram bot)
    /// replaces the credential's.
    pub async fn put_secret(
        self: &Arc<Self>,
        name: &str,
        secret: AccessToken,
        rule: AccountRule,
    ) -> Result<CredentialHealth, OpError> {
        let cred = self.credential(name)?;
        let provider = cred.provider();
        if provider.kind != CredentialKind::Paste {
            return Err(OpError::WrongKind {
                name: name.to_string(),
                message: "this credential is re-armed by browser consent, not by pasting a token; run `tether reauth`".into(),
            });
        }
        let d = self.clone();
        let c = cred.clone();
        tokio::spawn(async move {
            let account = oauth::verify_paste(&d.http, &provider, &secret)
                .await
                .map_err(|source| OpError::Provider {
                    name: c.name.clone(),
                    source,
                })?;
            let _flight = c.flight.lock().await;
            let _writes = d.writes.read().await;
            // The same pinning as a re-authorization: a token of another bot or user is
            // refused before anything is stored.
            let old = d.read_stored(&c.name).await.ok().flatten();
            if let Err(m) = account_pin::check(old.as_ref(), account.as_ref(), rule) {
                tracing::warn!(
                    "credential {}: pasted token of {} refused; it belongs to {}",
                    c.name,
                    m.got,
                    m.expected
                );
                return Err(d.wrong_account(&c.name, m, true));
            }
            let mut rec = Record::new(&c.name, &provider.name);
            rec.account = account.as_ref().map(|a| a.label.clone());
            rec.account_id = account.as_ref().map(|a| a.id.clone());
            let account = rec.account.clone();
            rec.access_token = Some(secret.clone());
            rec.refresh_token = Some(RefreshToken::new(secret.secret()));
            d.commit(&c, rec)
                .await
                .map_err(|e| e.into_op(&d.config.name, &c.name))?;
            let token = CachedToken::obtained_now(secret, "Bearer".into(), None);
            c.set_token(Some(token.clone()));
            *c.last_flight.lock() = Some(Ok(token));
            c.flights.fetch_add(1, Ordering::SeqCst);
            if account.is_some() {
                c.set_account(account);
            }
            d.apply_result(&c, Ok(None));
            c.wake.notify_one();
            Ok(c.health())
        })
        .await
        .unwrap_or(Err(OpError::ShuttingDown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_rules() {
        let any = RedirectRequirement {
            host: "127.0.0.1".into(),
            port: RedirectPort::Any,
            path: "/callback".into(),
        };
        assert!(any.check("http://127.0.0.1:5555/callback").is_ok());
        assert!(any.check("http://127.0.0.1/callback").is_err());
        assert!(any.check("http://evil.example:5555/callback").is_err());
        assert!(any.check("https://127.0.0.1:5555/callback").is_err());
        assert!(any.check("http://127.0.0.1:5555/other").is_err());
        let fixed = RedirectRequirement {
            port: RedirectPort::Fixed(8765),
            ..any
        };
        assert!(fixed.check("http://127.0.0.1:8765/callback").is_ok());
        assert!(fixed.check("http://127.0.0.1:8766/callback").is_err());
    }
}
