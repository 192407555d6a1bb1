//! Config reload without a restart: SIGHUP (`systemctl reload tether-agent`) re-reads
//! agent.toml and applies its credentials and alert channels to the running daemon.
//!
//! What is kept: every connection and event stream, device and agent tokens, re-auth
//! sessions, and each unchanged credential as it is (its cached access token, state and
//! checker). A changed credential (its config entry or its client secret differs) is
//! rebuilt from its vault record, takes over the old one's single-flight lock, cached token
//! and health under that lock (so a refresh in flight finishes first and the two never
//! spend one refresh token twice), and gets a new checker. A removed credential's checker
//! stops; its vault records stay. New credentials start like those read at start.
//! The alert channels are rebuilt from `[alerts]` (their counters start again).
//!
//! Everything is prepared first (secrets read, providers resolved, channels built); any
//! error refuses the whole reload and nothing changes. Settings that shape the server
//! itself (listen address, state directory, TLS, backups, timeouts) need a restart; the
//! report names the ones that changed.

use crate::agent::alerts::{Alerter, AlertsConfig};
use crate::agent::config::vault::vault_config;
use crate::agent::config::AgentConfig;
use crate::agent::credential::runtime::Credential;
use crate::agent::daemon::resolve_credential;
use crate::agent::daemon::Daemon;
use crate::agent::error::DaemonError;
use crate::oauth::ClientCredentials;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What a reload changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// Credentials added.
    pub added: Vec<String>,
    /// Credentials removed (their vault records are kept).
    pub removed: Vec<String>,
    /// Credentials whose settings or client secret changed.
    pub changed: Vec<String>,
    /// Alert channels now in force.
    pub channels: Vec<String>,
    /// Settings that changed in the file but need a restart.
    pub needs_restart: Vec<&'static str>,
}

impl std::fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        write!(
            f,
            "credentials added: {}; removed: {}; changed: {}; alert channels: {}",
            list(&self.added),
            list(&self.removed),
            list(&self.changed),
            list(&self.channels)
        )?;
        if !self.needs_restart.is_empty() {
            write!(
                f,
                "; changed but needing a restart: {}",
                self.needs_restart.join(", ")
            )?;
        }
        Ok(())
    }
}

/// The settings a reload does not apply, that differ between `a` and `b`.
fn needs_restart(a: &AgentConfig, b: &AgentConfig) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut differ = |name, d: bool| {
        if d {
            out.push(name)
        }
    };
    differ("name", a.name != b.name);
    differ("listen", a.listen != b.listen);
    differ("public_url", a.public_url != b.public_url);
    differ("state_dir", a.state_dir != b.state_dir);
    differ("backup_dirs", a.backup_dirs != b.backup_dirs);
    differ("keep", a.keep != b.keep);
    differ("tls", a.tls != b.tls);
    differ("session_ttl", a.session_ttl != b.session_ttl);
    differ(
        "heartbeat_interval",
        a.heartbeat_interval != b.heartbeat_interval,
    );
    differ(
        "vault_check_interval",
        a.vault_check_interval != b.vault_check_interval,
    );
    differ("shutdown_grace", a.shutdown_grace != b.shutdown_grace);
    differ("request_timeout", a.request_timeout != b.request_timeout);
    out
}

fn same_client(a: &ClientCredentials, b: &ClientCredentials) -> bool {
    a.client_id == b.client_id
        && match (&a.client_secret, &b.client_secret) {
            (None, None) => true,
            (Some(x), Some(y)) => {
                crate::secret::constant_time_eq(x.secret().as_bytes(), y.secret().as_bytes())
            }
            _ => false,
        }
}

impl Daemon {
    /// Starts the checker of `cred` and remembers it, so a reload can stop it.
    pub(crate) fn spawn_checker(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
    ) -> tokio::task::JoinHandle<()> {
        // A session credential has no token to check: its task applies the staleness rule.
        let handle = if cred.config.is_session() {
            tokio::spawn(crate::agent::human::session::run(
                self.clone(),
                cred.clone(),
            ))
        } else {
            let (d, c) = (self.clone(), cred.clone());
            tokio::spawn(async move {
                // The hook task lives as long as the checker: a reload that stops one
                // stops both.
                tokio::join!(
                    crate::agent::keep_alive::checker::run(d.clone(), c.clone()),
                    crate::agent::keep_alive::on_change::run(d, c),
                );
            })
        };
        let old = self
            .checkers
            .tasks
            .lock()
            .insert(cred.name.clone(), handle.abort_handle());
        if let Some(old) = old {
            old.abort();
        }
        handle
    }

    /// Applies `new`'s credentials and alert channels (see the module doc). On an error
    /// nothing has changed.
    pub async fn reload(self: &Arc<Self>, new: AgentConfig) -> Result<ReloadReport, DaemonError> {
        new.validate()?;
        let _one = self.checkers.one_at_a_time.lock().await;
        let mut report = ReloadReport {
            needs_restart: needs_restart(&self.config, &new),
            ..ReloadReport::default()
        };

        // Prepare everything before changing anything.
        let alerts_cfg = AlertsConfig::from_table(new.alerts.as_ref())?;
        let alerter = Alerter::new(&alerts_cfg, self.http.clone())?;
        report.channels = alerts_cfg
            .channels
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let current = self.credentials.snapshot();
        let mut clients = BTreeMap::new();
        let mut fresh = Vec::new();
        for c in &new.credentials {
            let (client, provider, needs) = resolve_credential(&self.http, c).await?;
            let old = current.get(&c.name);
            clients.insert(c.name.clone(), client.clone());
            if old.is_some_and(|o| o.config == *c && same_client(&o.client, &client)) {
                continue;
            }
            let v = self.vault.clone();
            let name = c.name.clone();
            let record = tokio::task::spawn_blocking(move || v.get(&name))
                .await
                .expect("vault read task does not panic")?;
            match old {
                Some(_) => report.changed.push(c.name.clone()),
                None => report.added.push(c.name.clone()),
            }
            let cred = Credential::new(c.clone(), provider, needs, client, record.as_ref());
            fresh.push((cred, old.cloned()));
        }
        report.removed = current
            .keys()
            .filter(|n| new.credential(n).is_none())
            .cloned()
            .collect();

        // Apply. A changed credential takes over under the old one's flight lock: a
        // refresh in flight finishes (and is stored) before the swap.
        let mut map = (*current).clone();
        let mut held = Vec::new();
        let mut started = Vec::new();
        for (mut cred, old) in fresh {
            if let Some(old) = &old {
                held.push(old.flight.clone().lock_owned().await);
                cred.take_over(old);
            }
            let cred = Arc::new(cred);
            map.insert(cred.name.clone(), cred.clone());
            started.push(cred);
        }
        for name in &report.removed {
            map.remove(name);
        }
        let outputs_before: Vec<_> = self
            .vault
            .outputs()
            .into_iter()
            .map(|o| (o.credential, o.path))
            .collect();
        let outputs = vault_config(&new, &clients).outputs;
        let outputs_moved = outputs_before
            != outputs
                .iter()
                .map(|o| (o.credential.clone(), o.path.clone()))
                .collect::<Vec<_>>();
        self.credentials.replace(map);
        drop(held);
        {
            let mut checkers = self.checkers.tasks.lock();
            for name in report.removed.iter().chain(&report.changed) {
                if let Some(h) = checkers.remove(name) {
                    h.abort();
                }
            }
        }
        if !self.is_shutting_down() {
            for cred in &started {
                self.spawn_checker(cred);
            }
        }
        *self.alerter.write() = (!alerter.is_empty()).then(|| Arc::new(alerter));
        let v = self.vault.clone();
        match tokio::task::spawn_blocking(move || v.set_outputs(outputs))
            .await
            .expect("vault output task does not panic")
        {
            Ok(_) => {}
            Err(e) => tracing::warn!("after the reload, some output files failed to render: {e}"),
        }
        if outputs_moved {
            // The file watch re-arms for the new directories (and checks the outputs).
            self.outputs_rearm.notify_one();
        }
        Ok(report)
    }
}

/// Re-reads `path` on every SIGHUP until shutdown and applies it (see [`Daemon::reload`]);
/// a file that does not parse or cannot be applied is logged and changes nothing.
/// `hangup` is made by the caller before the daemon starts, so an early SIGHUP is never
/// the default action (exit).
pub async fn reload_on_sighup(
    daemon: Arc<Daemon>,
    path: PathBuf,
    mut hangup: tokio::signal::unix::Signal,
) {
    let mut shutdown = std::pin::pin!(daemon.shutdown_signal());
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            got = hangup.recv() => if got.is_none() { return },
        }
        let cfg = match crate::agent::config::parse(&path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(
                    "reload refused, nothing changed: {}; fix the file and reload again",
                    crate::report::chain(&e)
                );
                continue;
            }
        };
        match daemon.reload(cfg).await {
            Ok(report) => tracing::info!("reloaded {}: {report}", path.display()),
            Err(e) => tracing::error!(
                "reload of {} refused, nothing changed: {}; fix the file and reload again",
                path.display(),
                crate::report::chain(&e)
            ),
        }
    }
}
