//! The Telegram channel: a bot sends the text to one chat through the Bot API's `sendMessage`.

use super::config::TelegramConfig;
use super::error::{AlertsConfigError, ChannelError};
use super::http::{self, host_of};
use super::secret::{ChannelSecret, SecretSource};
use super::text::{truncate, AlertText};
use std::time::Duration;

/// Telegram refuses messages longer than this.
const TELEGRAM_MAX_CHARS: usize = 4096;

/// A ready Telegram channel.
#[derive(Debug)]
pub(crate) struct TelegramChannel {
    /// `{api_base}`; the token goes into the path only when a request is built, so the
    /// stored URL never contains it.
    api_base: reqwest::Url,
    host: String,
    token: ChannelSecret,
    chat_id: String,
}

impl TelegramChannel {
    /// Checks the config and reads the bot token.
    pub(crate) fn new(cfg: &TelegramConfig) -> Result<Self, AlertsConfigError> {
        let api_base = http::parse_url(&cfg.name, "api_base", &cfg.api_base)?;
        let token = SecretSource {
            channel: &cfg.name,
            what: "bot token",
            file_field: "bot_token_file",
            env_field: "bot_token_env",
            file: cfg.bot_token_file.as_deref(),
            env: cfg.bot_token_env.as_deref(),
        }
        .read_required()?;
        // A token with '/' or '?' would change the request path; real ones are `123:ABC-_`.
        if !token
            .secret()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'-' || b == b'_')
        {
            return Err(AlertsConfigError::Invalid {
                channel: cfg.name.clone(),
                problem: "the bot token has characters a Telegram token never has; copy it again from @BotFather".into(),
            });
        }
        if cfg.chat_id.trim().is_empty() {
            return Err(AlertsConfigError::Invalid {
                channel: cfg.name.clone(),
                problem: "chat_id is empty; set the numeric chat id or @channelname".into(),
            });
        }
        Ok(TelegramChannel {
            host: host_of(&api_base),
            api_base,
            token,
            chat_id: cfg.chat_id.clone(),
        })
    }

    /// Host (and port) the alerts go to.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Sends one alert. The request URL holds the token: it is built here and dropped
    /// here, and [`http::send`] strips it from every error.
    pub(crate) async fn send(
        &self,
        http: &reqwest::Client,
        text: &AlertText,
        timeout: Duration,
    ) -> Result<(), ChannelError> {
        let base = self.api_base.as_str().trim_end_matches('/');
        let url = format!("{base}/bot{}/sendMessage", self.token.secret());
        let message = truncate(
            &format!("{}\n\n{}", text.title, text.body),
            TELEGRAM_MAX_CHARS - 1,
        );
        let request = http.post(url).timeout(timeout).json(&serde_json::json!({
            "chat_id": self.chat_id,
            "text": message,
            "disable_web_page_preview": true,
        }));
        let response = http::send(request, &self.host, Some(self.token.secret())).await?;
        // The Bot API answers `{"ok": true, ...}`; a 200 without it is not a delivery.
        let status = response.status().as_u16();
        match response.json::<serde_json::Value>().await {
            Ok(v) if v.get("ok") == Some(&serde_json::Value::Bool(true)) => Ok(()),
            Ok(v) => Err(ChannelError::Rejected {
                host: self.host.clone(),
                status,
                detail: v
                    .get("description")
                    .and_then(|d| d.as_str())
                    .unwrap_or("answer without \"ok\": true")
                    .replace(self.token.secret(), "[redacted]"),
            }),
            Err(e) => Err(ChannelError::Unreachable {
                host: self.host.clone(),
                source: e.without_url(),
            }),
        }
    }
}
