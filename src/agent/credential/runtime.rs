//! One managed credential at run time: its resolved provider and client, the single-flight
//! refresh lock, the cached access token, and the state the health report shows.

use crate::agent::config::CredentialConfig;
use crate::agent::credential::schedule::{refresh_ahead, Schedule, ScheduleConfig, TokenLife};
use crate::agent::error::CheckError;
use crate::oauth::ClientCredentials;
use crate::protocol::{
    Cadence, CredentialHealth, CredentialState, ErrorInfo, ProbeHealth, ReauthKind,
};
use crate::provider::{CredentialKind, Provider};
use crate::secret::AccessToken;
use crate::vault::Record;
use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
    /// Its whole lifetime from issue, when known (clamps the refresh-ahead margin).
    pub lifetime: Option<Duration>,
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
            lifetime: r.expires_at.and_then(|e| (e - r.obtained_at).to_std().ok()),
        })
    }

    /// A token obtained now that ends at `expires_at`.
    pub fn obtained_now(
        access_token: AccessToken,
        token_type: String,
        expires_at: Option<DateTime<Utc>>,
    ) -> CachedToken {
        CachedToken {
            access_token,
            token_type,
            lifetime: expires_at.and_then(|e| (e - Utc::now()).to_std().ok()),
            expires_at,
        }
    }

    /// The token as the schedule sees it: its expiry moved onto the monotonic clock
    /// (`now` and `wall` are the same moment on both clocks).
    pub fn life(&self, now: tokio::time::Instant, wall: DateTime<Utc>) -> TokenLife {
        let expires_at = self.expires_at.map(|e| match (e - wall).to_std() {
            Ok(ahead) => now + ahead,
            // Already expired: as far back as the monotonic clock allows.
            Err(_) => now
                .checked_sub((wall - e).to_std().unwrap_or_default())
                .unwrap_or(now),
        });
        TokenLife {
            expires_at,
            lifetime: self.lifetime,
        }
    }

    /// True when the broker may hand it out: valid for the refresh-ahead margin, clamped to
    /// half its lifetime (the same rule the schedule follows).
    pub fn fresh_for_broker(&self, configured_ahead: Duration, now: DateTime<Utc>) -> bool {
        self.fresh_for(refresh_ahead(configured_ahead, self.lifetime), now)
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

/// Forced checks of one credential (`POST .../check`) closer than this share the last one.
pub const CHECK_NOW_MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

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
    /// Why the probe in force is not the preset's first (it could not work here).
    pub probe_note: Option<String>,
    /// Probe `gone` answers in a row that a refresh test then contradicted.
    pub unconfirmed_gones: u32,
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
    /// Serialises refreshes, exchanges and secret pushes (single flight). Shared with the
    /// credential that replaces this one on a config reload, so the two never spend one
    /// refresh token concurrently.
    pub(crate) flight: Arc<tokio::sync::Mutex<()>>,
    /// Number of finished refresh flights; a waiter that sees it change shares the result.
    pub(crate) flights: AtomicU64,
    /// Result of the newest flight.
    pub(crate) last_flight: Mutex<Option<Result<CachedToken, CheckError>>>,
    /// A rotated record the vault could not store yet (committed before any new refresh).
    pub(crate) pending: Mutex<Option<Record>>,
    /// The access token handed out by the broker.
    pub(crate) token: Mutex<Option<CachedToken>>,
    /// Health.
    pub(in crate::agent::credential) status: Mutex<Status>,
    /// Wakes the checker (run a check now, or recompute the schedule).
    pub(crate) wake: tokio::sync::Notify,
    /// Wakes the `on_change` hook: a new generation is committed, or the state changed.
    pub(crate) changed: tokio::sync::Notify,
    /// The hook's last run.
    pub(in crate::agent::credential) hook: Mutex<Option<crate::protocol::HookHealth>>,
    /// When the agent's last `rejected` report started a confirming refresh (rate limit).
    pub(crate) last_rejected_refresh: Mutex<Option<std::time::Instant>>,
    /// When a device last forced a check (rate limit).
    last_check_now: Mutex<Option<std::time::Instant>>,
    /// What the agent says a human must do, its pending work, its last session report
    /// (`agent::human::challenge`). When both are needed, `status` is locked first.
    pub(crate) human: Mutex<crate::agent::credential::human_state::HumanState>,
    /// True while a device-code re-authorization polls (`agent::human::device_flow`).
    pub(crate) device_flow: std::sync::atomic::AtomicBool,
    /// Configured scopes the newest grant lacks (`agent::credential::scopes`).
    pub(crate) scope_gap: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// The scopes a grant of this credential asks for: its configured ones, or
    /// `provider`'s defaults.
    pub(crate) fn requested_scopes(&self, provider: &Provider) -> Vec<String> {
        self.config
            .scopes
            .clone()
            .unwrap_or_else(|| provider.default_scopes.clone())
    }

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
            probe_note: None,
            unconfirmed_gones: 0,
        };
        Credential {
            name: config.name.clone(),
            config,
            provider: RwLock::new(Arc::new(provider)),
            needs_discovery: std::sync::atomic::AtomicBool::new(needs_discovery),
            client,
            flight: Arc::new(tokio::sync::Mutex::new(())),
            flights: AtomicU64::new(0),
            last_flight: Mutex::new(None),
            pending: Mutex::new(None),
            token: Mutex::new(record.and_then(|r| CachedToken::from_record(r, paste))),
            status: Mutex::new(status),
            changed: tokio::sync::Notify::new(),
            hook: Mutex::new(None),
            wake: tokio::sync::Notify::new(),
            last_rejected_refresh: Mutex::new(None),
            last_check_now: Mutex::new(None),
            human: Mutex::new(crate::agent::credential::human_state::HumanState::default()),
            device_flow: std::sync::atomic::AtomicBool::new(false),
            scope_gap: Mutex::new(Vec::new()),
        }
    }

    /// Takes over `old`'s run-time state when this credential replaces it on a config
    /// reload: its single-flight lock, the cached access token (when the provider and
    /// client are the same, so the token is still theirs), a rotated record the vault has
    /// not stored yet, and the health state. Call it holding `old`'s flight lock.
    pub(crate) fn take_over(&mut self, old: &Credential) {
        self.flight = old.flight.clone();
        let same_grant = self.config.provider == old.config.provider
            && self.config.issuer == old.config.issuer
            && self.config.overrides == old.config.overrides
            && self.client.client_id == old.client.client_id;
        if same_grant {
            *self.token.get_mut() = old.cached_token();
            let mut status = old.status();
            // The probe in force may differ with new settings; the schedule finds out.
            status.probe_note = None;
            status.unconfirmed_gones = 0;
            *self.status.get_mut() = status;
        }
        let pending = old.pending.lock().clone();
        if pending.is_some() {
            *self.pending.get_mut() = pending;
        }
    }

    /// The provider as resolved so far.
    pub fn provider(&self) -> Arc<Provider> {
        // Invariant: the lock only guards an Arc swap.
        self.provider.read().clone()
    }

    pub(crate) fn set_provider(&self, p: Provider) {
        *self.provider.write() = Arc::new(p);
        self.needs_discovery.store(false, Ordering::SeqCst);
    }

    /// Replaces a probe that cannot work here by the preset's next one (or none), and
    /// records why; returns the note shown in health.
    pub(crate) fn fall_back_probe(&self, why: &str) -> String {
        let mut guard = self.provider.write();
        let mut p = (**guard).clone();
        let old = p.probe.as_ref().map(probe_label).unwrap_or_default();
        let note = match p.fall_back_probe() {
            Some(next) => format!("the {old} probe cannot work here ({why}); probing with {} instead", probe_label(next)),
            None => format!(
                "the {old} probe cannot work here ({why}); checked by refresh tests every {}; set probe_url to another probe",
                crate::duration::format(self.config.refresh_interval)
            ),
        };
        *guard = Arc::new(p);
        drop(guard);
        self.status.lock().probe_note = Some(note.clone());
        note
    }

    /// True (and noted) when no forced check ran within `every`.
    pub(crate) fn check_now_due(&self, every: Duration) -> bool {
        let mut last = self.last_check_now.lock();
        let now = std::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < every) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// The settings that shape this credential's schedule, with the probe now in force.
    pub fn schedule_config(&self) -> ScheduleConfig {
        ScheduleConfig {
            probe_interval: self.probe_interval(),
            refresh_interval: self.config.refresh_interval,
            refresh_ahead: self.config.refresh_ahead,
            keep_fresh: self.config.keep_fresh && !self.is_paste(),
        }
    }

    /// True for paste-kind credentials (Telegram bot token, GitHub PAT).
    pub fn is_paste(&self) -> bool {
        self.provider().kind == CredentialKind::Paste
    }

    /// A copy of the status.
    pub fn status(&self) -> Status {
        self.status.lock().clone()
    }

    /// The cached access token.
    pub fn cached_token(&self) -> Option<CachedToken> {
        self.token.lock().clone()
    }

    pub(crate) fn set_token(&self, t: Option<CachedToken>) {
        *self.token.lock() = t;
    }

    /// The probe interval when the provider has a probe.
    pub fn probe_interval(&self) -> Option<Duration> {
        self.provider()
            .probe
            .as_ref()
            .map(|_| self.config.probe_interval)
    }

    /// Which checks run and the worst-case time from a revocation to `dead`, as the
    /// schedule computes it, with the reason in words.
    pub fn cadence(&self) -> Cadence {
        let cfg = self.schedule_config();
        let token = self.cached_token();
        let lifetime = token.as_ref().and_then(|t| t.lifetime);
        let worst = Schedule::worst_case_detection(&cfg, lifetime);
        let provider = self.provider();
        let probe_note = self.status().probe_note;
        let every = crate::duration::format;
        let refresh_words = format!("refresh tests every {}", every(cfg.refresh_interval));
        let (mode, probe, note) = match (&provider.probe, cfg.probe_interval) {
            (Some(p), Some(i)) => (
                "probe",
                Some(probe_label(p)),
                format!(
                    "{} probe every {}, confirmed by a refresh test; {refresh_words}",
                    probe_label(p),
                    every(i)
                ),
            ),
            _ => {
                let fresh = match (cfg.keep_fresh, lifetime) {
                    (true, Some(l)) => format!(
                        " and ahead of each access token's expiry (every {})",
                        every(l.saturating_sub(refresh_ahead(cfg.refresh_ahead, Some(l))))
                    ),
                    _ => String::new(),
                };
                let why = match probe_note.clone() {
                    Some(n) => n,
                    None if self.is_paste() => "no probe for this token".to_string(),
                    None => "no probe for this provider".to_string(),
                };
                (
                    "refresh_tests",
                    None,
                    format!("{why}: checked by {refresh_words}{fresh}; set probe_url or refresh_interval for faster detection"),
                )
            }
        };
        Cadence {
            probe_interval_secs: cfg.probe_interval.map(|p| p.as_secs()),
            refresh_interval_secs: cfg.refresh_interval.as_secs(),
            worst_case_detection_secs: worst.as_secs_f64().ceil() as u64,
            mode: mode.to_string(),
            probe,
            note: Some(match probe_note {
                Some(n) if mode == "probe" => format!("{note} ({n})"),
                _ => note,
            }),
        }
    }

    /// The health entry of this credential.
    pub fn health(&self) -> CredentialHealth {
        let human = self.human();
        let s = self.status();
        let provider = self.provider();
        let reauth = if self.config.client_id.is_none() && provider.kind == CredentialKind::OAuth {
            ReauthKind::None
        } else {
            provider.reauth_kind()
        };
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
            reauth,
            generation: s.generation,
            cadence: Some(if self.config.is_session() {
                crate::agent::credential::session_rule::cadence(&self.config)
            } else {
                self.cadence()
            }),
            last_probe: s.last_probe,
            ha: None,
            challenge: human.challenge,
            pending: human.pending,
            session: self.config.is_session(),
            device_reauth: reauth == ReauthKind::Oauth
                && provider.device_authorization_url.is_some(),
        }
    }

    pub(crate) fn set_last_probe(&self, result: &str, detail: Option<String>) {
        self.status.lock().last_probe = Some(ProbeHealth {
            at: Utc::now(),
            result: result.to_string(),
            detail,
        });
    }

    /// The cached token as the schedule sees it, now.
    pub fn token_life(&self) -> Option<TokenLife> {
        self.cached_token()
            .map(|t| t.life(tokio::time::Instant::now(), Utc::now()))
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

/// `introspection at https://id.example/token/introspection`, for texts.
fn probe_label(p: &crate::provider::Probe) -> String {
    let method = match p.method {
        crate::provider::ProbeMethod::TokenInfo => "tokeninfo",
        crate::provider::ProbeMethod::Introspection => "introspection",
        crate::provider::ProbeMethod::UserInfo => "userinfo",
        crate::provider::ProbeMethod::BearerGet | crate::provider::ProbeMethod::BearerPost => "API",
        crate::provider::ProbeMethod::SlackAuthTest => "auth.test",
        crate::provider::ProbeMethod::TelegramGetMe => "getMe",
    };
    match p.method {
        // The Telegram probe URL is only the API base; the token goes in the path.
        crate::provider::ProbeMethod::TelegramGetMe => method.to_string(),
        _ => format!(
            "{method} ({}{})",
            p.url.host_str().unwrap_or(""),
            p.url.path()
        ),
    }
}
impl Credential {
    /// A copy of the agent's side of the credential.
    pub fn human(&self) -> super::human_state::HumanState {
        // Invariant: the lock only guards plain data and is never held across an await.
        self.human.lock().clone()
    }

    /// The error a credential shows while its challenge is open.
    pub(crate) fn challenge_error(&self) -> Option<ErrorInfo> {
        let h = self.human.lock();
        h.challenge
            .as_ref()
            .map(|c| super::human_state::human_needed(&c.challenge))
    }

    /// Replaces the pending work when `update` says something about it; true if it changed.
    pub(crate) fn set_pending(&self, update: Option<Option<crate::protocol::PendingWork>>) -> bool {
        let Some(next) = update else { return false };
        let mut h = self.human.lock();
        let changed = h.pending != next;
        h.pending = next;
        changed
    }
}
