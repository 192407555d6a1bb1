//! The generic webhook channel: POSTs JSON that Slack (`text`), Discord (`content`) and
//! any JSON consumer (the structured fields) understand.

use super::config::{redacted_url, WebhookConfig};
use super::http::{self, host_of};
use super::text::{truncate, Alert, AlertText};
use super::{AlertsConfigError, ChannelError};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::fmt;
use std::time::Duration;

/// Discord refuses `content` longer than this.
const DISCORD_MAX_CHARS: usize = 2000;

/// A ready webhook channel.
pub(crate) struct WebhookChannel {
    /// The full URL: a secret for Slack and Discord, so never logged.
    url: reqwest::Url,
    host: String,
    headers: HeaderMap,
}

impl fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookChannel")
            .field("url", &redacted_url(self.url.as_str()))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl WebhookChannel {
    /// Checks the config.
    pub(crate) fn new(cfg: &WebhookConfig) -> Result<Self, AlertsConfigError> {
        let url = http::parse_url(&cfg.name, "url", &cfg.url)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &cfg.headers {
            let invalid = |what: &str| AlertsConfigError::Invalid {
                channel: cfg.name.clone(),
                problem: format!("header {name:?} has an invalid {what}"),
            };
            let header_name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid("name"))?;
            let mut header_value = HeaderValue::from_str(value).map_err(|_| invalid("value"))?;
            // Keeps the value out of any debug output of the request.
            header_value.set_sensitive(true);
            headers.insert(header_name, header_value);
        }
        Ok(WebhookChannel {
            host: host_of(&url),
            url,
            headers,
        })
    }

    /// Host (and port) the alerts go to.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// POSTs one alert.
    pub(crate) async fn send(
        &self,
        http: &reqwest::Client,
        alert: &Alert,
        text: &AlertText,
        timeout: Duration,
    ) -> Result<(), ChannelError> {
        let request = http
            .post(self.url.clone())
            .headers(self.headers.clone())
            .timeout(timeout)
            .json(&payload(alert, text));
        http::send(request, &self.host, None).await.map(drop)
    }
}

/// The JSON body: `text`/`content` for chat services plus the alert's fields.
pub(crate) fn payload(alert: &Alert, text: &AlertText) -> serde_json::Value {
    let message = format!("{}\n{}", text.title, text.body);
    serde_json::json!({
        "text": message,
        "content": truncate(&message, DISCORD_MAX_CHARS - 1),
        "title": text.title,
        "body": text.body,
        "agent": alert.agent,
        "credential": alert.credential,
        "provider": alert.provider,
        "kind": alert.kind,
        "reauth": alert.reauth,
        "fix": alert.fix_command(),
        "error": alert.error,
        "blocked_requests": alert.blocked_requests,
        "since": alert.since,
        "refresh_expires_at": alert.refresh_expires_at,
        "detail": alert.detail,
        "challenge": alert.challenge,
        "pending": alert.pending,
    })
}
