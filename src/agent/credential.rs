//! One managed credential at run time: its resolved provider and client, the single-flight
//! refresh lock, the cached access token, and the state the health report shows.

use super::config::CredentialConfig;
use crate::oauth::ClientCredentials;
use crate::protocol::{
    Cadence, CredentialHealth, CredentialState, ErrorInfo, ProbeHealth, ReauthKind,
};
use crate::provider::{CredentialKind, Provider};
use crate::secret::AccessToken;
use crate::vault::Record;
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// An access token the broker may hand out, with its expiry.
#[derive(Debug, Clone)]
pub struct CachedToken {
    /// The token.
    pub access_token: AccessToken,
    /// Usually `Bearer`.
    pub token_type: String,
    /// When it stops working, if known.
    pub expires_at: Option<DateTime<Utc>>,
}

impl CachedToken {
    /// From a vault record. Paste-kind records carry the pasted secret; it is handed out
    /// as the access token.
    pub fn from_record(r: &Record, paste: bool) -> Option<CachedToken> {
        let token = match (&r.access_token, &r.refresh_token) {
            (Some(a), _) => a.clone(),
            (None, Some(rt)) if paste => AccessToken::new(rt.secret()),
            _ => return None,
        };
        Some(CachedToken {
            access_token: token,
            token_type: r.token_type.clone(),
            expires_at: r.expires_at,
        })
    }

    /// True when the token is valid for at least `margin` more.
    pub fn fresh_for(&self, margin: Duration, now: DateTime<Utc>) -> bool {
        match self.expires_at {
            None => true,
            Some(exp) => {
                let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::zero());
                exp - margin > now
            }
        }
    }
}

/// Why a check or refresh failed, in a form that can be shared by every caller that
/// waited on the same single-flight refresh.
#[derive(Debug, Clone)]
pub enum CheckError {
    /// The provider answered (or could not be reached): classified.
    Provider(crate::oauth::OAuthError),
    /// The vault holds no token for this credential yet.
    NoToken,
    /// The new generation could not be stored anywhere.
    Vault(String),
    /// The daemon is shutting down.
    ShuttingDown,
}

impl CheckError {
    /// The error as shown in health (code and description, never a secret).
    pub fn info(&self) -> ErrorInfo {
        match self {
            CheckError::Provider(e) => e.info.clone(),
            CheckError::NoToken => ErrorInfo {
                code: "no_token".into(),
                description: "no token is stored for this credential yet; re-authorize it".into(),
            },
            CheckError::Vault(m) => ErrorInfo {
                code: "vault_write_failed".into(),
                description: m.clone(),
            },
            CheckError::ShuttingDown => ErrorInfo {
                code: "shutting_down".into(),
                description: "the daemon is shutting down".into(),
            },
        }
    }

    /// True when the grant is gone.
    pub fn is_dead(&self) -> bool {
        matches!(self, CheckError::Provider(e) if e.is_dead())
    }
}

/// Mutable state shown in health.
#[derive(Debug, Clone)]
pub struct Status {
    /// Current state.
    pub state: CredentialState,
    /// When it entered the state.
    pub since: DateTime<Utc>,
    /// Last finished check.
    pub last_check: Option<DateTime<Utc>>,
    /// Last error.
    pub last_error: Option<ErrorInfo>,
    /// Access-token requests refused while dead.
    pub blocked: u64,
    /// Known refresh-token end.
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// Newest vault generation.
    pub generation: u64,
    /// Account label.
    pub account: Option<String>,
    /// Last probe.
    pub last_probe: Option<ProbeHealth>,
    /// Consecutive transient failures (drives the backoff).
    pub failures: u32,
    /// When the last dead/reminder alert went out.
    pub last_alert: Option<DateTime<Utc>>,
}

/// One credential at run time.
pub struct Credential {
    /// Its name.
    pub name: String,
    /// Its config entry.
    pub config: CredentialConfig,
    provider: RwLock<Arc<Provider>>,
    /// Set while a `generic` provider still needs OIDC discovery.
    pub(crate) needs_discovery: std::sync::atomic::AtomicBool,
    /// The OAuth client.
    pub client: ClientCredentials,
    /// Serialises refreshes, exchanges and secret pushes (single flight).
    pub(crate) flight: tokio::sync::Mutex<()>,
    /// Number of finished refresh flights; a waiter that sees it change shares the result.
    pub(crate) flights: AtomicU64,
    /// Result of the newest flight.
    pub(crate) last_flight: Mutex<Option<Result<CachedToken, CheckError>>>,
    /// A rotated record the vault could not store yet (committed before any new refresh).
    pub(crate) pending: Mutex<Option<Record>>,
    /// The access token handed out by the broker.
    pub(crate) token: Mutex<Option<CachedToken>>,
    /// Health.
    pub(crate) status: Mutex<Status>,
    /// Wakes the checker (run a check now, or recompute the schedule).
    pub(crate) wake: tokio::sync::Notify,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// A credential in state `unchecked`, seeded from its newest vault record.
    pub fn new(
        config: CredentialConfig,
        provider: Provider,
        needs_discovery: bool,
        client: ClientCredentials,
        record: Option<&Record>,
    ) -> Credential {
        let now = Utc::now();
        let paste = provider.kind == CredentialKind::Paste;
        let status = Status {
            state: CredentialState::Unchecked,
            since: now,
            last_check: None,
            last_error: record.is_none().then(|| CheckError::NoToken.info()),
            blocked: 0,
            refresh_expires_at: record.and_then(|r| r.refresh_expires_at),
            generation: record.map_or(0, |r| r.generation),
            account: record.and_then(|r| r.account.clone()),
            last_probe: None,
            failures: 0,
            last_alert: None,
        };
        Credential {
            name: config.name.clone(),
            config,
            provider: RwLock::new(Arc::new(provider)),
            needs_discovery: std::sync::atomic::AtomicBool::new(needs_discovery),
            client,
            flight: tokio::sync::Mutex::new(()),
            flights: AtomicU64::new(0),
            last_flight: Mutex::new(None),
            pending: Mutex::new(None),
            token: Mutex::new(record.and_then(|r| CachedToken::from_record(r, paste))),
            status: Mutex::new(status),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// The provider as resolved so far.
    pub fn provider(&self) -> Arc<Provider> {
        // Invariant: the lock only guards an Arc swap.
        self.provider.read().expect("provider lock").clone()
    }

    pub(crate) fn set_provider(&self, p: Provider) {
        *self.provider.write().expect("provider lock") = Arc::new(p);
        self.needs_discovery.store(false, Ordering::SeqCst);
    }

    /// True for paste-kind credentials (Telegram bot token, GitHub PAT).
    pub fn is_paste(&self) -> bool {
        self.provider().kind == CredentialKind::Paste
    }

    /// A copy of the status.
    pub fn status(&self) -> Status {
        self.status.lock().expect("status lock").clone()
    }

    /// The cached access token.
    pub fn cached_token(&self) -> Option<CachedToken> {
        self.token.lock().expect("token lock").clone()
    }

    pub(crate) fn set_token(&self, t: Option<CachedToken>) {
        *self.token.lock().expect("token lock") = t;
    }

    /// The probe interval when the provider has a probe.
    pub fn probe_interval(&self) -> Option<Duration> {
        self.provider()
            .probe
            .as_ref()
            .map(|_| self.config.probe_interval)
    }

    /// Which checks run and the worst-case time from a revocation to `dead`: the longest
    /// jittered interval of the fastest check that sees it, plus one refresh test to confirm.
    pub fn cadence(&self) -> Cadence {
        let probe = self.probe_interval();
        let refresh = self.config.refresh_interval;
        let fastest = probe.unwrap_or(refresh).min(refresh);
        let worst = fastest.as_secs() + fastest.as_secs().div_ceil(10) + 10;
        Cadence {
            probe_interval_secs: probe.map(|p| p.as_secs()),
            refresh_interval_secs: refresh.as_secs(),
            worst_case_detection_secs: worst,
        }
    }

    /// The health entry of this credential.
    pub fn health(&self) -> CredentialHealth {
        let s = self.status();
        let provider = self.provider();
        CredentialHealth {
            name: self.name.clone(),
            provider: provider.name.clone(),
            account: s.account,
            state: s.state,
            since: s.since,
            last_check: s.last_check,
            last_error: s.last_error,
            blocked_requests: s.blocked,
            refresh_expires_at: s.refresh_expires_at,
            reauth: if self.config.client_id.is_none() && provider.kind == CredentialKind::OAuth {
                ReauthKind::None
            } else {
                provider.reauth_kind()
            },
            generation: s.generation,
            cadence: Some(self.cadence()),
            last_probe: s.last_probe,
        }
    }

    /// The state a working credential has: `expiring` inside the warning window.
    pub fn working_state(&self, refresh_expires_at: Option<DateTime<Utc>>) -> CredentialState {
        let window = chrono::Duration::from_std(self.config.warning_window)
            .unwrap_or(chrono::Duration::days(14));
        match refresh_expires_at {
            Some(end) if end - Utc::now() <= window => CredentialState::Expiring,
            _ => CredentialState::Ok,
        }
    }
}
