//! The daemon's coordinator: the shared state, built from the config, with the accessors
//! the CLI, the demo and the HTTP layer need, the shutdown signal, and the health report.
//! The operations live beside it, one concept per file: [`crate::agent::keep_alive::refresh`] (refresh and
//! commit), [`crate::agent::keep_alive::probe`] (checks and probes), [`crate::agent::keep_alive::apply`] (state changes, events,
//! alerts), [`crate::agent::keep_alive::broker`] (access tokens), [`crate::agent::human::reauthorize`] (re-authorization and
//! paste), [`crate::agent::vault_watch::cadence`] (the vault's cadence). It takes its I/O (HTTP client,
//! paths) from the caller.

use crate::agent::access::auth::AuthStore;
use crate::agent::access::reauth_sessions::Sessions;
use crate::agent::access::tls::TlsIdentity;
use crate::agent::alerts::{Alerter, AlertsConfig};
use crate::agent::config::vault::vault_config;
use crate::agent::config::AgentConfig;
use crate::agent::credential::runtime::Credential;
use crate::agent::error::{DaemonError, OpError};
use crate::agent::metrics::Metrics;
use crate::oauth::ClientCredentials;
use crate::protocol::{Event, HealthReport, LocationHealth, PROTOCOL_VERSION};
use crate::vault::Vault;
use chrono::Utc;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

// Kept importable from here: operators' commands and tests name them by this path.

/// The daemon: config, vault, token store, credentials, events, metrics and alerts.
pub struct Daemon {
    /// The config it was built from. A reload (`agent::reload`) changes the credentials
    /// and the alerter, not this copy: its other settings need a restart.
    pub(in crate::agent) config: AgentConfig,
    /// HTTP client for providers.
    pub(in crate::agent) http: reqwest::Client,
    /// The vault.
    pub(in crate::agent) vault: Arc<Vault>,
    /// Devices and agent tokens.
    pub(in crate::agent) auth: AuthStore,
    /// TLS identity, when TLS is on.
    pub(in crate::agent) tls: Option<TlsIdentity>,
    /// Whether the identity was made by this start.
    pub(in crate::agent) tls_created: bool,
    /// Credentials by name (swapped whole on a reload).
    pub(in crate::agent) credentials: crate::agent::credential::set::CredentialSet,
    /// State-change events.
    pub(in crate::agent) events: broadcast::Sender<Event>,
    /// Counters.
    pub(in crate::agent) metrics: Metrics,
    /// Alert channels (swapped on a reload); see [`Daemon::alerter`].
    pub(in crate::agent) alerter: parking_lot::RwLock<Option<Arc<Alerter>>>,
    /// Re-auth sessions.
    pub(in crate::agent) sessions: Sessions,
    /// Reminder interval while dead.
    pub(in crate::agent) reminder_interval: std::time::Duration,
    /// Flap damping of credential alerts (`alerts::damper`).
    pub(in crate::agent) damper:
        Mutex<crate::agent::alerts::damper::Damper<crate::agent::alerts::Alert>>,
    pub(in crate::agent) locations: Mutex<Vec<LocationHealth>>,
    pub(in crate::agent) repaired: Mutex<Vec<String>>,
    /// Open connections and their caps.
    pub(in crate::agent) connections: Arc<crate::agent::access::conn_limit::Limiter>,
    /// True while every output directory is watched, itself or through an ancestor
    /// (`file_watch`): probes then skip their own output check.
    pub(in crate::agent) outputs_watched: std::sync::atomic::AtomicBool,
    /// Tells `file_watch` that the outputs changed (a reload): it re-arms its watches.
    pub(in crate::agent) outputs_rearm: tokio::sync::Notify,
    /// True once every vault location is watched (`file_watch`): the periodic vault check
    /// then looks at free space only, with a full stamp check every few rounds.
    pub(in crate::agent) vault_watched: std::sync::atomic::AtomicBool,
    /// When the owner last heard about a wipe of each output file.
    pub(in crate::agent) wipe_notices:
        Mutex<std::collections::HashMap<std::path::PathBuf, std::time::Instant>>,
    /// Outstanding refreshes (durable notes, so a cut rotation is never replayed blindly).
    pub(in crate::agent) intents: crate::agent::credential::intent::Intents,
    /// The vault's health as the owner hears it (see [`crate::agent::vault_watch::cadence`]).
    pub(in crate::agent) vault_watch: crate::agent::vault_watch::state::VaultWatch,
    /// With `ha = true` on an OpenBao location: the per-credential leases (see
    /// [`crate::agent::lease::leases`]).
    pub(in crate::agent) lease: Option<Arc<crate::agent::lease::leases::Leases>>,
    /// Held (shared) by every job that may write the vault; shutdown takes it exclusively
    /// so in-flight commits finish before the process exits.
    pub(in crate::agent) writes: tokio::sync::RwLock<()>,
    pub(in crate::agent) shutdown_tx: watch::Sender<bool>,
    /// The checker task of each credential, and config reloads one at a time.
    pub(in crate::agent) checkers: crate::agent::keep_alive::registry::CheckerRegistry,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("agent", &self.config.name)
            .field("credentials", &self.credentials.names())
            .finish_non_exhaustive()
    }
}

/// Reads a credential's client secret and resolves its provider (OIDC discovery for an
/// `issuer`; one that cannot be reached now is retried by the checker): what
/// [`Credential::new`] needs besides the vault record. Used at start and on reload.
pub(crate) async fn resolve_credential(
    http: &reqwest::Client,
    c: &crate::agent::config::CredentialConfig,
) -> Result<(ClientCredentials, crate::provider::Provider, bool), DaemonError> {
    let secret = c.client_secret()?;
    let public_client = secret.is_none();
    let client = ClientCredentials {
        client_id: c.client_id.clone().unwrap_or_default(),
        client_secret: secret,
    };
    let (mut p, mut needs) = c.base_provider().map_err(|source| DaemonError::Provider {
        credential: c.name.clone(),
        source,
    })?;
    if let Some(issuer) = &c.issuer {
        match c.discover_provider(http, issuer, public_client).await {
            Ok(d) => {
                p = d;
                needs = false;
            }
            Err(e) => tracing::warn!(
                "credential {}: {}; retrying at the next check",
                c.name,
                crate::report::chain(&e)
            ),
        }
    }
    Ok((client, p, needs))
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
            crate::agent::access::auth::AuthError::Io {
                path: config.state_dir.clone(),
                source,
            }
        })?;
        let mut clients = BTreeMap::new();
        let mut providers = BTreeMap::new();
        for c in &config.credentials {
            let (client, p, needs) = resolve_credential(&http, c).await?;
            clients.insert(c.name.clone(), client);
            providers.insert(c.name.clone(), (p, needs));
        }

        let vc = vault_config(&config, &clients);
        let (vault, report) = tokio::task::spawn_blocking(move || Vault::open(vc))
            .await
            .expect("vault open task does not panic")?;
        let vault = Arc::new(vault);
        let lease = crate::agent::lease::leases::for_vault(&vault, &config.name);
        let auth = AuthStore::open(&config.state_dir)?;
        auth.prune_pairings();
        let intents = crate::agent::credential::intent::Intents::open(&config.state_dir).map_err(
            |source| DaemonError::StateDir {
                path: config
                    .state_dir
                    .join(crate::agent::credential::intent::INTENTS_DIR),
                source,
            },
        )?;
        let (tls, tls_created) = if config.tls.enabled {
            let (id, created) =
                crate::agent::access::tls::load_or_create(&config.state_dir, &config.tls.names)?;
            (Some(id), created)
        } else {
            (None, false)
        };
        let alerts_cfg = AlertsConfig::from_table(config.alerts.as_ref())?;
        let reminder_interval = alerts_cfg.reminder_interval;
        let alerter = Alerter::new(&alerts_cfg, http.clone())?;
        let alerter = (!alerter.is_empty()).then(|| Arc::new(alerter));

        let mut credentials = crate::agent::credential::set::CredentialMap::new();
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
        let vault_watch =
            crate::agent::vault_watch::state::VaultWatch::new(&locations, &repairs_at_open);
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
            credentials: crate::agent::credential::set::CredentialSet::new(credentials),
            events,
            metrics: Metrics::default(),
            alerter: parking_lot::RwLock::new(alerter),
            reminder_interval,
            damper: Mutex::new(Default::default()),
            locations: Mutex::new(locations),
            repaired: Mutex::new(report.lines()),
            intents,
            wipe_notices: Mutex::new(std::collections::HashMap::new()),
            connections: Arc::default(),
            outputs_watched: std::sync::atomic::AtomicBool::new(false),
            outputs_rearm: tokio::sync::Notify::new(),
            vault_watched: std::sync::atomic::AtomicBool::new(false),
            vault_watch,
            lease,
            writes: tokio::sync::RwLock::new(()),
            shutdown_tx,
            checkers: Default::default(),
        }))
    }

    /// The agent's name.
    pub fn agent(&self) -> &str {
        &self.config.name
    }

    /// The credential called `name`.
    pub fn credential(&self, name: &str) -> Result<Arc<Credential>, OpError> {
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
            credentials: self
                .credentials
                .snapshot()
                .values()
                .map(|c| self.health_of(c))
                .collect(),
            locations: self.locations.lock().clone(),
            alerts: self.alerter().map(|a| a.health()).unwrap_or_default(),
            repaired: self.repaired.lock().clone(),
            vault: Some(self.vault_watch.health()),
            on_change: self
                .credentials
                .snapshot()
                .values()
                .filter_map(|c| c.hook_result())
                .collect(),
        }
    }

    /// One credential's health, with its HA lease when it has one (a pasted credential
    /// is never refreshed, so it has no lease).
    fn health_of(&self, c: &Credential) -> crate::protocol::CredentialHealth {
        let mut h = c.health();
        let paste = c.provider().kind == crate::provider::CredentialKind::Paste;
        if let Some(leases) = self.lease.as_ref().filter(|_| !paste) {
            h.ha = Some(Box::new(leases.ha_health(&h.name)));
        }
        h
    }

    /// Runs a blocking vault operation on the blocking pool. `what` says what it was for
    /// ("read credential youtube from the vault"); the vault's error is kept as the cause.
    pub(crate) async fn vault_task<T: Send + 'static>(
        &self,
        what: impl Into<String>,
        job: impl FnOnce(&Vault) -> Result<T, crate::vault::VaultError> + Send + 'static,
    ) -> Result<T, crate::agent::error::VaultFailure> {
        let what = what.into();
        let vault = self.vault.clone();
        match tokio::task::spawn_blocking(move || job(&vault)).await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => Err(crate::agent::error::VaultFailure {
                what,
                source: Some(Arc::new(e)),
            }),
            Err(e) => Err(crate::agent::error::VaultFailure::plain(format!(
                "{what}: the task stopped ({e}); this is a bug, please report it with the log"
            ))),
        }
    }

    pub(crate) fn add_repaired(&self, lines: impl IntoIterator<Item = String>) {
        let lines: Vec<String> = lines.into_iter().collect();
        self.vault_watch.repaired(&lines);
        let mut r = self.repaired.lock();
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
        *self.locations.lock() = locations;
    }
}

impl Daemon {
    /// The config it was built from.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The TLS identity, when TLS is on.
    pub fn tls(&self) -> Option<&TlsIdentity> {
        self.tls.as_ref()
    }

    /// True when this start made the TLS identity (the owner should hear its fingerprint).
    pub fn tls_created(&self) -> bool {
        self.tls_created
    }

    /// True when at least one alert channel is configured.
    pub fn has_alert_channels(&self) -> bool {
        self.alerter().is_some()
    }

    /// The alert channels in force, if any.
    pub fn alerter(&self) -> Option<Arc<Alerter>> {
        // Invariant: the lock only guards an Arc swap.
        self.alerter.read().clone()
    }

    /// Devices, agent tokens and pairing secrets (pairing codes last
    /// [`PAIRING_TTL`](crate::agent::access::auth::PAIRING_TTL)).
    pub fn auth(&self) -> &AuthStore {
        &self.auth
    }
}
