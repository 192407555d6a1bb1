//! RFC 8628 device authorization: ask the provider for a device code and a short user
//! code, then poll its token endpoint until the owner has typed the code on any device
//! (a phone will do) — no browser on this machine and no loopback listener.

use super::client::ClientCredentials;
use super::error::OAuthError;
use super::token::{form_request, token_request, token_set, TokenSet};
use crate::provider::{ErrorClass, Provider};
use crate::secret::RefreshToken;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The grant type of RFC 8628 section 3.4.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Poll interval when the provider names none (RFC 8628 section 3.2).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// What `slow_down` adds to the interval (RFC 8628 section 3.5).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The longest wait between polls, whatever the provider asks: a code lives about 15
/// minutes, and a poll every five minutes still finishes the flow.
pub const MAX_INTERVAL: Duration = Duration::from_secs(300);

/// The interval to poll at, from the answer's `interval` seconds (absent: the RFC's 5 s).
pub fn interval_from(answer: Option<u64>) -> Duration {
    answer
        .map(|s| Duration::from_secs(s.clamp(1, MAX_INTERVAL.as_secs())))
        .unwrap_or(DEFAULT_INTERVAL)
}

/// A device authorization in progress. The device code is a secret (it is redeemed for
/// tokens) and is kept in a [`RefreshToken`]-like newtype that redacts itself.
#[derive(Debug)]
pub struct DeviceAuthorization {
    /// The device code (secret; only the daemon sees it).
    pub device_code: RefreshToken,
    /// The code the owner types.
    pub user_code: String,
    /// The page where it is typed.
    pub verification_uri: String,
    /// The page with the code filled in, if the provider offers one.
    pub verification_uri_complete: Option<String>,
    /// When the codes stop working.
    pub expires_at: DateTime<Utc>,
    /// How long to wait between polls.
    pub interval: Duration,
}

/// One poll of the token endpoint.
#[derive(Debug)]
pub enum Poll {
    /// The owner has not finished yet.
    Pending,
    /// Poll less often: the interval grows by [`SLOW_DOWN_STEP`].
    SlowDown,
    /// Done: the tokens.
    Tokens(TokenSet),
    /// The owner declined, or the codes expired: start again.
    Ended(OAuthError),
}

/// Starts a device authorization for `scopes`.
pub async fn start(
    http: &reqwest::Client,
    provider: &Provider,
    client: &ClientCredentials,
    scopes: &[String],
) -> Result<DeviceAuthorization, OAuthError> {
    let url = provider.device_authorization_url.clone().ok_or_else(|| {
        OAuthError::new(
            &provider.name,
            ErrorClass::Misconfigured,
            "missing_endpoint",
            "no device authorization endpoint: set device_authorization_url in the overrides or use a provider whose discovery document has one",
        )
    })?;
    let mut form = Vec::new();
    if !scopes.is_empty() {
        form.push((
            provider.scope_param.clone(),
            scopes.join(&provider.scope_separator),
        ));
    }
    let obj = form_request(
        http,
        provider,
        client,
        url,
        form,
        &[],
        "device_authorization",
    )
    .await?;
    let text = |k: &str| obj.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let missing = |k: &str| {
        OAuthError::new(
            &provider.name,
            ErrorClass::TRANSIENT,
            "malformed_response",
            &format!("the device authorization answer has no {k}"),
        )
    };
    let device_code = text("device_code").ok_or_else(|| missing("device_code"))?;
    let expires_in = obj
        .get("expires_in")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| missing("expires_in"))?;
    Ok(DeviceAuthorization {
        device_code: RefreshToken::new(device_code),
        user_code: text("user_code").ok_or_else(|| missing("user_code"))?,
        // Some providers (Microsoft's v1 endpoints) say `verification_url`.
        verification_uri: text("verification_uri")
            .or_else(|| text("verification_url"))
            .ok_or_else(|| missing("verification_uri"))?,
        verification_uri_complete: text("verification_uri_complete"),
        expires_at: Utc::now() + chrono::Duration::seconds(expires_in.min(86_400) as i64),
        interval: interval_from(obj.get("interval").and_then(|v| v.as_u64())),
    })
}

impl DeviceAuthorization {
    /// After a `slow_down` answer: this and every later poll waits [`SLOW_DOWN_STEP`]
    /// longer (RFC 8628 section 3.5), up to [`MAX_INTERVAL`].
    pub fn slow_down(&mut self) {
        self.interval = (self.interval + SLOW_DOWN_STEP).min(MAX_INTERVAL);
    }
}

/// Polls the token endpoint once with the device code.
pub async fn poll(
    http: &reqwest::Client,
    provider: &Provider,
    client: &ClientCredentials,
    auth: &DeviceAuthorization,
) -> Result<Poll, OAuthError> {
    let form = vec![
        ("grant_type".to_owned(), DEVICE_CODE_GRANT.to_owned()),
        (
            "device_code".to_owned(),
            auth.device_code.secret().to_owned(),
        ),
    ];
    let secrets = [auth.device_code.secret()];
    match token_request(http, provider, client, form, &secrets, "device_code").await {
        Ok(obj) => Ok(Poll::Tokens(token_set(provider, obj)?)),
        Err(e) => match refusal(&e.info.code, e.class) {
            Refusal::Pending => Ok(Poll::Pending),
            Refusal::SlowDown => Ok(Poll::SlowDown),
            Refusal::Ended => Ok(Poll::Ended(e)),
            Refusal::Failed => Err(e),
        },
    }
}

/// What a token endpoint's error means while the owner is typing the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Not finished yet (or a passing failure): poll again at the same interval.
    Pending,
    /// Poll again, less often.
    SlowDown,
    /// The owner declined or the code expired: start again.
    Ended,
    /// Something else is wrong (the client, the endpoint): stop and say so.
    Failed,
}

fn refusal(code: &str, class: ErrorClass) -> Refusal {
    match code {
        "authorization_pending" => Refusal::Pending,
        "slow_down" => Refusal::SlowDown,
        // RFC 8628 says access_denied; Microsoft says authorization_declined (and
        // bad_verification_code for a code it no longer knows), GitHub
        // incorrect_device_code and device_flow_disabled.
        "access_denied"
        | "expired_token"
        | "authorization_declined"
        | "bad_verification_code"
        | "incorrect_device_code"
        | "device_flow_disabled" => Refusal::Ended,
        _ if matches!(class, ErrorClass::Transient { .. }) => Refusal::Pending,
        _ => Refusal::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(interval: Duration) -> DeviceAuthorization {
        DeviceAuthorization {
            device_code: RefreshToken::new("dc"),
            user_code: "WDJB-MJHT".into(),
            verification_uri: "https://example.com/device".into(),
            verification_uri_complete: None,
            expires_at: Utc::now(),
            interval,
        }
    }

    #[test]
    fn the_interval_is_the_providers_within_bounds_and_5_s_when_it_names_none() {
        assert_eq!(interval_from(None), Duration::from_secs(5));
        assert_eq!(interval_from(Some(8)), Duration::from_secs(8));
        assert_eq!(interval_from(Some(0)), Duration::from_secs(1));
        assert_eq!(interval_from(Some(86_400)), MAX_INTERVAL);
    }

    #[test]
    fn every_slow_down_adds_5_s_for_good_up_to_the_cap() {
        let mut a = auth(interval_from(Some(5)));
        a.slow_down();
        assert_eq!(a.interval, Duration::from_secs(10));
        a.slow_down();
        assert_eq!(a.interval, Duration::from_secs(15), "the step adds up");
        let mut a = auth(Duration::from_secs(298));
        a.slow_down();
        assert_eq!(a.interval, MAX_INTERVAL);
    }

    #[test]
    fn each_refusal_is_read_as_the_rfc_and_the_big_providers_mean_it() {
        let fatal = ErrorClass::Misconfigured;
        assert_eq!(refusal("authorization_pending", fatal), Refusal::Pending);
        assert_eq!(refusal("slow_down", fatal), Refusal::SlowDown);
        for ended in [
            "access_denied",
            "expired_token",
            "authorization_declined",
            "incorrect_device_code",
        ] {
            assert_eq!(refusal(ended, fatal), Refusal::Ended, "{ended}");
        }
        assert_eq!(refusal("invalid_client", fatal), Refusal::Failed);
        assert_eq!(refusal("timeout", ErrorClass::TRANSIENT), Refusal::Pending);
    }
}
