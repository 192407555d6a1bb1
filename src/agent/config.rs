//! The daemon's configuration file (`agent.toml`): parsing, validation and the commented example.
//!
//! `parse` reads a path, `parse_str` works on text (so tests and `tether agent init` can
//! check the example without touching the disk). Provider overrides and the `[alerts]`
//! table are kept as raw TOML here and turned into the provider and alert modules' own
//! types when the daemon is built, so each module owns its own settings.

use crate::protocol::valid_credential_name;
use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default time between liveness probes.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(60);
/// Shortest probe interval accepted (providers rate-limit their introspection endpoints).
pub const MIN_PROBE_INTERVAL: Duration = Duration::from_secs(15);
/// Default time between full refresh tests.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(6 * 3600);
/// Default warning window before a known refresh-token end.
pub const DEFAULT_WARNING_WINDOW: Duration = Duration::from_secs(14 * 24 * 3600);
/// Default margin: access tokens are refreshed this long before they expire.
pub const DEFAULT_REFRESH_AHEAD: Duration = Duration::from_secs(120);
/// Default lifetime of a re-auth session.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(600);
/// Default interval of SSE heartbeats.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// Default interval of the vault's cheap check (free space, changed files).
pub const DEFAULT_VAULT_CHECK: Duration = Duration::from_secs(5);
/// Default time connections get to finish at shutdown, below systemd's 30 s stop timeout.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Default deadline for receiving a request's headers or its whole body.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read agent config {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("agent config is not valid")]
    Parse(#[from] toml::de::Error),
    /// A value is out of range or inconsistent.
    #[error("agent config is not valid: {0}")]
    Invalid(String),
}

/// The whole `agent.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The agent's name, shown in alerts and by the companion (`tether reauth NAME/CRED`).
    pub name: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// URL that pairing codes carry (defaults to `https://<listen>`).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Primary state: vault, certificate, devices, pairing secrets.
    pub state_dir: PathBuf,
    /// Additional vault locations (ideally on other filesystems).
    #[serde(default)]
    pub backup_dirs: Vec<PathBuf>,
    /// Generations kept per credential for rollback.
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// TLS settings.
    #[serde(default)]
    pub tls: TlsConfig,
    /// `[vault]`: locations beside the directories (`[[vault.locations]] kind = "openbao"`).
    #[serde(default)]
    pub vault: AgentVaultConfig,
    /// Lifetime of a re-auth session.
    #[serde(default = "default_session_ttl", deserialize_with = "de_duration")]
    pub session_ttl: Duration,
    /// Interval of SSE heartbeats.
    #[serde(default = "default_heartbeat", deserialize_with = "de_duration")]
    pub heartbeat_interval: Duration,
    /// Interval of the vault's cheap check; damage it sees is repaired at once.
    #[serde(default = "default_vault_check", deserialize_with = "de_duration")]
    pub vault_check_interval: Duration,
    /// At shutdown, how long open connections may take to finish after vault writes are
    /// done; then they are closed.
    #[serde(default = "default_shutdown_grace", deserialize_with = "de_duration")]
    pub shutdown_grace: Duration,
    /// Deadline for a client to send a request's headers, and again for its body.
    #[serde(default = "default_request_timeout", deserialize_with = "de_duration")]
    pub request_timeout: Duration,
    /// Managed credentials.
    #[serde(default)]
    pub credentials: Vec<CredentialConfig>,
    /// `[alerts]`: reminder interval and channels, in the alert module's own format
    /// (`agent::alerts::AlertsConfig`), checked when the daemon is built.
    #[serde(default)]
    pub alerts: Option<toml::Table>,
}

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Serve HTTPS with the daemon's own certificate. `false` is accepted only on loopback.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Extra names for the certificate (host names the companion will use).
    #[serde(default)]
    pub names: Vec<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            enabled: true,
            names: Vec::new(),
        }
    }
}

/// `[vault]` of the agent config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentVaultConfig {
    /// Extra locations (OpenBao); every change is written there too.
    #[serde(default)]
    pub locations: Vec<crate::vault::openbao::LocationConfig>,
}

/// One `[[credentials]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// Credential name, `[a-z0-9][a-z0-9_-]{0,63}`.
    pub name: String,
    /// `token` (the default: OAuth or pasted token, checked by the daemon) or `session`
    /// (no token: the agent reports its own session's health; see `agent::session`).
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
    /// token's lifetime (`agent::schedule::refresh_ahead`).
    #[serde(default = "default_ahead", deserialize_with = "de_duration")]
    pub refresh_ahead: Duration,
    /// Refresh the access token ahead of expiry even when nobody asks (keeps output
    /// files current). `false`: only when the broker is asked for a token.
    #[serde(default = "yes")]
    pub keep_fresh: bool,
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
fn default_keep() -> usize {
    5
}
fn default_session_ttl() -> Duration {
    DEFAULT_SESSION_TTL
}
fn default_heartbeat() -> Duration {
    DEFAULT_HEARTBEAT
}
fn default_vault_check() -> Duration {
    DEFAULT_VAULT_CHECK
}
fn default_shutdown_grace() -> Duration {
    DEFAULT_SHUTDOWN_GRACE
}
fn default_request_timeout() -> Duration {
    DEFAULT_REQUEST_TIMEOUT
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

pub use crate::duration::parse as parse_duration;

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    crate::duration::humane::deserialize(d)
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    crate::duration::humane::deserialize(d).map(Some)
}

/// Reads and validates an `agent.toml`.
pub fn parse(path: &Path) -> Result<AgentConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut cfg = parse_str(&text)?;
    // Relative paths in the file are relative to the file, not to the working directory
    // of whoever started the daemon (systemd starts it in /).
    if let Some(base) = path.parent() {
        cfg.resolve_relative(base);
    }
    Ok(cfg)
}

/// Parses and validates the text of an `agent.toml`.
pub fn parse_str(text: &str) -> Result<AgentConfig, ConfigError> {
    let cfg: AgentConfig = toml::from_str(text)?;
    cfg.validate()?;
    Ok(cfg)
}

impl AgentConfig {
    fn resolve_relative(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.state_dir);
        self.backup_dirs.iter_mut().for_each(fix);
        for l in &mut self.vault.locations {
            let crate::vault::openbao::LocationConfig::Openbao(o) = l;
            for p in [&mut o.token_file, &mut o.ca_file].into_iter().flatten() {
                fix(p);
            }
            if let Some(a) = &mut o.approle {
                fix(&mut a.role_id_file);
                fix(&mut a.secret_id_file);
            }
        }
        for c in &mut self.credentials {
            if let Some(p) = &mut c.client_secret_file {
                fix(p);
            }
            c.outputs.iter_mut().for_each(|o| fix(&mut o.path));
        }
    }

    /// Checks values the types cannot: names, intervals, TLS on non-loopback addresses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.name.is_empty()
            || self.name.contains('/')
            || self.name.chars().any(char::is_whitespace)
        {
            return bad(format!(
                "agent name `{}` must be non-empty, without `/` or spaces",
                self.name
            ));
        }
        for l in &self.vault.locations {
            let crate::vault::openbao::LocationConfig::Openbao(o) = l;
            o.validate().map_err(ConfigError::Invalid)?;
        }
        if self
            .vault
            .locations
            .iter()
            .filter(|l| matches!(l, crate::vault::openbao::LocationConfig::Openbao(o) if o.ha))
            .count()
            > 1
        {
            return bad(
                "at most one openbao location may have ha = true (it holds the leases)".into(),
            );
        }
        if !self.tls.enabled && !self.listen.ip().is_loopback() {
            return bad(format!(
                "tls is disabled but listen = {} is not a loopback address; plain HTTP is accepted only on 127.0.0.1 or ::1",
                self.listen
            ));
        }
        for (key, value) in [
            ("vault_check_interval", self.vault_check_interval),
            ("request_timeout", self.request_timeout),
        ] {
            if value < Duration::from_millis(100) {
                return bad(format!(
                    "{key} = {value:?} is too short; use at least 100ms (for example \"5s\")"
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.credentials {
            if !valid_credential_name(&c.name) {
                return bad(format!(
                    "credential name `{}` must match [a-z0-9][a-z0-9_-]{{0,63}}",
                    c.name
                ));
            }
            if !seen.insert(c.name.as_str()) {
                return bad(format!("credential `{}` is listed twice", c.name));
            }
            match c.kind {
                CredentialConfigKind::Token if c.provider.is_empty() => {
                    return bad(format!(
                        "credential {}: `provider` is missing (a preset such as google, or kind = \"session\" for an agent's own session)",
                        c.name
                    ));
                }
                CredentialConfigKind::Token if c.stale_after.is_some() => {
                    return bad(format!(
                        "credential {}: stale_after applies to kind = \"session\" only",
                        c.name
                    ));
                }
                CredentialConfigKind::Session
                    if c.client_id.is_some() || !c.outputs.is_empty() || c.issuer.is_some() =>
                {
                    return bad(format!(
                        "credential {}: a session credential has no token, so client_id, issuer and outputs do not apply",
                        c.name
                    ));
                }
                CredentialConfigKind::Session
                    if c.stale_after.is_some_and(|d| d < Duration::from_secs(1)) =>
                {
                    return bad(format!(
                        "credential {}: stale_after must be at least 1 s",
                        c.name
                    ));
                }
                _ => {}
            }
            if c.probe_interval < MIN_PROBE_INTERVAL {
                return bad(format!(
                    "credential {}: probe_interval must be at least {} s",
                    c.name,
                    MIN_PROBE_INTERVAL.as_secs()
                ));
            }
            if c.refresh_interval < Duration::from_secs(1) {
                return bad(format!(
                    "credential {}: refresh_interval must be at least 1 s",
                    c.name
                ));
            }
            if c.client_secret_file.is_some() && c.client_secret_env.is_some() {
                return bad(format!(
                    "credential {}: set client_secret_file or client_secret_env, not both",
                    c.name
                ));
            }
            for o in &c.outputs {
                if o.format == OutputKind::Env
                    && (o.access_var.is_none() && o.refresh_var.is_none())
                {
                    return bad(format!(
                        "credential {}: output {} has format env but neither access_var nor refresh_var",
                        c.name,
                        o.path.display()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The URL pairing codes carry.
    pub fn public_url(&self) -> String {
        if let Some(u) = &self.public_url {
            return u.trim_end_matches('/').to_string();
        }
        let scheme = if self.tls.enabled { "https" } else { "http" };
        let host = if self.listen.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            match self.listen.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            }
        };
        format!("{scheme}://{host}:{}", self.listen.port())
    }

    /// The credential called `name`.
    pub fn credential(&self, name: &str) -> Option<&CredentialConfig> {
        self.credentials.iter().find(|c| c.name == name)
    }
}

impl CredentialConfig {
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

/// The commented example written by `tether agent init`.
pub const EXAMPLE: &str = r#"# Tether agent daemon configuration.
# Durations are seconds or strings such as "90s", "15m", "6h", "14d".

# The agent's name: shown in alerts and used by the companion (`tether reauth studio/youtube`).
name = "studio"

# Address the HTTPS API listens on. Plain HTTP (tls.enabled = false) is only
# accepted on a loopback address such as 127.0.0.1.
listen = "0.0.0.0:7443"

# URL that pairing codes carry; defaults to https://<listen address>.
# public_url = "https://studio.example:7443"

# Primary state: the vault, the TLS certificate, paired devices. Kept 0700.
state_dir = "/var/lib/tether"

# More vault locations, ideally on other filesystems. Every change is written to all.
backup_dirs = ["/var/backups/tether"]

# Generations kept per credential for rollback.
# keep = 5

# Lifetime of a re-authorization session started by the companion.
# session_ttl = "10m"

# How often the vault checks its locations cheaply (free space, changed or deleted
# files); damage is repaired at once. A full reconcile also runs every 10 minutes.
# vault_check_interval = "5s"

# At shutdown: stop accepting, finish vault writes, then give open connections this
# long before closing them (keep it below systemd's TimeoutStopSec, 30 s by default).
# shutdown_grace = "10s"

# A client must send a request's headers, and then its body, within this time.
# request_timeout = "10s"

# A team's OpenBao (or Vault) KV v2 mount as one more location; with ha = true, daemons
# sharing it elect one refresher per credential (see "Team / high availability" in the
# README, and dist/openbao-policy.hcl for the token's policy).
# [[vault.locations]]
# kind = "openbao"
# address = "https://bao.example:8200"
# mount = "secret"
# prefix = "tether"
# token_file = "/etc/tether/openbao-token"    # or token_env = "BAO_TOKEN", or [vault.locations.approle]
# ca_file = "/etc/tether/openbao-ca.pem"
# ha = true
# lease_ttl = "15s"

[tls]
# The daemon makes a self-signed certificate on first start and prints its
# SHA-256 fingerprint; pairing codes carry it so the companion can pin it.
enabled = true
# Extra host names for the certificate.
# names = ["studio.example"]

[[credentials]]
name = "youtube"
# Provider preset: google, x, tiktok, github, github-app, microsoft, spotify,
# dropbox, slack, telegram, github-pat, or generic (with issuer = "https://...").
provider = "google"
client_id = "1234567890-abc.apps.googleusercontent.com"
# The client secret comes from a file (first line) or an environment variable.
client_secret_file = "/etc/tether/youtube-client-secret"
# client_secret_env = "YOUTUBE_CLIENT_SECRET"
scopes = ["https://www.googleapis.com/auth/youtube.upload"]
# Liveness probe (no token is minted) and full refresh test.
probe_interval = "60s"
refresh_interval = "6h"
# State `expiring` when the refresh token's known end is this close.
warning_window = "14d"
# Refresh access tokens this long before they expire (at most half a token's lifetime).
refresh_ahead = "2m"
# Override preset fields if your provider differs:
# [credentials.overrides]
# token_url = "https://oauth2.example/token"
# access_token_lifetime_secs = 3600   # assumed when the token answer has no expires_in

# Files your agent already reads, re-rendered after every change and repaired if wiped.
[[credentials.outputs]]
path = "/home/agent/.config/youtube/authorized_user.json"
format = "authorized_user"   # authorized_user | token_json | env

# [[credentials.outputs]]
# path = "/home/agent/.env.youtube"
# format = "env"
# access_var = "YOUTUBE_ACCESS_TOKEN"
# refresh_var = "YOUTUBE_REFRESH_TOKEN"

# [[credentials]]
# name = "bot"
# provider = "telegram"     # paste kind: re-armed with "paste a new token"

# The agent's own session (WhatsApp Web and similar): no token. The agent reports
# POST /v1/credentials/whatsapp/report {"ok": true} and, when it needs the owner,
# posts a challenge (a QR code to scan, a device code, a URL).
# [[credentials]]
# name = "whatsapp"
# kind = "session"
# stale_after = "10m"       # dead when the agent has not reported for this long

[alerts]
# Reminders while a credential stays dead.
reminder_interval = "6h"

# Alert channels need none of the credentials above. Every alert goes to all of them.
# Secrets (bot tokens, SMTP passwords) come from files or environment variables.
[[alerts.channels]]
name = "ops-webhook"
kind = "webhook"            # JSON POST; Slack and Discord webhooks understand its `text`
url = "https://hooks.slack.com/services/T000/B000/XXXX"

# [[alerts.channels]]
# name = "phone"
# kind = "ntfy"
# topic = "tether-studio-5f2c9a"

# [[alerts.channels]]
# name = "telegram"
# kind = "telegram"
# bot_token_file = "/etc/tether/telegram-bot-token"
# chat_id = 123456789

# [[alerts.channels]]
# name = "mail"
# kind = "email"
# smtp_host = "smtp.example.com"
# tls = "starttls"
# username = "tether@example.com"
# password_file = "/etc/tether/smtp-password"
# from = "Tether <tether@example.com>"
# to = ["owner@example.com"]
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("6h"), Some(Duration::from_secs(21600)));
        assert_eq!(parse_duration("14d"), Some(Duration::from_secs(14 * 86400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("6 hours"), None);
        assert_eq!(parse_duration("h"), None);
    }

    #[test]
    fn example_parses() {
        let cfg = parse_str(EXAMPLE).expect("the example config must parse");
        assert_eq!(cfg.name, "studio");
        assert_eq!(cfg.credentials[0].probe_interval, Duration::from_secs(60));
        assert_eq!(
            cfg.credentials[0].outputs[0].format,
            OutputKind::AuthorizedUser
        );
        let alerts: crate::agent::alerts::AlertsConfig = cfg
            .alerts
            .clone()
            .unwrap()
            .try_into()
            .expect("example [alerts] parses");
        assert_eq!(alerts.reminder_interval, Duration::from_secs(6 * 3600));
        assert_eq!(alerts.channels.len(), 1);
    }

    #[test]
    fn rejects_plain_http_off_loopback_and_bad_names() {
        let base = "name='a'\nstate_dir='/x'\n";
        let e =
            parse_str(&format!("{base}listen='0.0.0.0:1'\n[tls]\nenabled=false\n")).unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        assert!(parse_str(&format!(
            "{base}listen='127.0.0.1:1'\n[tls]\nenabled=false\n"
        ))
        .is_ok());
        let e = parse_str(&format!(
            "{base}listen='127.0.0.1:1'\n[[credentials]]\nname='../x'\nprovider='google'\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("must match"), "{e}");
        let e = parse_str(&format!(
            "{base}listen='127.0.0.1:1'\n[[credentials]]\nname='x'\nprovider='google'\nprobe_interval='5s'\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("at least 15"), "{e}");
        assert!(parse_str(&format!("{base}listen='127.0.0.1:1'\nbogus=1\n")).is_err());
    }
}
