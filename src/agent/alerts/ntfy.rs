//! The ntfy channel: POSTs the text to `{server}/{topic}` with Title, Priority and Tags headers.

use super::config::NtfyConfig;
use super::http::{self, host_of};
use super::secret::{ChannelSecret, SecretSource};
use super::text::{Alert, AlertKind, AlertText};
use super::{AlertsConfigError, ChannelError};
use std::time::Duration;

/// A ready ntfy channel.
#[derive(Debug)]
pub(crate) struct NtfyChannel {
    url: reqwest::Url,
    host: String,
    token: Option<ChannelSecret>,
}

impl NtfyChannel {
    /// Checks the config and reads the access token, if any.
    pub(crate) fn new(cfg: &NtfyConfig) -> Result<Self, AlertsConfigError> {
        let server = http::parse_url(&cfg.name, "server", &cfg.server)?;
        let topic_ok = !cfg.topic.is_empty()
            && cfg.topic.len() <= 64
            && cfg
                .topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !topic_ok {
            return Err(AlertsConfigError::Invalid {
                channel: cfg.name.clone(),
                problem: format!(
                    "ntfy topic {:?} must be 1-64 letters, digits, '-' or '_'",
                    cfg.topic
                ),
            });
        }
        let mut url = server;
        url.path_segments_mut()
            .map_err(|_| AlertsConfigError::Invalid {
                channel: cfg.name.clone(),
                problem: "server cannot be a base URL; write it as https://host".into(),
            })?
            .pop_if_empty()
            .push(&cfg.topic);
        let token = SecretSource {
            channel: &cfg.name,
            what: "ntfy access token",
            file_field: "token_file",
            env_field: "token_env",
            file: cfg.token_file.as_deref(),
            env: cfg.token_env.as_deref(),
        }
        .read()?;
        Ok(NtfyChannel {
            host: host_of(&url),
            url,
            token,
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
        let (priority, tag) = priority_and_tag(alert.kind);
        let mut request = http
            .post(self.url.clone())
            .timeout(timeout)
            .header("Title", header_safe(&text.title))
            .header("Priority", priority)
            .header("Tags", format!("{tag},tether"))
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(text.body.clone());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.secret());
        }
        http::send(request, &self.host, self.token.as_ref().map(|t| t.secret()))
            .await
            .map(drop)
    }
}

/// ntfy priority name and emoji tag for each kind: a death must wake the phone.
pub(crate) fn priority_and_tag(kind: AlertKind) -> (&'static str, &'static str) {
    match kind {
        AlertKind::Dead => ("urgent", "rotating_light"),
        AlertKind::Reminder => ("high", "rotating_light"),
        AlertKind::Expiring => ("high", "warning"),
        AlertKind::Recovered => ("default", "white_check_mark"),
        AlertKind::VaultTrouble => ("high", "floppy_disk"),
        AlertKind::VaultRecovered => ("default", "white_check_mark"),
        AlertKind::Test => ("low", "test_tube"),
    }
}

/// HTTP header values must be visible ASCII; agent names may not be.
fn header_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}
