//! One `[[credentials]]` entry of `agent.toml`: what the credential is (a token or the
//! agent's own session), its provider and client, outputs, check cadence, and how it is
//! re-authorized; its own validation and the client secret it names.

use super::defaults::{
    de_duration, de_opt_duration, DEFAULT_PROBE_INTERVAL, DEFAULT_REFRESH_AHEAD,
    DEFAULT_REFRESH_INTERVAL, DEFAULT_WARNING_WINDOW, MIN_PROBE_INTERVAL,
};
use super::error::ConfigError;
use super::on_change::OnChange;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// One `[[credentials]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// Credential name, `[a-z0-9][a-z0-9_-]{0,63}`.
    pub name: String,
    /// `token` (the default: OAuth or pasted token, checked by the daemon) or `session`
    /// (no token: the agent reports its own session's health; see `agent::human::session`).
    #[serde(default)]
    pub kind: CredentialConfigKind,
    /// Provider preset (`google`, `x`, `github`, `telegram`, `generic`, ...); a label for
    /// `session` credentials (default `session`).
    #[serde(default)]
    pub provider: String,
    /// `session` credentials: `dead` when the agent has not reported for this long.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub stale_after: Option<Duration>,
    /// Issuer for OIDC discovery (`generic` provider).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Overrides of the preset's fields (the provider module's `ProviderOverrides`).
    #[serde(default)]
    pub overrides: Option<toml::Table>,
    /// OAuth client id (not needed for paste-kind credentials).
    #[serde(default)]
    pub client_id: Option<String>,
    /// File holding the client secret (first line).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Scopes requested at re-authorization (defaults to the preset's).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// How the owner re-authorizes it: `browser` (the default: consent in a browser on the
    /// paired laptop) or `device` (RFC 8628: as soon as the grant is found dead the daemon
    /// starts a device-code sign-in by itself and posts the page and the code as the
    /// credential's challenge, so the owner can finish from a phone; needs a provider with
    /// a device authorization endpoint).
    #[serde(default)]
    pub reauth: ReauthMode,
    /// The agent may post challenges for this OAuth credential (`POST .../challenge`):
    /// a page or a code it asks the owner to open. Off by default: Tether's alerts are a
    /// channel the owner trusts by reflex, and a hijacked agent must not be able to put a
    /// consent page for its own client into it. `session` credentials always may (asking
    /// the owner is what they are for).
    #[serde(default)]
    pub agent_challenges: bool,
    /// Files rendered for the user's agent after every change.
    #[serde(default)]
    pub outputs: Vec<OutputConfig>,
    /// Liveness probe interval (minimum 15 s), when the provider has a probe.
    #[serde(default = "default_probe", deserialize_with = "de_duration")]
    pub probe_interval: Duration,
    /// Full refresh-test interval.
    #[serde(default = "default_refresh", deserialize_with = "de_duration")]
    pub refresh_interval: Duration,
    /// `expiring` when the refresh token ends within this window.
    #[serde(default = "default_warning", deserialize_with = "de_duration")]
    pub warning_window: Duration,
    /// Access tokens are refreshed this long before they expire, clamped to half of each
    /// token's lifetime (`agent::credential::schedule::refresh_ahead`).
    #[serde(default = "default_ahead", deserialize_with = "de_duration")]
    pub refresh_ahead: Duration,
    /// Refresh the access token ahead of expiry even when nobody asks (keeps output
    /// files current). `false`: only when the broker is asked for a token.
    #[serde(default = "yes")]
    pub keep_fresh: bool,
    /// What runs after this credential's token or state changed (else the agent-wide
    /// `on_change`).
    #[serde(default)]
    pub on_change: Option<OnChange>,
}

/// What a `[[credentials]]` entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialConfigKind {
    /// A token the daemon keeps, checks and hands out.
    #[default]
    Token,
    /// The agent's own session (a WhatsApp Web link, a browser login): no token; its
    /// health is what the agent reports, and its fix is a challenge the agent posts.
    Session,
}

/// How a credential is re-authorized when its grant dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReauthMode {
    /// The owner starts it from the companion (browser consent, or a pasted token).
    #[default]
    Browser,
    /// The daemon starts a device-code sign-in by itself (`agent::human::device_flow`).
    Device,
}

/// One rendered output file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Where to write it.
    pub path: PathBuf,
    /// `authorized_user` (google-auth), `token_json` or `env`.
    pub format: OutputKind,
    /// Variable name of the access token (`env` format).
    #[serde(default)]
    pub access_var: Option<String>,
    /// Variable name of the refresh token (`env` format).
    #[serde(default)]
    pub refresh_var: Option<String>,
}

/// Output file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// Google's `authorized_user` JSON.
    AuthorizedUser,
    /// A plain token JSON.
    TokenJson,
    /// `NAME=value` lines.
    Env,
}

fn yes() -> bool {
    true
}
fn default_probe() -> Duration {
    DEFAULT_PROBE_INTERVAL
}
fn default_refresh() -> Duration {
    DEFAULT_REFRESH_INTERVAL
}
fn default_warning() -> Duration {
    DEFAULT_WARNING_WINDOW
}
fn default_ahead() -> Duration {
    DEFAULT_REFRESH_AHEAD
}

impl CredentialConfig {
    /// Checks what the types cannot for this entry alone (the name's shape and uniqueness
    /// are checked by [`AgentConfig::validate`](crate::agent::config::agent::AgentConfig::validate)).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(h) = &self.on_change {
            h.action(&format!("credential {}", self.name))?;
        }
        let bad = |m: String| Err(ConfigError::Invalid(m));
        match self.kind {
            CredentialConfigKind::Token if self.provider.is_empty() => {
                return bad(format!(
                    "credential {}: `provider` is missing (a preset such as google, or kind = \"session\" for an agent's own session)",
                    self.name
                ));
            }
            CredentialConfigKind::Token if self.stale_after.is_some() => {
                return bad(format!(
                    "credential {}: stale_after applies to kind = \"session\" only",
                    self.name
                ));
            }
            CredentialConfigKind::Session
                if self.client_id.is_some()
                    || !self.outputs.is_empty()
                    || self.issuer.is_some() =>
            {
                return bad(format!(
                    "credential {}: a session credential has no token, so client_id, issuer and outputs do not apply",
                    self.name
                ));
            }
            CredentialConfigKind::Session if self.reauth == ReauthMode::Device => {
                return bad(format!(
                    "credential {}: reauth = \"device\" needs a token credential; a session is re-linked by the challenge its agent posts",
                    self.name
                ));
            }
            CredentialConfigKind::Session
                if self.stale_after.is_some_and(|d| d < Duration::from_secs(1)) =>
            {
                return bad(format!(
                    "credential {}: stale_after must be at least 1 s",
                    self.name
                ));
            }
            _ => {}
        }
        if self.probe_interval < MIN_PROBE_INTERVAL {
            return bad(format!(
                "credential {}: probe_interval must be at least {} s",
                self.name,
                MIN_PROBE_INTERVAL.as_secs()
            ));
        }
        if self.refresh_interval < Duration::from_secs(1) {
            return bad(format!(
                "credential {}: refresh_interval must be at least 1 s",
                self.name
            ));
        }
        if self.client_secret_file.is_some() && self.client_secret_env.is_some() {
            return bad(format!(
                "credential {}: set client_secret_file or client_secret_env, not both",
                self.name
            ));
        }
        for o in &self.outputs {
            if o.format == OutputKind::Env && (o.access_var.is_none() && o.refresh_var.is_none()) {
                return bad(format!(
                    "credential {}: output {} has format env but neither access_var nor refresh_var",
                    self.name,
                    o.path.display()
                ));
            }
        }
        Ok(())
    }

    /// True for `kind = "session"`.
    pub fn is_session(&self) -> bool {
        self.kind == CredentialConfigKind::Session
    }

    /// Reads the client secret from its file or environment variable.
    pub fn client_secret(&self) -> Result<Option<crate::secret::ClientSecret>, ConfigError> {
        if let Some(path) = &self.client_secret_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::Invalid(format!(
                    "credential {}: cannot read client_secret_file {}: {e}",
                    self.name,
                    path.display()
                ))
            })?;
            let line = text.lines().next().unwrap_or("").trim().to_string();
            if line.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "credential {}: client_secret_file {} is empty",
                    self.name,
                    path.display()
                )));
            }
            return Ok(Some(crate::secret::ClientSecret::new(line)));
        }
        if let Some(var) = &self.client_secret_env {
            return match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => {
                    Ok(Some(crate::secret::ClientSecret::new(v.trim().to_string())))
                }
                _ => Err(ConfigError::Invalid(format!(
                    "credential {}: environment variable {var} (client_secret_env) is not set",
                    self.name
                ))),
            };
        }
        Ok(None)
    }
}
