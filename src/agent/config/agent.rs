//! The daemon's configuration file (`agent.toml`): the agent-wide settings, parsing and
//! validation. One `[[credentials]]` entry is [`crate::agent::config::credential`]; the commented
//! example `tether agent init` writes is [`crate::agent::config::example`] (both re-exported here).
//!
//! `parse` reads a path, `parse_str` works on text (so tests and `tether agent init` can
//! check the example without touching the disk). Provider overrides and the `[alerts]`
//! table are kept as raw TOML here and turned into the provider and alert modules' own
//! types when the daemon is built, so each module owns its own settings.

use super::credential::CredentialConfig;
use super::defaults::de_duration;
use super::defaults::*;
use super::error::ConfigError;
use super::on_change::OnChange;
use crate::protocol::valid_credential_name;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// What runs after any credential's token or state changed, unless the credential
    /// has its own `on_change`.
    #[serde(default)]
    pub on_change: Option<OnChange>,
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
            o.validate()?;
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
            c.validate()?;
        }
        if let Some(h) = &self.on_change {
            h.action("the agent-wide on_change")?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::config::credential::OutputKind;
    use crate::agent::config::example::EXAMPLE;
    use crate::duration::parse as parse_duration;

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
