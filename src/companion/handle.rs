//! [`Companion`], the handle the CLI and the tray app use: the config, the device-token
//! store, pairing, status, checks, settings, and re-authorization with its one "already
//! running" guard per credential. Starting the watcher (`Companion::watch`) is in
//! `watcher.rs`, which this file does not need.

use super::config::{self, AgentEntry, Config, CONFIG_FILE};
use super::consent;
use super::error::CompanionError;
use super::pair::{self, PairOptions, PairResult, Paired, Replacement, Unpaired};
use super::reauth::{self, Opener, ReauthError, ReauthOptions, ReauthProgress};
use super::secrets::{self, Backend, FallbackNotice, SecretStore};
use super::settings::Settings;
use super::status::{self, StatusReport};
use crate::client::{AgentClient, AgentEndpoint, ContactClass};
use crate::protocol::{CredentialHealth, HealthReport};
use crate::secret::AccessToken;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The companion: config directory, device-token store, and the running re-auths.
/// Its watcher is started by [`Companion::watch`], in `watcher.rs`.
/// Cheap to clone; clones share state (one re-auth per credential across all of them).
#[derive(Clone, Debug)]
pub struct Companion {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    config_path: PathBuf,
    secrets: SecretStore,
    /// The running re-auths, each with the switch that cancels it: the one guard that
    /// keeps a credential to one run at a time, for the CLI, the watcher and the tray.
    /// The switch is taken by the cancel; the entry stays until the run has ended.
    running: Mutex<HashMap<(String, String), Option<CancelSwitch>>>,
}

/// One agent's answer to "check now".
pub type AgentCheck = Result<HealthReport, CompanionError>;

/// Cancels one running re-auth when sent to.
type CancelSwitch = tokio::sync::oneshot::Sender<()>;

/// Removes a credential from the running set when its re-auth ends, however it ends.
struct RunningGuard {
    companion: Companion,
    key: (String, String),
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let mut set = self.companion.inner.running.lock();
        set.remove(&self.key);
    }
}

/// Splits `AGENT/CREDENTIAL`.
pub fn parse_target(target: &str) -> Result<(String, String), CompanionError> {
    match target.split_once('/') {
        Some((a, c)) if !a.is_empty() && crate::protocol::valid_credential_name(c) => {
            Ok((a.to_string(), c.to_string()))
        }
        _ => Err(CompanionError::BadTarget(target.into())),
    }
}

impl Companion {
    /// A companion whose config lives in `dir`, with device tokens in `backend`.
    pub fn open(dir: impl Into<PathBuf>, backend: Backend) -> Companion {
        let dir = dir.into();
        Companion {
            inner: Arc::new(Inner {
                config_path: dir.join(CONFIG_FILE),
                secrets: SecretStore::new(&dir, backend),
                dir,
                running: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The companion for this user: `$TETHER_CONFIG_DIR` or the platform config dir, and
    /// the backend from `$TETHER_SECRETS` (default: keyring with announced fallback).
    pub fn from_env() -> Result<Companion, CompanionError> {
        Ok(Companion::open(config::config_dir()?, Backend::from_env()?))
    }

    /// The config directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The config file.
    pub fn config_path(&self) -> &Path {
        &self.inner.config_path
    }

    /// The device-token store.
    pub fn secrets(&self) -> &SecretStore {
        &self.inner.secrets
    }

    /// The keyring-fallback announcement, once (show it to the owner).
    pub fn take_notice(&self) -> Option<FallbackNotice> {
        self.inner.secrets.take_notice()
    }

    /// Reads the config.
    pub fn config(&self) -> Result<Config, CompanionError> {
        Ok(Config::load(&self.inner.config_path)?)
    }

    /// Writes `cfg` back; the file's comments name the agents whose device token is in the
    /// fallback file rather than the keyring, as the secret store has them now.
    fn save_config(&self, cfg: &Config) -> Result<(), CompanionError> {
        let secrets = &self.inner.secrets;
        cfg.save(
            &self.inner.config_path,
            &secrets.agents_in_file(),
            secrets.file(),
        )?;
        Ok(())
    }

    fn entry(&self, cfg: &Config, agent: &str) -> Result<AgentEntry, CompanionError> {
        cfg.agent(agent)
            .cloned()
            .ok_or_else(|| pair::unknown_agent(cfg, agent))
    }

    pub(super) fn client_for(&self, entry: &AgentEntry) -> Result<AgentClient, CompanionError> {
        let token = self.inner.secrets.load(&entry.name)?;
        Ok(AgentClient::new(
            &AgentEndpoint {
                name: entry.name.clone(),
                url: entry.url.clone(),
                fingerprint: entry.fingerprint.clone(),
            },
            Some(token),
        )?)
    }

    /// A client for paired agent `agent`, with its device token.
    pub fn client(&self, agent: &str) -> Result<AgentClient, CompanionError> {
        let cfg = self.config()?;
        self.client_for(&self.entry(&cfg, agent)?)
    }

    /// Health of every paired agent and credential.
    pub async fn status(&self) -> Result<StatusReport, CompanionError> {
        let cfg = self.config()?;
        let clients = cfg
            .agents
            .iter()
            .map(|a| {
                let c = self
                    .client_for(a)
                    .map_err(|e| (contact_class(&e), crate::report::chain(&e)));
                (a.name.clone(), a.url.clone(), c)
            })
            .collect();
        Ok(status::collect(clients).await)
    }

    /// Redeems a pairing code (`tether://pair?...`). `confirm` is asked before replacing an
    /// agent that is already paired.
    pub async fn pair(
        &self,
        code: &str,
        opts: &PairOptions,
        confirm: &mut (dyn FnMut(&Replacement) -> bool + Send),
    ) -> Result<Paired, CompanionError> {
        pair::pair(
            &self.inner.config_path,
            &self.inner.secrets,
            code,
            opts,
            confirm,
        )
        .await
    }

    /// Every pairing with its URL and pinned fingerprint.
    pub fn pairings(&self) -> Result<Vec<pair::PairingView>, CompanionError> {
        Ok(self.config()?.agents.iter().map(Into::into).collect())
    }

    /// Forgets a paired agent and deletes its device token.
    pub fn unpair(&self, agent: &str) -> Result<Unpaired, CompanionError> {
        pair::unpair(&self.inner.config_path, &self.inner.secrets, agent)
    }

    /// Re-authorizes `agent`/`credential` in the browser (see [`reauth::run`]); at most one
    /// run per credential at a time.
    pub async fn reauth(
        &self,
        agent: &str,
        credential: &str,
        opener: &dyn Opener,
        opts: ReauthOptions,
        progress: &(dyn Fn(ReauthProgress) + Send + Sync),
    ) -> Result<CredentialHealth, CompanionError> {
        self.reauth_with(
            agent,
            credential,
            opener,
            opts,
            std::future::pending(),
            progress,
        )
        .await
    }

    /// [`Companion::reauth`] with a cancel future: when it resolves, the wait for the
    /// browser ends with a "cancelled" error.
    pub async fn reauth_with(
        &self,
        agent: &str,
        credential: &str,
        opener: &dyn Opener,
        opts: ReauthOptions,
        cancel: impl Future<Output = ()>,
        progress: &(dyn Fn(ReauthProgress) + Send + Sync),
    ) -> Result<CredentialHealth, CompanionError> {
        check_credential_name(agent, credential)?;
        let cfg = self.config()?;
        let entry = self.entry(&cfg, agent)?;
        let client = self.client_for(&entry)?;
        let key = (agent.to_string(), credential.to_string());
        let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel();
        {
            let mut running = self.inner.running.lock();
            if running.contains_key(&key) {
                return Err(ReauthError::AlreadyRunning {
                    agent: agent.into(),
                    credential: credential.into(),
                }
                .into());
            }
            running.insert(key.clone(), Some(cancel_tx));
        }
        let _guard = RunningGuard {
            companion: self.clone(),
            key,
        };
        // Ends the wait for the browser on the caller's cancel or on `cancel_reauth`. The
        // switch lives in `running` until `cancel_reauth` takes it or the guard drops, so
        // a dropped switch (no `Ok`) is not a cancel.
        let cancel = async move {
            tokio::select! {
                () = cancel => {}
                Ok(()) = cancel_rx => {}
            }
        };
        let pinned = entry.authorizations.get(credential);
        let run = reauth::ReauthRun {
            client: &client,
            credential,
            pinned,
            opener,
            opts,
            progress,
        };
        let done = reauth::run(run, cancel).await?;
        if pinned != Some(&done.server) {
            // The credential works either way; failing to remember only means the next
            // re-auth is checked against the older server (or none).
            if let Err(e) = self.remember_server(&entry, credential, done.server) {
                tracing::warn!(
                    "cannot remember the authorization server of {agent}/{credential}: {e}"
                );
            }
        }
        Ok(done.health)
    }

    /// Cancels the running re-authorization of `agent`/`credential` (its wait for the
    /// browser ends with "cancelled").
    pub fn cancel_reauth(&self, agent: &str, credential: &str) -> Result<(), CompanionError> {
        let key = (agent.to_string(), credential.to_string());
        let mut running = self.inner.running.lock();
        match running.get_mut(&key) {
            Some(switch) => {
                // Already cancelled (the run is ending): nothing more to do.
                if let Some(tx) = switch.take() {
                    // The run may have just ended by itself; then there is nothing to stop.
                    let _ = tx.send(());
                }
                Ok(())
            }
            None => Err(ReauthError::NotRunning {
                agent: agent.into(),
                credential: credential.into(),
            }
            .into()),
        }
    }

    /// Asks the agent to re-authorize `agent`/`credential` by device code (RFC 8628): the
    /// daemon asks the provider for a code and posts it as the credential's challenge,
    /// which the returned health (and the event stream) carries.
    pub async fn device_reauth(
        &self,
        agent: &str,
        credential: &str,
    ) -> Result<CredentialHealth, CompanionError> {
        check_credential_name(agent, credential)?;
        Ok(self.client(agent)?.device_reauth(credential).await?)
    }

    /// Remembers the authorization server of a finished re-auth in the config, for the
    /// same pairing only (re-read: the config may have changed meanwhile).
    fn remember_server(
        &self,
        entry: &AgentEntry,
        credential: &str,
        server: consent::AuthorizationPin,
    ) -> Result<(), CompanionError> {
        let mut cfg = self.config()?;
        if let Some(e) = cfg
            .agents
            .iter_mut()
            .find(|a| a.name == entry.name && a.url == entry.url)
        {
            e.authorizations.insert(credential.to_string(), server);
            self.save_config(&cfg)?;
        }
        Ok(())
    }

    /// Pushes a new token for a paste-kind credential; `new_account` lets a token of
    /// another account replace the credential's (otherwise refused, nothing changes).
    pub async fn paste(
        &self,
        agent: &str,
        credential: &str,
        secret: AccessToken,
        new_account: bool,
    ) -> Result<CredentialHealth, CompanionError> {
        check_credential_name(agent, credential)?;
        if secret.secret().trim().is_empty() {
            return Err(CompanionError::EmptySecret(format!("{agent}/{credential}")));
        }
        let client = self.client(agent)?;
        Ok(reauth::paste(&client, credential, secret, new_account).await?)
    }

    /// The settings the tray window edits.
    pub fn settings(&self) -> Result<Settings, CompanionError> {
        Ok(Settings::of(&self.config()?))
    }

    /// Checks and saves `settings` (nothing is written when a value is out of range).
    pub fn save_settings(&self, settings: &Settings) -> Result<(), CompanionError> {
        let mut cfg = self.config()?;
        settings.apply_to(&mut cfg)?;
        self.save_config(&cfg)
    }

    /// Redeems a pairing code for a window that asks before replacing: a pairing that
    /// would replace another (same URL or name) is done only with `replace`; otherwise
    /// the answer is [`CompanionError::ConfirmReplace`] with the question (old and new URL
    /// and certificate) and nothing is redeemed. A name clash seen only after the code is
    /// spent keeps both, the new one under a unique name.
    pub async fn pair_or_ask(
        &self,
        code: &str,
        replace: bool,
    ) -> Result<(PairResult, Option<HealthReport>), CompanionError> {
        let mut asked: Option<Replacement> = None;
        let result = self
            .pair(code.trim(), &PairOptions::default(), &mut |r| {
                if r.redeemed {
                    return false;
                }
                asked = Some(r.clone());
                replace
            })
            .await;
        let paired = match (result, asked) {
            (Err(CompanionError::NotReplaced { .. }), Some(r)) => {
                return Err(CompanionError::ConfirmReplace(pair::replace_question(&r)))
            }
            (r, _) => r?,
        };
        let out = PairResult::of(&paired);
        Ok((out, paired.health))
    }

    /// Every paired agent's health now (the tray's "Check now"), each with its own
    /// result: one agent that cannot be asked does not hide the others.
    pub async fn check_all(&self) -> Result<Vec<(String, AgentCheck)>, CompanionError> {
        let cfg = self.config()?;
        let mut out = Vec::new();
        for entry in cfg.agents {
            let result = match self.client_for(&entry) {
                Ok(c) => c.health().await.map_err(CompanionError::from),
                Err(e) => Err(e),
            };
            out.push((entry.name, result));
        }
        Ok(out)
    }
}

/// Refuses a name no credential can have before anything is sent.
fn check_credential_name(agent: &str, credential: &str) -> Result<(), CompanionError> {
    if crate::protocol::valid_credential_name(credential) {
        Ok(())
    } else {
        Err(CompanionError::BadCredentialName {
            agent: agent.into(),
            credential: credential.into(),
        })
    }
}

pub(super) fn contact_class(e: &CompanionError) -> ContactClass {
    match e {
        CompanionError::Client(c) => c.class(),
        // A missing device token means this computer cannot authenticate: re-pair.
        CompanionError::Secrets(secrets::SecretsError::NotFound { .. }) => {
            ContactClass::Unauthorized
        }
        _ => ContactClass::Unreachable,
    }
}
