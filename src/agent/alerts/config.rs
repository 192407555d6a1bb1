//! The `[alerts]` section of agent.toml: reminder interval and the list of channels.
//!
//! The config names where secrets live (a file or an environment variable), never the
//! secrets themselves, so agent.toml can be shown, diffed and logged. The secrets are read
//! when the [`Alerter`](super::alerter::Alerter) is built.

use super::error::AlertsConfigError;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Default time between reminders while a credential stays dead.
pub const DEFAULT_REMINDER_INTERVAL: Duration = Duration::from_secs(6 * 60 * 60);
/// Default ntfy server.
pub const DEFAULT_NTFY_SERVER: &str = "https://ntfy.sh";
/// Default Telegram Bot API base.
pub const DEFAULT_TELEGRAM_API_BASE: &str = "https://api.telegram.org";

/// The `[alerts]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Time between reminders while a credential stays dead: `"6h"`, `"90m"`, `"1h30m"`,
    /// `"1d"` or a number of seconds.
    #[serde(default = "default_reminder", with = "crate::duration::humane")]
    pub reminder_interval: Duration,
    /// Every channel; each alert goes to all of them.
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
}

impl AlertsConfig {
    /// The `[alerts]` table of agent.toml (the config keeps it raw), or the defaults when
    /// there is none: the one place it is parsed, at start, on a reload and for
    /// `tether agent alerts test`.
    pub fn from_table(table: Option<&toml::Table>) -> Result<AlertsConfig, AlertsConfigError> {
        match table {
            Some(t) => t.clone().try_into().map_err(AlertsConfigError::Parse),
            None => Ok(AlertsConfig::default()),
        }
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            reminder_interval: DEFAULT_REMINDER_INTERVAL,
            channels: Vec::new(),
        }
    }
}

fn default_reminder() -> Duration {
    DEFAULT_REMINDER_INTERVAL
}

/// One `[[alerts.channels]]` entry, told apart by its `kind`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ChannelConfig {
    /// A generic JSON webhook (Slack, Discord, Mattermost, anything that takes JSON).
    Webhook(WebhookConfig),
    /// An ntfy topic.
    Ntfy(NtfyConfig),
    /// A Telegram chat, through a bot.
    Telegram(TelegramConfig),
    /// E-mail through an SMTP server.
    Email(EmailConfig),
}

impl ChannelConfig {
    /// The channel's label.
    pub fn name(&self) -> &str {
        match self {
            ChannelConfig::Webhook(c) => &c.name,
            ChannelConfig::Ntfy(c) => &c.name,
            ChannelConfig::Telegram(c) => &c.name,
            ChannelConfig::Email(c) => &c.name,
        }
    }

    /// `webhook`, `ntfy`, `telegram` or `email`.
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::Webhook(_) => "webhook",
            ChannelConfig::Ntfy(_) => "ntfy",
            ChannelConfig::Telegram(_) => "telegram",
            ChannelConfig::Email(_) => "email",
        }
    }
}

/// `kind = "webhook"`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Channel label.
    pub name: String,
    /// Where the JSON is POSTed. Slack and Discord webhook URLs are secrets in themselves,
    /// so `Debug` shows only the scheme and host.
    pub url: String,
    /// Extra request headers (e.g. `Authorization`); values are redacted in `Debug`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &redacted_url(&self.url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `kind = "ntfy"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NtfyConfig {
    /// Channel label.
    pub name: String,
    /// ntfy server base URL.
    #[serde(default = "default_ntfy_server")]
    pub server: String,
    /// The topic; on the public server anyone who knows it can read it, so pick a long one.
    pub topic: String,
    /// File holding an access token for protected topics.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Environment variable holding an access token for protected topics.
    #[serde(default)]
    pub token_env: Option<String>,
}

fn default_ntfy_server() -> String {
    DEFAULT_NTFY_SERVER.to_string()
}

/// `kind = "telegram"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// Channel label.
    pub name: String,
    /// File holding the bot token.
    #[serde(default)]
    pub bot_token_file: Option<PathBuf>,
    /// Environment variable holding the bot token.
    #[serde(default)]
    pub bot_token_env: Option<String>,
    /// Chat id (a number such as `-1001234567890`, or `@channelname`).
    #[serde(deserialize_with = "string_or_int")]
    pub chat_id: String,
    /// Bot API base URL.
    #[serde(default = "default_telegram_api")]
    pub api_base: String,
}

fn default_telegram_api() -> String {
    DEFAULT_TELEGRAM_API_BASE.to_string()
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS (port 587); the upgrade is required.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: allowed only for a loopback host (a local relay).
    None,
}

impl TlsMode {
    /// The usual port for the mode.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
            TlsMode::None => 25,
        }
    }
}

/// `kind = "email"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Channel label.
    pub name: String,
    /// SMTP server host name.
    pub smtp_host: String,
    /// SMTP port; defaults to the usual port of `tls`.
    #[serde(default)]
    pub smtp_port: Option<u16>,
    /// Connection security.
    #[serde(default)]
    pub tls: TlsMode,
    /// SMTP user; when set, a password source is required too.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the SMTP password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the SMTP password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Sender, e.g. `Tether <tether@example.org>`.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Extra root certificate (PEM) to trust, for a relay with its own CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// Shows only the scheme and host of a URL (paths and queries of webhooks carry secrets).
pub(crate) fn redacted_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(u) => format!(
            "{}://{}/[redacted]",
            u.scheme(),
            u.host_str().unwrap_or("?")
        ),
        Err(_) => "[unparsable url]".to_string(),
    }
}

/// Telegram chat ids are numbers, channel names are strings; TOML users write either.
fn string_or_int<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        S(String),
        I(i64),
    }
    Ok(match Id::deserialize(d)? {
        Id::S(s) => s,
        Id::I(i) => i.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::{format as format_duration, parse as parse_duration};

    #[test]
    fn durations() {
        assert_eq!(parse_duration("6h"), Some(Duration::from_secs(21_600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("3600"), Some(Duration::from_secs(3_600)));
        assert_eq!(parse_duration("1h30"), None);
        assert_eq!(parse_duration("6x"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(format_duration(Duration::from_secs(21_600)), "6h");
        assert_eq!(format_duration(Duration::from_secs(5_400)), "90m");
    }

    #[test]
    fn parses_toml_with_every_kind() {
        let cfg: AlertsConfig = toml::from_str(
            r#"
            reminder_interval = "2h"
            [[channels]]
            name = "slack"
            kind = "webhook"
            url = "https://hooks.slack.com/services/T0/B0/SECRETPATH"
            headers = { Authorization = "Bearer SECRETHEADER" }
            [[channels]]
            name = "phone"
            kind = "ntfy"
            topic = "tether-x"
            [[channels]]
            name = "tg"
            kind = "telegram"
            bot_token_env = "TG_TOKEN"
            chat_id = -100123
            [[channels]]
            name = "mail"
            kind = "email"
            smtp_host = "smtp.example.org"
            username = "me"
            password_file = "/etc/tether/smtp-password"
            from = "tether@example.org"
            to = ["me@example.org"]
            "#,
        )
        .expect("valid config");
        assert_eq!(cfg.reminder_interval, Duration::from_secs(7_200));
        assert_eq!(cfg.channels.len(), 4);
        let ChannelConfig::Telegram(tg) = &cfg.channels[2] else {
            panic!("third channel is telegram")
        };
        assert_eq!(tg.chat_id, "-100123");
        assert_eq!(tg.api_base, DEFAULT_TELEGRAM_API_BASE);
        let ChannelConfig::Ntfy(n) = &cfg.channels[1] else {
            panic!("second channel is ntfy")
        };
        assert_eq!(n.server, DEFAULT_NTFY_SERVER);
        let ChannelConfig::Email(e) = &cfg.channels[3] else {
            panic!("fourth channel is email")
        };
        assert_eq!(e.tls, TlsMode::Starttls);
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("SECRETPATH"), "{debug}");
        assert!(!debug.contains("SECRETHEADER"), "{debug}");
    }

    #[test]
    fn unknown_fields_and_kinds_are_rejected() {
        let typo = toml::from_str::<AlertsConfig>(
            "[[channels]]\nname='t'\nkind='telegram'\nbot_token_fiel='/x'\nchat_id=1\n",
        );
        assert!(typo.is_err());
        let kind = toml::from_str::<AlertsConfig>("[[channels]]\nname='t'\nkind='pigeon'\n");
        assert!(kind.is_err());
        let dur = toml::from_str::<AlertsConfig>("reminder_interval = 'soon'\n");
        assert!(dur.unwrap_err().to_string().contains("invalid duration"));
    }
}
