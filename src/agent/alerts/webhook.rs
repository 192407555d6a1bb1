//! The generic webhook channel: POSTs JSON that Slack (`text`), Discord (`content`) and
//! any JSON consumer (the structured fields) understand.
//!
//! A webhook usually lands in a shared chat or in another program's logs, so it never
//! carries what lets someone act in the owner's place: a device code (whoever types it
//! first at the provider's page finishes the sign-in with their own account), the page
//! with the code filled in, or a QR payload. It says that a code is waiting, which page
//! it is for, and where the owner reads it (the tray, `tether challenge`); ntfy and
//! Telegram, which reach the owner's own phone, carry the code.

use super::config::{redacted_url, WebhookConfig};
use super::error::{AlertsConfigError, ChannelError};
use super::http::{self, host_of};
use super::text::{truncate, Alert, AlertText};
use crate::protocol::Challenge;
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

/// The JSON body: `text`/`content` for chat services plus the alert's fields, without
/// codes (see the module's comment).
pub(crate) fn payload(alert: &Alert, text: &AlertText) -> serde_json::Value {
    let text = AlertText {
        title: without_codes(alert, &text.title),
        body: without_codes(alert, &text.body),
    };
    let message = format!("{}\n{}", text.title, text.body);
    let mut json = serde_json::json!({
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
        "challenge": alert.challenge.as_ref().map(|c| summary(alert, c)),
        "pending": alert.pending,
    });
    // The error's description repeats what is needed ("human needed: open … and enter
    // the code …"), and other fields may too: every string is cleaned.
    scrub_strings(&mut json, &|s| without_codes(alert, s));
    json
}

fn scrub_strings(v: &mut serde_json::Value, scrub: &dyn Fn(&str) -> String) {
    match v {
        serde_json::Value::String(s) => *s = scrub(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| scrub_strings(i, scrub)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|i| scrub_strings(i, scrub)),
        _ => {}
    }
}

/// Where the owner reads a code the webhook leaves out.
fn where_to_read(alert: &Alert) -> String {
    format!(
        "shown in the tray and by `tether challenge {}`",
        alert.target()
    )
}

/// `text` (rendered once for every channel) with a device code and the page with the code
/// filled in taken out: the code becomes where to read it, the filled-in page the plain one.
fn without_codes(alert: &Alert, text: &str) -> String {
    let Some(Challenge::DeviceCode {
        verification_uri,
        user_code,
        verification_uri_complete,
        ..
    }) = &alert.challenge
    else {
        return text.to_owned();
    };
    let mut s = match verification_uri_complete {
        Some(full) if !full.is_empty() => text.replace(full.as_str(), verification_uri),
        _ => text.to_owned(),
    };
    if !user_code.is_empty() {
        s = s.replace(user_code.as_str(), &where_to_read(alert));
    }
    s
}

/// The structured `challenge` field: its kind, the page to open and whether a code is
/// waiting, never the code or a QR payload.
fn summary(alert: &Alert, c: &Challenge) -> serde_json::Value {
    match c {
        Challenge::DeviceCode {
            verification_uri,
            expires_at,
            ..
        } => serde_json::json!({
            "kind": c.kind(),
            "page": verification_uri,
            "code_waiting": true,
            "code_shown": where_to_read(alert),
            "expires_at": expires_at,
        }),
        Challenge::Qr { expires_at, .. } => serde_json::json!({
            "kind": c.kind(),
            "code_waiting": true,
            "code_shown": where_to_read(alert),
            "expires_at": expires_at,
        }),
        Challenge::Url { url, .. } => serde_json::json!({ "kind": c.kind(), "page": url }),
        Challenge::Text { message, .. } => {
            serde_json::json!({ "kind": c.kind(), "message": message })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::text::AlertKind;
    use super::*;
    use crate::protocol::ReauthKind;

    fn waiting(challenge: Challenge) -> Alert {
        // A fresh alert, as `Alert::test` makes one, turned into a credential's.
        let mut a = Alert::test("studio", chrono::Utc::now());
        a.credential = "github".into();
        a.provider = "github".into();
        a.kind = AlertKind::Dead;
        a.reauth = ReauthKind::Oauth;
        a.challenge = Some(challenge);
        a
    }

    #[test]
    fn a_device_code_is_waiting_at_its_page_but_the_code_is_not_in_the_json() {
        let mut a = waiting(Challenge::DeviceCode {
            verification_uri: "https://github.com/login/device".into(),
            user_code: "WDJB-MJHT".into(),
            verification_uri_complete: Some(
                "https://github.com/login/device?user_code=WDJB-MJHT".into(),
            ),
            expires_at: None,
        });
        // As the daemon records it: the error repeats what is needed.
        a.error = Some(crate::protocol::ErrorInfo {
            code: "human_needed".into(),
            description:
                "human needed: open https://github.com/login/device and enter the code WDJB-MJHT"
                    .into(),
        });
        let json = payload(&a, &a.render());
        let all = json.to_string();
        assert!(!all.contains("WDJB-MJHT"), "{all}");
        assert!(!all.contains("user_code"), "{all}");
        assert_eq!(json["challenge"]["kind"], "device_code");
        assert_eq!(json["challenge"]["page"], "https://github.com/login/device");
        assert_eq!(json["challenge"]["code_waiting"], true);
        let text = json["text"].as_str().unwrap();
        assert!(
            text.contains("open https://github.com/login/device and enter the code shown in the tray and by `tether challenge studio/github`"),
            "{text}"
        );
    }

    #[test]
    fn a_qr_payload_is_not_in_the_json() {
        let a = waiting(Challenge::Qr {
            payload: "2@SECRET-LINK-PAYLOAD".into(),
            expires_at: None,
        });
        let json = payload(&a, &a.render());
        assert!(!json.to_string().contains("SECRET-LINK-PAYLOAD"), "{json}");
        assert_eq!(json["challenge"]["kind"], "qr");
        assert_eq!(json["challenge"]["code_waiting"], true);
    }
}
