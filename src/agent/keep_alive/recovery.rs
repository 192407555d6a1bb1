//! What to do after a refresh was cut off (the daemon crashed, or lost the provider's
//! answer, while spending a refresh token): never present that token blindly. Also the
//! check at start of a stored pasted token.

use crate::agent::credential::runtime::{CachedToken, Credential};
use crate::agent::daemon::Daemon;
use crate::agent::error::CheckError;
use crate::oauth::{self, ErrorClass, OAuthError, ProbeOutcome};
use crate::protocol::ErrorInfo;
use crate::provider::Provider;
use crate::vault::Record;
use std::sync::Arc;

impl Daemon {
    /// With a refresh intent outstanding for the stored refresh token (the daemon crashed,
    /// or lost the provider's answer, while spending it), never present that token blindly:
    /// where the provider introspects refresh tokens, ask it; otherwise call the rotation
    /// cut and tell the owner now, instead of letting the provider's reuse detection revoke
    /// the grant later. A provider that does not rotate loses nothing: the intent is
    /// dropped.
    pub(crate) async fn resolve_interrupted_refresh(
        &self,
        cred: &Credential,
        provider: &Provider,
        record: &Record,
        intent: crate::agent::credential::intent::Intent,
    ) -> Result<(), CheckError> {
        let name = cred.name.as_str();
        let Some(rt) = &record.refresh_token else {
            self.clear_intent(name);
            return Ok(());
        };
        let damaged = intent.generation == 0;
        let same_token = intent.generation == record.generation
            && intent.token_id == crate::vault::history::token_id(rt.secret());
        if !damaged && !same_token {
            // A newer generation was stored after the note: nothing was lost.
            self.clear_intent(name);
            return Ok(());
        }
        // Known to rotate (preset, or seen in the kept generations)? A preset that does not
        // rotate loses nothing by a replay; a generic provider may, and is asked.
        let known = provider.rotates_refresh_token || self.history_rotates(name).await;
        if !known && provider.name != "generic" {
            self.clear_intent(name);
            return Ok(());
        }
        let when = intent
            .started_at
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string();
        match oauth::introspect_refresh_token(&self.http, provider, &cred.client, rt).await {
            Some(ProbeOutcome::Alive) => {
                tracing::info!("credential {name}: the refresh cut off at {when} did not spend the refresh token (the provider says it is active)");
                self.clear_intent(name);
                Ok(())
            }
            Some(ProbeOutcome::Transient(info)) => Err(CheckError::Provider(OAuthError {
                provider: provider.name.clone(),
                class: ErrorClass::TRANSIENT,
                info,
            })),
            Some(ProbeOutcome::Gone(_)) => {
                // The note stays until a re-authorization stores a new generation: the
                // spent token is never presented again (that would revoke the grant).
                Err(rotation_cut(
                    provider,
                    &when,
                    "the provider says the stored refresh token is no longer active",
                ))
            }
            _ if !known => {
                // Not known to rotate and nobody to ask: a replay is what such a provider
                // expects.
                self.clear_intent(name);
                Ok(())
            }
            _ => {
                // Nobody can tell: keep the note (a restart asks again) and say it plainly.
                Err(rotation_cut(provider, &when, "the provider cannot be asked whether the old refresh token was spent, and presenting a spent one makes it revoke the grant"))
            }
        }
    }

    /// Whether refresh tokens of this credential may rotate: the preset says so, the
    /// provider is `generic` (rotation is learnt from its answers), or the kept generations
    /// hold different refresh tokens.
    pub(in crate::agent::keep_alive) async fn may_rotate(
        &self,
        provider: &Provider,
        name: &str,
    ) -> bool {
        provider.rotates_refresh_token
            || provider.name == "generic"
            || self.history_rotates(name).await
    }

    /// True when the kept generations of `name` hold different refresh tokens.
    pub(in crate::agent::keep_alive) async fn history_rotates(&self, name: &str) -> bool {
        let n = name.to_string();
        let history = self
            .vault_task("read history", move |v| v.history(&n))
            .await
            .unwrap_or_default();
        let mut ids = history.iter().filter_map(|h| h.refresh_token_id.as_deref());
        let first = ids.next();
        ids.any(|id| Some(id) != first)
    }

    /// At start: a refresh intent left by a crash is resolved before anything else, so the
    /// owner hears about a cut rotation on the first start.
    pub async fn resolve_at_start(self: &Arc<Self>, cred: &Arc<Credential>) {
        if self.intents.get(&cred.name).is_none() || cred.is_paste() {
            return;
        }
        let _flight = cred.flight.lock().await;
        let Some(intent) = self.intents.get(&cred.name) else {
            return;
        };
        let provider = match self.ensure_provider(cred).await {
            Ok(p) => p,
            Err(_) => return,
        };
        let Ok(Some(record)) = self.read_stored(&cred.name).await else {
            return;
        };
        if let Err(e) = self
            .resolve_interrupted_refresh(cred, &provider, &record, intent)
            .await
        {
            tracing::warn!("credential {}: {}", cred.name, e.info());
            self.apply_result(cred, Err(&e));
        }
    }

    pub(in crate::agent::keep_alive) async fn verify_stored_paste(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
        provider: &Provider,
        record: &Record,
    ) -> Result<CachedToken, CheckError> {
        let Some(token) = CachedToken::from_record(record, true) else {
            self.apply_result(cred, Err(&CheckError::NoToken));
            return Err(CheckError::NoToken);
        };
        match oauth::verify_paste(&self.http, provider, &token.access_token).await {
            Ok(account) => {
                if let Some(a) = account {
                    cred.set_account(Some(a.label));
                }
                cred.set_token(Some(token.clone()));
                self.apply_result(cred, Ok(None));
                Ok(token)
            }
            Err(e) => {
                let e = CheckError::Provider(e);
                self.apply_result(cred, Err(&e));
                Err(e)
            }
        }
    }
}

/// The `dead` error for a rotation cut before its answer was stored.
fn rotation_cut(provider: &Provider, when: &str, why: &str) -> CheckError {
    CheckError::Provider(OAuthError {
        provider: provider.name.clone(),
        class: ErrorClass::Dead,
        info: ErrorInfo {
            code: "rotation_interrupted".into(),
            description: format!(
                "the refresh at {when} was cut off (crash or lost answer) before the new refresh token was stored; {why}"
            ),
        },
    })
}
