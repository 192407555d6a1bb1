//! The daemon's side of the HA lease: the lease task, a follower's way of serving the
//! newest generation, the holder's spend of a refresh token, and the lease in health.

use super::leases::{Leases, Spend, GRACE};
use crate::agent::credential::runtime::{CachedToken, Credential};
use crate::agent::daemon::Daemon;
use crate::agent::error::{CheckError, VaultFailure};
use chrono::Utc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The lease task: one round per credential every sixth of the TTL. A takeover that finds
/// a spend in flight records it as a refresh intent first (the refresh then asks the
/// provider before presenting that token); at shutdown the leases are released.
pub async fn run(d: Arc<Daemon>, leases: Arc<Leases>) {
    let period = (leases.ttl() / 6).max(Duration::from_millis(200));
    let mut shutdown = std::pin::pin!(d.shutdown_signal());
    loop {
        // Read every round: a config reload adds and removes credentials. Pasted tokens
        // and agent sessions are never refreshed: nothing to elect.
        let names: Vec<String> = d
            .credentials
            .snapshot()
            .iter()
            .filter(|(_, c)| {
                c.provider().kind != crate::provider::CredentialKind::Paste
                    && !c.config.is_session()
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in &names {
            let (l, n, d2) = (leases.clone(), name.clone(), d.clone());
            let _ = tokio::task::spawn_blocking(move || {
                l.tick(&n, |spend| {
                    tracing::warn!(
                        "credential {n}: the previous HA holder was spending generation {}'s refresh token when it stopped; asking before presenting it again",
                        spend.generation
                    );
                    let intent = crate::agent::credential::intent::Intent {
                        generation: spend.generation,
                        token_id: spend.token_id.clone(),
                        started_at: spend.started_at,
                    };
                    if let Err(e) = d2.intents.begin(&n, &intent) {
                        tracing::error!("credential {n}: cannot record the inherited refresh intent: {e}");
                    }
                })
            })
            .await;
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(period) => {}
        }
    }
    let l = leases.clone();
    let _ = tokio::task::spawn_blocking(move || l.release_all()).await;
}

/// How long a follower waits for the holder's next generation before giving up on a
/// request (the holder's takeover included).
fn follow_wait(leases: &Leases) -> Duration {
    leases.ttl() * 2 + GRACE * 4
}

/// A follower's refresh: the newest generation in the vault (OpenBao has the holder's
/// commits). A token valid for at least a second is served at once; otherwise it waits,
/// re-reading, until the holder commits a fresh one, or this daemon takes the lease
/// (`Ok(None)`: the caller refreshes as the holder).
pub(crate) async fn follow(
    d: &Arc<Daemon>,
    leases: &Leases,
    cred: &Arc<Credential>,
) -> Result<Option<CachedToken>, CheckError> {
    let deadline = Instant::now() + follow_wait(leases);
    loop {
        let n = cred.name.clone();
        let record = d
            .vault_task(
                format!("cannot read credential {} from the vault", cred.name),
                move |v| v.get(&n),
            )
            .await
            .map_err(CheckError::Vault)?;
        let Some(record) = record else {
            return Err(CheckError::NoToken);
        };
        if let Some(t) = CachedToken::from_record(&record, false) {
            if t.fresh_for(Duration::from_secs(1), Utc::now()) {
                cred.set_generation(record.generation);
                return Ok(Some(t));
            }
        }
        if leases.holds(&cred.name).is_some() {
            return Ok(None);
        }
        if Instant::now() >= deadline || d.is_shutting_down() {
            return Err(CheckError::Vault(VaultFailure::plain(format!(
                "this daemon follows the HA lease holder for {} and no fresh access token arrived within {:?} (generation {} is the newest it can read); check the holder's health and OpenBao",
                cred.name,
                follow_wait(leases),
                record.generation
            ))));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// True when a commit was refused because another daemon committed a newer generation.
pub(crate) fn is_stale(e: &CheckError) -> bool {
    matches!(e, CheckError::Superseded(_))
}

/// [`follow`], with the outcome recorded in the credential's state; `None` when this
/// daemon took the lease meanwhile (the caller refreshes as the holder).
pub(crate) async fn follow_recorded(
    d: &Arc<Daemon>,
    leases: &Leases,
    cred: &Arc<Credential>,
) -> Option<Result<CachedToken, CheckError>> {
    match follow(d, leases, cred).await {
        Ok(Some(t)) => {
            cred.set_token(Some(t.clone()));
            d.apply_result(cred, Ok(None));
            Some(Ok(t))
        }
        Ok(None) => None,
        Err(e) => {
            d.apply_result(cred, Err(&e));
            Some(Err(e))
        }
    }
}

/// The holder presents `rt`: first the lease is renewed with the spend recorded in it
/// (nothing is spent when that fails: the daemon follows instead, `Err`), then the
/// provider gets less time than the lease lasts.
pub(crate) async fn spend(
    d: &Arc<Daemon>,
    leases: &Arc<Leases>,
    cred: &Arc<Credential>,
    provider: &crate::provider::Provider,
    record: &crate::vault::Record,
    rt: &crate::secret::RefreshToken,
) -> Result<Result<crate::oauth::TokenSet, crate::oauth::OAuthError>, Result<CachedToken, CheckError>>
{
    let spend = Spend {
        generation: record.generation,
        token_id: crate::vault::history::token_id(rt.secret()),
        started_at: Utc::now(),
    };
    let l = leases.clone();
    let n = cred.name.clone();
    let begun = tokio::task::spawn_blocking(move || l.begin_spend(&n, spend))
        .await
        .unwrap_or(Err(super::leases::SpendRefused::TaskFailed));
    let ttl = match begun {
        Ok(ttl) => ttl,
        Err(why) => {
            // Nothing was presented: the local intent goes, and the daemon serves what the
            // holder commits.
            tracing::warn!(
                "credential {}: not refreshing ({why}); following the HA lease holder",
                cred.name
            );
            let _ = d.intents.clear(&cred.name);
            return Err(match follow_recorded(d, leases, cred).await {
                Some(r) => r,
                None => Err(CheckError::Vault(VaultFailure::plain(format!(
                    "credential {}: the HA lease changed hands during a refresh; retry",
                    cred.name
                )))),
            });
        }
    };
    let budget = ttl
        .saturating_sub(GRACE * 2)
        .max(Duration::from_millis(500));
    match tokio::time::timeout(budget, crate::oauth::refresh(&d.http, provider, &cred.client, rt)).await {
        Ok(r) => Ok(r),
        Err(_) => Ok(Err(crate::oauth::OAuthError {
            provider: provider.name.clone(),
            class: crate::oauth::ErrorClass::TRANSIENT,
            info: crate::protocol::ErrorInfo {
                code: "timeout".into(),
                description: format!(
                    "the provider did not answer within {budget:?}, less than the HA lease lasts; the answer is given up so that no other daemon presents the same refresh token while this one might"
                ),
            },
        })),
    }
}

/// After the spend's answer is committed: the lease records no spend any more.
pub(crate) async fn spent(leases: &Arc<Leases>, name: &str) {
    let l = leases.clone();
    let n = name.to_string();
    let _ = tokio::task::spawn_blocking(move || l.end_spend(&n)).await;
}
