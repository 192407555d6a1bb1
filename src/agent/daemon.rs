//! The daemon's shared state and its operations: building it from the config, the
//! single-flight refresh, probes, state transitions with events and alerts, re-auth
//! completion, secret pushes and the health report. The HTTP layer (`api`) and the
//! checker call into it; it takes its I/O (HTTP client, paths) from the caller.

use super::alerts::{Alert, AlertKind, Alerter, AlertsConfig};
use super::auth::AuthStore;
use super::config::{AgentConfig, CredentialConfig, OutputKind};
use super::credential::{CachedToken, CheckError, Credential};
use super::metrics::Metrics;
use super::reauth::{SessionError, Sessions};
use super::tls::TlsIdentity;
use crate::oauth::{self, ClientCredentials, ErrorClass, OAuthError, ProbeOutcome};
use crate::protocol::{
    CredentialHealth, CredentialState, ErrorInfo, Event, HealthReport, LocationHealth, ReauthStart,
    RedirectPort, RedirectRequirement, PROTOCOL_VERSION,
};
use crate::provider::{self, CredentialKind, Provider, ProviderOverrides};
use crate::secret::{constant_time_eq, AccessToken, AuthorizationCode, RefreshToken};
use crate::vault::{OutputFormat, OutputSpec, Record, Vault, VaultConfig};
use chrono::Utc;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, watch};

/// Directory of the primary vault location inside the state directory.
pub const VAULT_DIR: &str = "vault";

/// The owner hears about a wiped output file at most this often (per file).
pub const WIPE_NOTICE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Reports of a refused access token within this long of the last confirming refresh share
/// its result instead of spending the refresh token again.
pub const REJECTED_MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the daemon could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The config is not usable.
    #[error(transparent)]
    Config(#[from] super::config::ConfigError),
    /// The TLS identity could not be loaded or made.
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
    /// The token store could not be opened.
    #[error(transparent)]
    Auth(#[from] super::auth::AuthError),
    /// The vault could not be opened.
    #[error("failed to open the vault")]
    Vault(#[from] crate::vault::VaultError),
    /// A credential's provider is not usable.
    #[error("credential {credential}: {source}")]
    Provider {
        /// The credential.
        credential: String,
        /// The cause.
        #[source]
        source: provider::ProviderError,
    },
    /// The `[alerts]` section is not usable.
    #[error("the [alerts] section is not valid")]
    Alerts(#[from] super::alerts::AlertsConfigError),
    /// A directory in the state directory cannot be made.
    #[error("cannot create {path}; check the permissions of the state directory")]
    StateDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The `[alerts]` section does not parse.
    #[error("the [alerts] section is not valid: {0}")]
    AlertsParse(String),
}

/// Why an API operation failed; the HTTP layer maps each to a status and `ApiError`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// No credential of that name.
    #[error("credential {0} is not configured on this agent")]
    UnknownCredential(String),
    /// The credential is dead; the request was refused and counted.
    #[error("credential {name} on agent {agent} is dead ({error}); run `tether reauth {agent}/{name}`", error = ErrorInfo { code: code.clone(), description: description.clone() })]
    Dead {
        /// Agent name.
        agent: String,
        /// Credential.
        name: String,
        /// Error code.
        code: String,
        /// Description.
        description: String,
    },
    /// No token stored yet.
    #[error(
        "credential {name} on agent {agent} has no token yet; run `tether reauth {agent}/{name}`"
    )]
    NoToken {
        /// Agent name.
        agent: String,
        /// Credential.
        name: String,
    },
    /// The provider refused or failed.
    #[error("credential {name}: {source}")]
    Provider {
        /// Credential.
        name: String,
        /// The classified error.
        source: OAuthError,
    },
    /// The vault could not store the result.
    #[error("credential {name}: {message}")]
    Vault {
        /// Credential.
        name: String,
        /// What failed.
        message: String,
    },
    /// A re-auth session problem.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The operation does not fit the credential's kind.
    #[error("credential {name}: {message}")]
    WrongKind {
        /// Credential.
        name: String,
        /// What to do instead.
        message: String,
    },
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The daemon is shutting down.
    #[error("the daemon is shutting down; retry in a moment")]
    ShuttingDown,
}

/// The daemon: config, vault, token store, credentials, events, metrics and alerts.
pub struct Daemon {
    /// The config it was built from.
    pub config: AgentConfig,
    /// HTTP client for providers.
    pub http: reqwest::Client,
    /// The vault.
    pub vault: Arc<Vault>,
    /// Devices and agent tokens.
    pub auth: AuthStore,
    /// TLS identity, when TLS is on.
    pub tls: Option<TlsIdentity>,
    /// Whether the identity was made by this start.
    pub tls_created: bool,
    /// Credentials by name.
    pub credentials: BTreeMap<String, Arc<Credential>>,
    /// State-change events.
    pub events: broadcast::Sender<Event>,
    /// Counters.
    pub metrics: Metrics,
    /// Alert channels.
    pub alerter: Option<Alerter>,
    /// Re-auth sessions.
    pub sessions: Sessions,
    /// Reminder interval while dead.
    pub reminder_interval: std::time::Duration,
    locations: Mutex<Vec<LocationHealth>>,
    repaired: Mutex<Vec<String>>,
    /// Open connections and their caps.
    pub connections: Arc<super::conn_limit::Limiter>,
    /// True once every output directory is watched (`file_watch`): probes then skip their
    /// own output check.
    pub(crate) outputs_watched: std::sync::atomic::AtomicBool,
    /// True once every vault location is watched (`file_watch`): the periodic vault check
    /// then looks at free space only, with a full stamp check every few rounds.
    pub(crate) vault_watched: std::sync::atomic::AtomicBool,
    /// When the owner last heard about a wipe of each output file.
    wipe_notices: Mutex<std::collections::HashMap<std::path::PathBuf, std::time::Instant>>,
    /// Outstanding refreshes (durable notes, so a cut rotation is never replayed blindly).
    pub(crate) intents: super::intent::Intents,
    /// The vault's health as the owner hears it (see [`super::vault_watch`]).
    pub(crate) vault_watch: super::vault_watch::VaultWatch,
    /// Held (shared) by every job that may write the vault; shutdown takes it exclusively
    /// so in-flight commits finish before the process exits.
    pub(crate) writes: tokio::sync::RwLock<()>,
    shutdown_tx: watch::Sender<bool>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("agent", &self.config.name)
            .field("credentials", &self.credentials.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The vault an agent config describes (locations and outputs), for operators' commands
/// (`tether vault ... --config agent.toml`) that must see the same vault as the daemon.
pub fn vault_config_for(cfg: &AgentConfig) -> Result<VaultConfig, super::config::ConfigError> {
    let mut clients = BTreeMap::new();
    for c in &cfg.credentials {
        clients.insert(
            c.name.clone(),
            ClientCredentials {
                client_id: c.client_id.clone().unwrap_or_default(),
                client_secret: c.client_secret()?,
            },
        );
    }
    Ok(vault_config(cfg, &clients))
}

fn vault_config(cfg: &AgentConfig, clients: &BTreeMap<String, ClientCredentials>) -> VaultConfig {
    let mut vc = VaultConfig::new(cfg.state_dir.join(VAULT_DIR), cfg.backup_dirs.clone());
    vc.keep = cfg.keep;
    for c in &cfg.credentials {
        for o in &c.outputs {
            let format = match o.format {
                OutputKind::AuthorizedUser => {
                    let client = clients.get(&c.name);
                    OutputFormat::AuthorizedUser {
                        client_id: client.map(|c| c.client_id.clone()).unwrap_or_default(),
                        client_secret: client.and_then(|c| c.client_secret.clone()),
                    }
                }
                OutputKind::TokenJson => OutputFormat::TokenJson,
                OutputKind::Env => OutputFormat::Env {
                    access_var: o.access_var.clone(),
                    refresh_var: o.refresh_var.clone(),
                },
            };
            vc.outputs.push(OutputSpec {
                credential: c.name.clone(),
                path: o.path.clone(),
                format,
            });
        }
    }
    vc
}

fn base_provider(c: &CredentialConfig) -> Result<(Provider, bool), DaemonError> {
    if c.is_session() {
        return Ok((super::session::provider(&c.provider), false));
    }
    let err = |source| DaemonError::Provider {
        credential: c.name.clone(),
        source,
    };
    let mut p = provider::preset_or_error(&c.provider).map_err(err)?;
    if let Some(table) = &c.overrides {
        let o: ProviderOverrides = table.clone().try_into().map_err(|e: toml::de::Error| {
            err(provider::ProviderError::InvalidOverride {
                provider: c.provider.clone(),
                field: "overrides",
                reason: e.to_string(),
            })
        })?;
        p.apply(&o).map_err(err)?;
    }
    let needs_discovery = c.issuer.is_some();
    if !needs_discovery {
        p.validate().map_err(err)?;
    }
    Ok((p, needs_discovery))
}

impl Daemon {
    /// Builds the daemon: reads client secrets, resolves providers (OIDC discovery for an
    /// `issuer`; a provider that cannot be reached now is retried by the checker), opens
    /// the vault (reconciling every location), the token store and the TLS identity.
    pub async fn build(
        config: AgentConfig,
        http: reqwest::Client,
    ) -> Result<Arc<Daemon>, DaemonError> {
        config.validate()?;
        crate::files::ensure_private_dir(&config.state_dir).map_err(|source| {
            super::auth::AuthError::Io {
                path: config.state_dir.clone(),
                source,
            }
        })?;
        let mut clients = BTreeMap::new();
        let mut providers = BTreeMap::new();
        for c in &config.credentials {
            let secret = c.client_secret()?;
            let public_client = secret.is_none();
            clients.insert(
                c.name.clone(),
                ClientCredentials {
                    client_id: c.client_id.clone().unwrap_or_default(),
                    client_secret: secret,
                },
            );
            let (mut p, mut needs) = base_provider(c)?;
            if let Some(issuer) = &c.issuer {
                match discover(&http, c, issuer, public_client).await {
                    Ok(d) => {
                        p = d;
                        needs = false;
                    }
                    Err(e) => {
                        tracing::warn!("credential {}: {e}; retrying at the next check", c.name)
                    }
                }
            }
            providers.insert(c.name.clone(), (p, needs));
        }

        let vc = vault_config(&config, &clients);
        let (vault, report) = tokio::task::spawn_blocking(move || Vault::open(vc))
            .await
            .expect("vault open task does not panic")?;
        let vault = Arc::new(vault);
        let auth = AuthStore::open(&config.state_dir)?;
        auth.prune_pairings();
        let intents = super::intent::Intents::open(&config.state_dir).map_err(|source| {
            DaemonError::StateDir {
                path: config.state_dir.join(super::intent::INTENTS_DIR),
                source,
            }
        })?;
        let (tls, tls_created) = if config.tls.enabled {
            let (id, created) = super::tls::load_or_create(&config.state_dir, &config.tls.names)?;
            (Some(id), created)
        } else {
            (None, false)
        };
        let alerts_cfg: AlertsConfig = match &config.alerts {
            Some(t) => t
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| DaemonError::AlertsParse(e.to_string()))?,
            None => AlertsConfig::default(),
        };
        let reminder_interval = alerts_cfg.reminder_interval;
        let alerter = Alerter::new(&alerts_cfg, http.clone())?;
        let alerter = (!alerter.is_empty()).then_some(alerter);

        let mut credentials = BTreeMap::new();
        for c in &config.credentials {
            let v = vault.clone();
            let name = c.name.clone();
            let record = tokio::task::spawn_blocking(move || v.get(&name))
                .await
                .expect("vault read task does not panic");
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("credential {}: cannot read the vault: {e}", c.name);
                    None
                }
            };
            let (p, needs) = providers
                .remove(&c.name)
                .expect("every credential has a provider");
            let client = clients
                .remove(&c.name)
                .expect("every credential has a client");
            credentials.insert(
                c.name.clone(),
                Arc::new(Credential::new(
                    c.clone(),
                    p,
                    needs,
                    client,
                    record.as_ref(),
                )),
            );
        }
        let locations = vault.location_health();
        let repairs_at_open: Vec<String> = report
            .repairs
            .iter()
            .map(|r| r.to_string())
            .chain(report.quarantined.iter().map(|q| q.to_string()))
            .collect();
        let vault_watch = super::vault_watch::VaultWatch::new(&locations, &repairs_at_open);
        let (shutdown_tx, _) = watch::channel(false);
        let (events, _) = broadcast::channel(1024);
        Ok(Arc::new(Daemon {
            sessions: Sessions::new(config.session_ttl),
            config,
            http,
            vault,
            auth,
            tls,
            tls_created,
            credentials,
            events,
            metrics: Metrics::default(),
            alerter,
            reminder_interval,
            locations: Mutex::new(locations),
            repaired: Mutex::new(report.lines()),
            intents,
            wipe_notices: Mutex::new(std::collections::HashMap::new()),
            connections: Arc::default(),
            outputs_watched: std::sync::atomic::AtomicBool::new(false),
            vault_watched: std::sync::atomic::AtomicBool::new(false),
            vault_watch,
            writes: tokio::sync::RwLock::new(()),
            shutdown_tx,
        }))
    }

    /// The agent's name.
    pub fn agent(&self) -> &str {
        &self.config.name
    }

    /// The credential called `name`.
    pub fn credential(&self, name: &str) -> Result<&Arc<Credential>, OpError> {
        self.credentials
            .get(name)
            .ok_or_else(|| OpError::UnknownCredential(name.to_string()))
    }

    /// Starts the shutdown: checkers stop, event streams end.
    pub fn begin_shutdown(&self) {
        self.shutdown_tx.send_replace(true);
    }

    /// True once the shutdown started.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown_tx.borrow()
    }

    /// Resolves when the shutdown starts.
    pub fn shutdown_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown_tx.subscribe();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    }

    /// Waits until every job that may write the vault has finished, and keeps new ones out.
    pub async fn drain_writes(&self) {
        let _exclusive = self.writes.write().await;
        if let Err(e) = self.auth.flush_last_used() {
            tracing::warn!("cannot record device last-use times: {e}");
        }
    }

    /// The health report.
    pub fn health(&self) -> HealthReport {
        HealthReport {
            agent: self.config.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            protocol: PROTOCOL_VERSION,
            credentials: self.credentials.values().map(|c| c.health()).collect(),
            locations: self.locations.lock().expect("locations lock").clone(),
            alerts: self
                .alerter
                .as_ref()
                .map(|a| a.health())
                .unwrap_or_default(),
            repaired: self.repaired.lock().expect("repaired lock").clone(),
            vault: Some(self.vault_watch.health()),
        }
    }

    /// True (and noted) when the owner has not heard about a wipe of `path` in the last
    /// [`WIPE_NOTICE_EVERY`].
    fn wipe_notice_due(&self, path: &std::path::Path) -> bool {
        let mut seen = self.wipe_notices.lock().expect("wipe notices lock");
        let now = std::time::Instant::now();
        match seen.get(path) {
            Some(t) if now.duration_since(*t) < WIPE_NOTICE_EVERY => false,
            _ => {
                seen.insert(path.to_path_buf(), now);
                true
            }
        }
    }

    pub(crate) fn add_repaired(&self, lines: impl IntoIterator<Item = String>) {
        let lines: Vec<String> = lines.into_iter().collect();
        self.vault_watch.repaired(&lines);
        let mut r = self.repaired.lock().expect("repaired lock");
        for l in lines {
            tracing::info!("vault: {l}");
            r.push(format!("{} {l}", Utc::now().format("%Y-%m-%dT%H:%M:%SZ")));
        }
        // Keep the report bounded on a long-running daemon.
        let excess = r.len().saturating_sub(200);
        r.drain(..excess);
    }

    pub(crate) fn refresh_locations(&self) {
        let locations = self.vault.location_health();
        self.vault_watch.observe(&locations);
        *self.locations.lock().expect("locations lock") = locations;
    }

    /// Runs the vault's cheap output check (wiped or corrupt files are re-rendered).
    pub async fn check_outputs(self: &Arc<Self>) {
        let d = self.clone();
        let res = tokio::task::spawn_blocking(move || {
            let r = d.vault.check_outputs();
            d.refresh_locations();
            r
        })
        .await;
        match res {
            Ok(Ok(paths)) if !paths.is_empty() => {
                let at = chrono::Local::now().format("%H:%M");
                let mut news = Vec::new();
                for p in &paths {
                    let line = format!(
                        "{} was wiped or damaged at {at} and restored from the vault",
                        p.display()
                    );
                    // Something on the server keeps wiping it: the owner hears it once an
                    // hour per file, the log every time.
                    if self.wipe_notice_due(p) {
                        news.push(line);
                    } else {
                        tracing::info!("vault: {line}");
                    }
                }
                // One event (and so one notice) per file: an event names one repair.
                for line in news {
                    self.add_repaired([line]);
                }
            }
            Ok(Err(e)) => tracing::warn!("output check failed: {e}"),
            _ => {}
        }
    }

    /// Reconciles every vault location and records what was repaired.
    pub async fn reconcile(self: &Arc<Self>) {
        self.vault_job("reconcile", |v| v.reconcile().map(Some))
            .await;
    }

    // ---- state transitions -------------------------------------------------------------

    /// Records the result of a check or refresh and emits events and alerts.
    pub(crate) fn record(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
        result: Result<Option<chrono::DateTime<Utc>>, &CheckError>,
    ) {
        let (previous, mut health, blocked_before) = {
            let mut s = cred.status.lock().expect("status lock");
            let previous = s.state;
            let now = Utc::now();
            let next = match result {
                Ok(end) => {
                    s.refresh_expires_at = end.or(s.refresh_expires_at);
                    s.last_error = None;
                    s.failures = 0;
                    // An open challenge: only the agent can say its session works again.
                    match cred.challenge_error() {
                        Some(info) => {
                            s.last_error = Some(info);
                            CredentialState::Dead
                        }
                        None => cred.working_state(s.refresh_expires_at),
                    }
                }
                Err(e) => {
                    let was_human_needed = s
                        .last_error
                        .as_ref()
                        .is_some_and(|i| i.code == super::challenge::HUMAN_NEEDED);
                    s.last_error = Some(e.info());
                    if e.is_dead() {
                        CredentialState::Dead
                    } else if matches!(e, CheckError::ShuttingDown) {
                        previous
                    } else if let Some(info) = cred.challenge_error() {
                        // The owner still has to answer the agent's challenge: that stays
                        // the news, whatever else a check met on the way.
                        s.last_error = Some(info);
                        CredentialState::Dead
                    } else if matches!(e, CheckError::NoToken) {
                        // Nothing to check: the owner still has to authorize it once.
                        if previous == CredentialState::Dead {
                            previous
                        } else {
                            CredentialState::Unchecked
                        }
                    } else if previous == CredentialState::Dead && !was_human_needed {
                        // Known dead stays dead until a re-auth or a refresh that works.
                        // (Dead only because of a challenge the agent has since resolved:
                        // the grant was never in doubt, so trouble now is just trouble.)
                        CredentialState::Dead
                    } else {
                        s.failures = s.failures.saturating_add(1);
                        CredentialState::Degraded
                    }
                }
            };
            s.last_check = Some(now);
            if next == previous {
                return;
            }
            s.state = next;
            s.since = now;
            let blocked_before = s.blocked;
            if previous == CredentialState::Dead {
                s.blocked = 0;
            }
            if next == CredentialState::Dead {
                s.last_alert = Some(now);
            }
            drop(s);
            (previous, cred.health(), blocked_before)
        };
        let state = health.state;
        self.metrics.inc(
            "tether_state_changes_total",
            &[("credential", &cred.name), ("state", state.as_str())],
        );
        tracing::info!(
            "credential {}: {} -> {}{}",
            cred.name,
            previous,
            state,
            health
                .last_error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
        let _ = self.events.send(Event::StateChanged {
            agent: self.config.name.clone(),
            previous,
            credential: health.clone(),
        });
        let kind = match (previous, state) {
            (_, CredentialState::Dead) => Some(AlertKind::Dead),
            (_, CredentialState::Expiring) if previous != CredentialState::Dead => {
                Some(AlertKind::Expiring)
            }
            (CredentialState::Dead, CredentialState::Ok | CredentialState::Expiring) => {
                Some(AlertKind::Recovered)
            }
            _ => None,
        };
        if kind == Some(AlertKind::Recovered) {
            // The agent's own stream: resume now, not at the next cron run.
            self.emit_recovered(cred);
        }
        if let Some(kind) = kind {
            if kind == AlertKind::Recovered {
                // The recovery text tells how many requests waited while it was dead.
                health.blocked_requests = blocked_before;
            }
            self.alert(&health, kind);
        }
    }

    /// Sends an alert in the background (channels retry on their own schedule, and a slow
    /// SMTP server must not hold up a check).
    pub(crate) fn alert(self: &Arc<Self>, health: &CredentialHealth, kind: AlertKind) {
        let Some(_) = &self.alerter else { return };
        let alert = Alert {
            agent: self.config.name.clone(),
            credential: health.name.clone(),
            provider: health.provider.clone(),
            kind,
            reauth: health.reauth,
            error: health.last_error.clone(),
            blocked_requests: health.blocked_requests,
            since: health.since,
            refresh_expires_at: health.refresh_expires_at,
            detail: None,
            challenge: health.challenge.as_ref().map(|c| c.challenge.clone()),
            pending: health.pending.clone(),
        };
        let d = self.clone();
        tokio::spawn(async move {
            let Some(alerter) = &d.alerter else { return };
            let report = alerter.send(&alert).await;
            for o in &report.outcomes {
                if let Err(e) = &o.result {
                    tracing::warn!("alert to channel {} failed: {}", o.channel, e.chain());
                }
            }
        });
    }

    /// Sends reminders for credentials that stayed dead for another reminder interval.
    pub(crate) fn send_reminders(self: &Arc<Self>) {
        let interval = chrono::Duration::from_std(self.reminder_interval)
            .unwrap_or(chrono::Duration::hours(6));
        for cred in self.credentials.values() {
            let due = {
                let mut s = cred.status.lock().expect("status lock");
                let due = s.state == CredentialState::Dead
                    && match s.last_alert {
                        None => true,
                        Some(t) => Utc::now() - t >= interval,
                    };
                if due {
                    s.last_alert = Some(Utc::now());
                }
                due
            };
            if due {
                self.alert(&cred.health(), AlertKind::Reminder);
            }
        }
    }

    // ---- refresh (single flight) -------------------------------------------------------

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
            if let Some(r) = cred.last_flight.lock().expect("flight lock").clone() {
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
        *cred.last_flight.lock().expect("flight lock") = Some(result.clone());
        cred.flights.fetch_add(1, Ordering::SeqCst);
        result
    }

    /// Resolves a `generic` provider by discovery if that failed before.
    async fn ensure_provider(&self, cred: &Credential) -> Result<Arc<Provider>, CheckError> {
        if cred.needs_discovery.load(Ordering::SeqCst) {
            let issuer = cred.config.issuer.clone().unwrap_or_default();
            let public = cred.client.client_secret.is_none();
            let p = discover(&self.http, &cred.config, &issuer, public)
                .await
                .map_err(|e| {
                    CheckError::Provider(OAuthError {
                        provider: cred.config.provider.clone(),
                        class: ErrorClass::TRANSIENT,
                        info: ErrorInfo {
                            code: "discovery_failed".into(),
                            description: e,
                        },
                    })
                })?;
            cred.set_provider(p);
        }
        Ok(cred.provider())
    }

    async fn read_record(&self, name: &str) -> Result<Option<Record>, CheckError> {
        let v = self.vault.clone();
        let n = name.to_string();
        tokio::task::spawn_blocking(move || v.get(&n))
            .await
            .map_err(|_| CheckError::Vault("vault read task failed".into()))?
            .map_err(|e| CheckError::Vault(e.to_string()))
    }

    /// Commits `record` to every vault location; the caller holds the credential's flight
    /// lock and a `writes` guard.
    async fn commit(
        self: &Arc<Self>,
        cred: &Credential,
        record: Record,
    ) -> Result<u64, CheckError> {
        let d = self.clone();
        let res = tokio::task::spawn_blocking(move || {
            let r = d.vault.commit(record);
            d.refresh_locations();
            r
        })
        .await
        .map_err(|_| CheckError::Vault("vault commit task failed".into()))?;
        match res {
            Ok(report) => {
                for f in &report.failed {
                    tracing::warn!(
                        "credential {}: vault location {} failed: {}",
                        cred.name,
                        f.location,
                        f.error
                    );
                }
                for e in &report.output_errors {
                    tracing::warn!("credential {}: output: {e}", cred.name);
                }
                self.add_repaired(report.repairs.iter().map(|r| r.to_string()));
                cred.status.lock().expect("status lock").generation = report.generation;
                Ok(report.generation)
            }
            Err(e) => Err(CheckError::Vault(e.to_string())),
        }
    }

    async fn refresh_locked(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
    ) -> Result<CachedToken, CheckError> {
        let name = cred.name.as_str();
        // A rotated generation that could not be stored earlier goes first: its refresh
        // token is the only live one, and spending the old one again would kill the grant.
        let pending = cred.pending.lock().expect("pending lock").take();
        if let Some(rec) = pending {
            let token = CachedToken::from_record(&rec, false);
            let end = rec.refresh_expires_at;
            match self.commit(cred, rec.clone()).await {
                Ok(_) => {
                    self.clear_intent(name);
                    cred.set_token(token.clone());
                    self.record(cred, Ok(end));
                    if let Some(t) = token {
                        return Ok(t);
                    }
                }
                Err(e) => {
                    *cred.pending.lock().expect("pending lock") = Some(rec);
                    self.record(cred, Err(&e));
                    return Err(e);
                }
            }
        }
        let provider = match self.ensure_provider(cred).await {
            Ok(p) => p,
            Err(e) => {
                self.record(cred, Err(&e));
                return Err(e);
            }
        };
        let record = match self.read_record(name).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.record(cred, Err(&CheckError::NoToken));
                return Err(CheckError::NoToken);
            }
            Err(e) => {
                self.record(cred, Err(&e));
                return Err(e);
            }
        };
        if provider.kind == CredentialKind::Paste {
            return self.verify_stored_paste(cred, &provider, &record).await;
        }
        let Some(rt) = record.refresh_token.clone() else {
            self.record(cred, Err(&CheckError::NoToken));
            return Err(CheckError::NoToken);
        };
        // A refresh cut off earlier (crash, lost answer): find out before spending again.
        if let Some(intent) = self.intents.get(name) {
            if let Err(e) = self
                .resolve_interrupted_refresh(cred, &provider, &record, intent)
                .await
            {
                self.record(cred, Err(&e));
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
                    self.record(cred, Err(&e));
                    return Err(e);
                }
            };
            let intent = super::intent::Intent {
                generation: record.generation,
                token_id: crate::vault::history::token_id(rt.secret()),
                started_at: Utc::now(),
            };
            if let Err(e) = self.intents.begin(name, &intent) {
                let e = CheckError::Vault(format!(
                    "cannot record the refresh intent in the state directory ({e}), so the refresh token was not spent; check that the state directory is writable and has space"
                ));
                self.record(cred, Err(&e));
                return Err(e);
            }
        }
        let result = oauth::refresh(&self.http, &provider, &cred.client, &rt).await;
        let ts = match result {
            Ok(ts) => {
                self.metrics.inc(
                    "tether_refreshes_total",
                    &[("credential", name), ("result", "ok")],
                );
                ts
            }
            Err(e) => {
                self.metrics.inc(
                    "tether_refreshes_total",
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
                self.record(cred, Err(&e));
                return Err(e);
            }
        };
        // The room goes back just before the commit that needs it.
        drop(reserved);
        let mut next = record.clone();
        next.access_token = Some(ts.access_token.clone());
        next.refresh_token = ts.refresh_token.clone().or(record.refresh_token.clone());
        next.token_type = ts.token_type.clone();
        if !ts.scopes.is_empty() {
            next.scopes = ts.scopes.clone();
        }
        next.obtained_at = Utc::now();
        next.expires_at = ts.expires_at;
        if ts.refresh_expires_at.is_some() {
            next.refresh_expires_at = ts.refresh_expires_at;
        }
        for (k, v) in &ts.extras {
            next.extras.insert(k.clone(), v.clone());
        }
        let token = CachedToken::obtained_now(ts.access_token, ts.token_type, ts.expires_at);
        match self.commit(cred, next.clone()).await {
            Ok(_) => {
                self.clear_intent(name);
                cred.set_token(Some(token.clone()));
                self.record(cred, Ok(next.refresh_expires_at));
                Ok(token)
            }
            Err(e) => {
                if ts.rotated {
                    // The old refresh token is spent: keep the new one in memory and store
                    // it before anything else happens to this credential.
                    *cred.pending.lock().expect("pending lock") = Some(next);
                } else {
                    // Nothing was lost: the stored refresh token still works. The new access
                    // token may be used.
                    cred.set_token(Some(token.clone()));
                }
                self.record(cred, Err(&e));
                Err(e)
            }
        }
    }

    fn clear_intent(&self, name: &str) {
        if let Err(e) = self.intents.clear(name) {
            // Harmless but noisy: the next refresh will ask the provider first.
            tracing::warn!("credential {name}: cannot remove the refresh intent: {e}");
        }
    }

    /// Room for the next generation in at least one vault location.
    async fn reserve(&self, name: &str) -> Result<crate::vault::Reserved, CheckError> {
        let v = self.vault.clone();
        let n = name.to_string();
        tokio::task::spawn_blocking(move || v.reserve(&n))
            .await
            .map_err(|_| CheckError::Vault("vault reserve task failed".into()))?
            .map_err(|e| CheckError::Vault(e.to_string()))
    }

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
        intent: super::intent::Intent,
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
    async fn may_rotate(&self, provider: &Provider, name: &str) -> bool {
        provider.rotates_refresh_token
            || provider.name == "generic"
            || self.history_rotates(name).await
    }

    /// True when the kept generations of `name` hold different refresh tokens.
    async fn history_rotates(&self, name: &str) -> bool {
        let v = self.vault.clone();
        let n = name.to_string();
        let history = tokio::task::spawn_blocking(move || v.history(&n))
            .await
            .ok()
            .and_then(Result::ok)
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
        let Ok(Some(record)) = self.read_record(&cred.name).await else {
            return;
        };
        if let Err(e) = self
            .resolve_interrupted_refresh(cred, &provider, &record, intent)
            .await
        {
            tracing::warn!("credential {}: {}", cred.name, e.info());
            self.record(cred, Err(&e));
        }
    }

    async fn verify_stored_paste(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
        provider: &Provider,
        record: &Record,
    ) -> Result<CachedToken, CheckError> {
        let Some(token) = CachedToken::from_record(record, true) else {
            self.record(cred, Err(&CheckError::NoToken));
            return Err(CheckError::NoToken);
        };
        match oauth::verify_paste(&self.http, provider, &token.access_token).await {
            Ok(account) => {
                if let Some(a) = account {
                    cred.status.lock().expect("status lock").account = Some(a);
                }
                cred.set_token(Some(token.clone()));
                self.record(cred, Ok(None));
                Ok(token)
            }
            Err(e) => {
                let e = CheckError::Provider(e);
                self.record(cred, Err(&e));
                Err(e)
            }
        }
    }

    /// One full check: a refresh test (or, for paste kinds, a verification), then the
    /// output check.
    pub async fn check(self: &Arc<Self>, cred: &Arc<Credential>) -> Result<(), CheckError> {
        let r = self.refresh(cred, false).await;
        let result = match &r {
            Ok(_) => "ok",
            Err(e) if e.is_dead() => "dead",
            Err(CheckError::Provider(e)) => e.class.as_str(),
            Err(_) => "error",
        };
        self.metrics.inc(
            "tether_checks_total",
            &[
                ("credential", &cred.name),
                ("kind", "refresh"),
                ("result", result),
            ],
        );
        self.check_outputs().await;
        r.map(|_| ())
    }

    /// One liveness probe. `Gone` is only recorded here: the schedule confirms it with one
    /// refresh test ([`Daemon::confirm_gone`]) before anything is called dead. A probe that
    /// cannot work here (`Misconfigured`) is replaced by the preset's next probe, or by
    /// refresh tests, and health says so. Returns `None` when there is no usable access
    /// token to probe with (the schedule then refreshes first).
    pub async fn probe(self: &Arc<Self>, cred: &Arc<Credential>) -> Option<ProbeOutcome> {
        let provider = cred.provider();
        if provider.probe.is_none() {
            return Some(ProbeOutcome::Unsupported);
        }
        let token = cred.cached_token()?;
        if !token.fresh_for(super::schedule::PROBE_MARGIN, Utc::now()) {
            return None;
        }
        let outcome = oauth::probe(&self.http, &provider, &cred.client, &token.access_token).await;
        self.metrics.inc(
            "tether_checks_total",
            &[
                ("credential", &cred.name),
                ("kind", "probe"),
                ("result", outcome.as_str()),
            ],
        );
        let detail = match &outcome {
            ProbeOutcome::Gone(i) | ProbeOutcome::Transient(i) | ProbeOutcome::Misconfigured(i) => {
                Some(i.to_string())
            }
            _ => None,
        };
        let set_probe = |result: &str| cred.set_last_probe(result, detail.clone());
        match &outcome {
            ProbeOutcome::Alive => {
                set_probe("alive");
                cred.status.lock().expect("status lock").unconfirmed_gones = 0;
                let state = cred.status().state;
                if matches!(
                    state,
                    CredentialState::Degraded | CredentialState::Unchecked
                ) {
                    self.record(cred, Ok(None));
                } else {
                    cred.status.lock().expect("status lock").last_check = Some(Utc::now());
                }
            }
            ProbeOutcome::Gone(_) => set_probe("gone (confirming with a refresh test)"),
            ProbeOutcome::Transient(i) => {
                set_probe("transient");
                let e = CheckError::Provider(OAuthError {
                    provider: provider.name.clone(),
                    class: ErrorClass::TRANSIENT,
                    info: i.clone(),
                });
                self.record(cred, Err(&e));
            }
            ProbeOutcome::Misconfigured(i) => {
                set_probe("misconfigured");
                let note = cred.fall_back_probe(&i.to_string());
                tracing::warn!("credential {}: {note}", cred.name);
                // The probe's trouble says nothing about the grant: the state stays what
                // the last check found.
            }
            ProbeOutcome::Unsupported => {}
        }
        // Without the file watch, every probe also looks for wiped or corrupt output files
        // (a read and a compare per file); with it, that would only cost idle CPU.
        if !self.outputs_watched.load(Ordering::Relaxed) {
            self.check_outputs().await;
        }
        Some(outcome)
    }

    /// The refresh test that confirms (or not) a probe's `gone`. A `gone` that refresh
    /// tests contradict twice in a row, each time with a fresh token, means the probe
    /// cannot tell here: it is replaced as a misconfigured one would be. Returns whether the
    /// probe was replaced.
    pub async fn confirm_gone(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
    ) -> (Result<(), CheckError>, bool) {
        let confirmed = self.check(cred).await;
        let detail = cred.status().last_probe.and_then(|p| p.detail);
        let mut replaced = false;
        match &confirmed {
            Err(e) if e.is_dead() => {
                cred.set_last_probe("gone (confirmed by a refresh test)", detail);
            }
            Ok(()) => {
                cred.set_last_probe("gone (not confirmed: the refresh test worked)", detail);
                let n = {
                    let mut s = cred.status.lock().expect("status lock");
                    s.unconfirmed_gones += 1;
                    s.unconfirmed_gones
                };
                if n >= 2 {
                    cred.status.lock().expect("status lock").unconfirmed_gones = 0;
                    let note = cred.fall_back_probe(
                        "it said `gone` twice for grants that refresh tests showed alive",
                    );
                    tracing::warn!("credential {}: {note}", cred.name);
                    replaced = true;
                }
            }
            Err(_) => cred.set_last_probe("gone (refresh test inconclusive)", detail),
        }
        (confirmed, replaced)
    }

    /// The agent's report that the API refused the access token it was given. Drops the
    /// cached token and runs one confirming refresh test at once (single flight: a flood
    /// of reports shares one refresh, and reports within [`REJECTED_MIN_INTERVAL`] of the
    /// last confirming refresh get its result without another). Answers with the
    /// credential's state and, while it is alive, a fresh access token.
    pub async fn rejected(
        self: &Arc<Self>,
        name: &str,
        report: &crate::protocol::RejectedReport,
    ) -> Result<(CredentialHealth, Option<CachedToken>), OpError> {
        let cred = self.credential(name)?.clone();
        self.metrics
            .inc("tether_rejected_reports_total", &[("credential", name)]);
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
            let mut last = cred.last_rejected_refresh.lock().expect("rejected lock");
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

    // ---- broker ------------------------------------------------------------------------

    /// A fresh access token for the user's agent; refreshed ahead of expiry (single flight).
    /// A dead credential refuses, and the refusal is counted.
    pub async fn access_token(self: &Arc<Self>, name: &str) -> Result<CachedToken, OpError> {
        let cred = self.credential(name)?.clone();
        super::session::refuse_token_ops(&cred)?;
        let count = |outcome: &str| {
            self.metrics.inc(
                "tether_access_token_requests_total",
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
            Err(CheckError::NoToken) => {
                count("no_token");
                Err(OpError::NoToken {
                    agent: self.config.name.clone(),
                    name: name.to_string(),
                })
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
                Err(match e {
                    CheckError::Provider(source) => OpError::Provider {
                        name: name.to_string(),
                        source,
                    },
                    CheckError::ShuttingDown => OpError::ShuttingDown,
                    other => OpError::Vault {
                        name: name.to_string(),
                        message: other.info().description,
                    },
                })
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
        let mut s = cred.status.lock().expect("status lock");
        if s.state != CredentialState::Dead {
            return None;
        }
        s.blocked += 1;
        let info = s.last_error.clone().unwrap_or(ErrorInfo {
            code: "dead".into(),
            description: "the grant is gone".into(),
        });
        drop(s);
        Some(self.dead_error(cred, &info))
    }

    // ---- re-authorization --------------------------------------------------------------

    /// Starts a re-auth session: the daemon keeps `state` and the PKCE verifier.
    pub async fn reauth_start(self: &Arc<Self>, name: &str) -> Result<ReauthStart, OpError> {
        let cred = self.credential(name)?.clone();
        super::session::refuse_token_ops(&cred)?;
        let provider = self.ensure_provider(&cred).await.map_err(|e| match e {
            CheckError::Provider(source) => OpError::Provider {
                name: name.to_string(),
                source,
            },
            _ => OpError::ShuttingDown,
        })?;
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
    pub async fn reauth_complete(
        self: &Arc<Self>,
        session_id: &str,
        code: AuthorizationCode,
        state: &str,
        redirect_uri: &str,
    ) -> Result<CredentialHealth, OpError> {
        // Taking the session consumes it: a replay, or a second try after a wrong state,
        // finds nothing.
        let session = self.sessions.take(session_id)?;
        if !constant_time_eq(session.pending.state.as_bytes(), state.as_bytes()) {
            return Err(OpError::Session(SessionError::StateMismatch));
        }
        check_redirect(&session.redirect, redirect_uri).map_err(OpError::BadRequest)?;
        let cred = self.credential(&session.credential)?.clone();
        let d = self.clone();
        let redirect_uri = redirect_uri.to_string();
        // Own task: once the code is spent, the new tokens must reach the vault even if
        // the companion hangs up.
        tokio::spawn(async move { d.complete_locked(&cred, session, code, &redirect_uri).await })
            .await
            .unwrap_or(Err(OpError::ShuttingDown))
    }

    async fn complete_locked(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
        session: super::reauth::Session,
        code: AuthorizationCode,
        redirect_uri: &str,
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
        if ts.refresh_token.is_none() {
            tracing::warn!(
                "credential {name}: the provider issued no refresh token at re-authorization"
            );
        }
        let old = self.read_record(&name).await.ok().flatten();
        let account = match provider.probe {
            Some(_) => {
                match oauth::probe_account(&self.http, &provider, &cred.client, &ts.access_token)
                    .await
                {
                    (ProbeOutcome::Alive, a) => a,
                    _ => None,
                }
            }
            None => None,
        }
        .or_else(|| old.as_ref().and_then(|r| r.account.clone()));
        let mut rec = Record::new(&name, &provider.name);
        rec.account = account.clone();
        rec.access_token = Some(ts.access_token.clone());
        rec.refresh_token = ts.refresh_token.clone();
        rec.token_type = ts.token_type.clone();
        rec.scopes = if ts.scopes.is_empty() {
            cred.config
                .scopes
                .clone()
                .unwrap_or_else(|| provider.default_scopes.clone())
        } else {
            ts.scopes.clone()
        };
        rec.expires_at = ts.expires_at;
        rec.refresh_expires_at = ts.refresh_expires_at;
        rec.extras = ts.extras.clone();
        self.commit(cred, rec).await.map_err(|e| OpError::Vault {
            name: name.clone(),
            message: e.info().description,
        })?;
        let token = CachedToken::obtained_now(ts.access_token, ts.token_type, ts.expires_at);
        cred.set_token(Some(token.clone()));
        *cred.pending.lock().expect("pending lock") = None;
        *cred.last_flight.lock().expect("flight lock") = Some(Ok(token));
        cred.flights.fetch_add(1, Ordering::SeqCst);
        {
            let mut s = cred.status.lock().expect("status lock");
            s.account = account;
            s.refresh_expires_at = ts.refresh_expires_at;
        }
        self.record(cred, Ok(ts.refresh_expires_at));
        cred.wake.notify_one();
        Ok(cred.health())
    }

    /// Stores a pasted secret for a paste-kind credential after the provider accepted it.
    pub async fn put_secret(
        self: &Arc<Self>,
        name: &str,
        secret: AccessToken,
    ) -> Result<CredentialHealth, OpError> {
        let cred = self.credential(name)?.clone();
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
            let mut rec = Record::new(&c.name, &provider.name);
            rec.account = account.clone();
            rec.access_token = Some(secret.clone());
            rec.refresh_token = Some(RefreshToken::new(secret.secret()));
            d.commit(&c, rec).await.map_err(|e| OpError::Vault {
                name: c.name.clone(),
                message: e.info().description,
            })?;
            let token = CachedToken::obtained_now(secret, "Bearer".into(), None);
            c.set_token(Some(token.clone()));
            *c.last_flight.lock().expect("flight lock") = Some(Ok(token));
            c.flights.fetch_add(1, Ordering::SeqCst);
            if account.is_some() {
                c.status.lock().expect("status lock").account = account;
            }
            d.record(&c, Ok(None));
            c.wake.notify_one();
            Ok(c.health())
        })
        .await
        .unwrap_or(Err(OpError::ShuttingDown))
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

/// Checks that the companion's `redirect_uri` fits the provider's rule.
fn check_redirect(req: &RedirectRequirement, redirect_uri: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "redirect_uri {redirect_uri:?} does not fit the provider's rule (http://{}:{}{}): {why}",
            req.host,
            match req.port {
                RedirectPort::Any => "<any port>".to_string(),
                RedirectPort::Fixed(p) => p.to_string(),
            },
            req.path
        ))
    };
    let Ok(u) = url::Url::parse(redirect_uri) else {
        return bad("not a URL");
    };
    if u.scheme() != "http" {
        return bad("the scheme must be http (loopback)");
    }
    let host_ok = match u.host() {
        Some(url::Host::Domain(h)) => h == req.host,
        Some(url::Host::Ipv4(ip)) => ip.to_string() == req.host,
        Some(url::Host::Ipv6(ip)) => ip.to_string() == req.host.trim_matches(['[', ']']),
        None => false,
    };
    if !host_ok {
        return bad("wrong host");
    }
    if u.path() != req.path {
        return bad("wrong path");
    }
    match (req.port, u.port()) {
        (RedirectPort::Fixed(p), Some(q)) if p == q => {}
        (RedirectPort::Any, Some(q)) if q != 0 => {}
        _ => return bad("wrong port"),
    }
    if u.query().is_some() || u.fragment().is_some() {
        return bad("no query or fragment allowed");
    }
    Ok(())
}

async fn discover(
    http: &reqwest::Client,
    c: &CredentialConfig,
    issuer: &str,
    public_client: bool,
) -> Result<Provider, String> {
    let url =
        url::Url::parse(issuer).map_err(|e| format!("issuer {issuer:?} is not a URL: {e}"))?;
    let mut p = provider::discover(http, &url)
        .await
        .map_err(|e| format!("discovery at {issuer} failed: {e}"))?;
    if public_client {
        // Discovery never picks introspection for a client without a secret (RFC 7662
        // needs the caller to authenticate); a probe the owner configures is kept.
        p.for_public_client();
    }
    if let Some(table) = &c.overrides {
        let o: ProviderOverrides = table
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string())?;
        p.apply(&o).map_err(|e| e.to_string())?;
    }
    p.validate().map_err(|e| e.to_string())?;
    Ok(p)
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
        assert!(check_redirect(&any, "http://127.0.0.1:5555/callback").is_ok());
        assert!(check_redirect(&any, "http://127.0.0.1/callback").is_err());
        assert!(check_redirect(&any, "http://evil.example:5555/callback").is_err());
        assert!(check_redirect(&any, "https://127.0.0.1:5555/callback").is_err());
        assert!(check_redirect(&any, "http://127.0.0.1:5555/other").is_err());
        let fixed = RedirectRequirement {
            port: RedirectPort::Fixed(8765),
            ..any
        };
        assert!(check_redirect(&fixed, "http://127.0.0.1:8765/callback").is_ok());
        assert!(check_redirect(&fixed, "http://127.0.0.1:8766/callback").is_err());
    }
}
