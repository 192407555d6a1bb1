//! The ntfy channel: POSTs the text to `{server}/{topic}` with Title, Priority and Tags headers.

use super::config::NtfyConfig;
use super::error::{AlertsConfigError, ChannelError};
use super::http::{self, host_of};
use super::secret::{ChannelSecret, SecretSource};
use super::text::{Alert, AlertKind, AlertText};
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
        if let Some(actions) = actions_header(alert) {
            request = request.header("Actions", actions);
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
        AlertKind::OutputWiped => ("high", "wastebasket"),
        AlertKind::HookFailed => ("high", "bell"),
        AlertKind::Test => ("low", "test_tube"),
        AlertKind::Flapping => ("high", "repeat"),
    }
}

/// ntfy action buttons (`Actions: view, Open page, URL`): a device code's verification
/// page (or a URL challenge) opens from the phone's notification in one tap. ntfy's
/// short format separates fields by commas, so a URL containing one is left out (the
/// body still has it).
fn actions_header(alert: &Alert) -> Option<String> {
    use crate::protocol::ChallengeOrigin;
    if !matches!(alert.kind, AlertKind::Dead | AlertKind::Reminder) {
        return None;
    }
    let challenge = alert.challenge.as_ref()?;
    let link = challenge.link()?;
    if link.contains([',', ';']) || !link.is_ascii() {
        return None;
    }
    // The button says who asks and where it goes: the owner taps it by reflex.
    let host = challenge.link_host()?;
    let label = match (alert.challenge_origin.unwrap_or_default(), challenge) {
        (ChallengeOrigin::Daemon, crate::protocol::Challenge::DeviceCode { .. }) => {
            format!("Tether sign-in on {host}")
        }
        (ChallengeOrigin::Daemon, _) => format!("Tether: open {host}"),
        (ChallengeOrigin::Agent, _) => format!("Agent asks: open {host}"),
    };
    Some(header_safe(&format!("view, {label}, {link}, clear=true")))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Challenge, ReauthKind};

    fn alert(kind: AlertKind, challenge: Option<Challenge>) -> Alert {
        Alert {
            agent: "studio".into(),
            credential: "github".into(),
            provider: "github".into(),
            kind,
            reauth: ReauthKind::Oauth,
            error: None,
            blocked_requests: 0,
            since: chrono::Utc::now(),
            refresh_expires_at: None,
            detail: None,
            challenge,
            challenge_origin: Some(crate::protocol::ChallengeOrigin::Daemon),
            pending: None,
        }
    }

    #[test]
    fn a_device_code_gets_a_view_button_to_its_page() {
        let code = Challenge::DeviceCode {
            verification_uri: "https://github.com/login/device".into(),
            user_code: "WDJB-MJHT".into(),
            verification_uri_complete: None,
            expires_at: None,
        };
        assert_eq!(
            actions_header(&alert(AlertKind::Dead, Some(code.clone()))).as_deref(),
            Some("view, Tether sign-in on github.com, https://github.com/login/device, clear=true")
        );
        assert_eq!(
            actions_header(&alert(AlertKind::Recovered, Some(code))),
            None
        );
        let qr = Challenge::Qr {
            payload: "2@x".into(),
            expires_at: None,
        };
        assert_eq!(actions_header(&alert(AlertKind::Dead, Some(qr))), None);
        let comma = Challenge::Url {
            url: "https://x.example/a,b".into(),
        };
        assert_eq!(actions_header(&alert(AlertKind::Dead, Some(comma))), None);
    }
}
