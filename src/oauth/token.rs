//! Token requests: exchanging an authorization code and spending a refresh token, with every
//! failure classified by the provider's dialect.
//!
//! Made with reqwest directly (see the module doc of `oauth` for why not oauth2's token
//! requests): form body, `Accept: application/json`, the preset's client authentication, a
//! bounded body, and the whole answer (status, `Retry-After`, body) handed to
//! [`classify_token_response_scrubbed`], which takes what was sent out of the provider's
//! error text before cutting it.

use super::client::ClientCredentials;
use super::error::OAuthError;
use super::pkce::PkceVerifier;
use crate::provider::{
    classify_token_response_scrubbed, ClientAuth, ErrorClass, PkceMode, Provider,
};
use crate::secret::{AccessToken, AuthorizationCode, RefreshToken};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;

/// Largest token-endpoint answer read; anything bigger is not a token response.
const MAX_BODY: usize = 256 * 1024;

/// The tokens a provider returned.
#[derive(Clone)]
pub struct TokenSet {
    /// The access token.
    pub access_token: AccessToken,
    /// The refresh token: the new one when the provider rotated it, else the one spent
    /// (refresh) or none (an exchange without offline access).
    pub refresh_token: Option<RefreshToken>,
    /// True when a refresh returned a refresh token different from the one spent: the old
    /// one may already be dead, so the new one must be stored before anything else.
    pub rotated: bool,
    /// Usually `Bearer`.
    pub token_type: String,
    /// When the access token ends (`expires_in`, or the preset's assumed lifetime when the
    /// answer has none).
    pub expires_at: Option<DateTime<Utc>>,
    /// When the refresh token ends, from `refresh_expires_in` / `refresh_token_expires_in`,
    /// or (on an exchange) the preset's known lifetime. `None` on a refresh means "not
    /// said": keep the previous value.
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// Granted scopes, if the provider said (split on spaces and commas).
    pub scopes: Vec<String>,
    /// Other fields of the answer (TikTok `open_id`, Slack `team`, ...). Fields whose name
    /// ends in `token` (such as `id_token`) are left out: they are credentials.
    pub extras: Map<String, Value>,
    /// The OpenID Connect `id_token`, when the answer had one: read for the account it
    /// names (`oauth::id_token`), never stored.
    pub id_token: Option<AccessToken>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("rotated", &self.rotated)
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("scopes", &self.scopes)
            .field("extras", &self.extras.keys().collect::<Vec<_>>())
            .field("id_token", &self.id_token)
            .finish()
    }
}

/// Exchanges an authorization code (with the verifier that started the flow, consumed
/// here) for tokens. `redirect_uri` must be the one the authorization URL carried.
pub async fn exchange(
    http: &reqwest::Client,
    provider: &Provider,
    client: &ClientCredentials,
    code: AuthorizationCode,
    verifier: PkceVerifier,
    redirect_uri: &str,
) -> Result<TokenSet, OAuthError> {
    let mut form = vec![
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        ("code".to_owned(), code.secret().to_owned()),
        ("redirect_uri".to_owned(), redirect_uri.to_owned()),
    ];
    if provider.pkce != PkceMode::None {
        form.push(("code_verifier".to_owned(), verifier.secret().to_owned()));
    }
    let secrets = [code.secret(), verifier.secret()];
    let obj = token_request(http, provider, client, form, &secrets, "authorization_code").await?;
    let mut set = token_set(provider, obj)?;
    if set.refresh_expires_at.is_none() && set.refresh_token.is_some() {
        set.refresh_expires_at = provider
            .refresh_token_lifetime
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| Utc::now() + d);
    }
    Ok(set)
}

/// Spends a refresh token. The result carries the rotated refresh token when the provider
/// sent one (`rotated` is then true), and the spent one when it did not.
pub async fn refresh(
    http: &reqwest::Client,
    provider: &Provider,
    client: &ClientCredentials,
    refresh_token: &RefreshToken,
) -> Result<TokenSet, OAuthError> {
    let form = vec![
        ("grant_type".to_owned(), "refresh_token".to_owned()),
        (
            "refresh_token".to_owned(),
            refresh_token.secret().to_owned(),
        ),
    ];
    let secrets = [refresh_token.secret()];
    let obj = token_request(http, provider, client, form, &secrets, "refresh_token").await?;
    let mut set = token_set(provider, obj)?;
    match &set.refresh_token {
        Some(new) => set.rotated = new.secret() != refresh_token.secret(),
        None => set.refresh_token = Some(refresh_token.clone()),
    }
    Ok(set)
}

pub(super) async fn token_request(
    http: &reqwest::Client,
    provider: &Provider,
    client: &ClientCredentials,
    form: Vec<(String, String)>,
    secrets: &[&str],
    grant_type: &'static str,
) -> Result<Map<String, Value>, OAuthError> {
    let token_url = provider.token_url.clone().ok_or_else(|| {
        OAuthError::new(
            &provider.name,
            ErrorClass::Misconfigured,
            "missing_endpoint",
            "no token endpoint: set token_url or use discovery",
        )
    })?;
    form_request(http, provider, client, token_url, form, secrets, grant_type).await
}

/// POSTs `form` to `token_url` with the client's authentication and classifies the answer
/// (the token endpoint, or RFC 8628's device authorization endpoint, which answers alike).
pub(super) async fn form_request(
    http: &reqwest::Client,
    provider: &Provider,
    client: &ClientCredentials,
    token_url: url::Url,
    mut form: Vec<(String, String)>,
    secrets: &[&str],
    grant_type: &'static str,
) -> Result<Map<String, Value>, OAuthError> {
    let secret = client
        .client_secret
        .as_ref()
        .filter(|_| provider.client_auth != ClientAuth::None);
    let mut request = http.post(token_url.clone());
    match (secret, provider.client_auth) {
        (Some(secret), ClientAuth::Basic) => {
            // RFC 6749 2.3.1: id and secret are form-urlencoded before Basic encoding.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            request = request.basic_auth(enc(&client.client_id), Some(enc(secret.secret())));
        }
        (Some(secret), _) => {
            form.push((provider.client_id_param.clone(), client.client_id.clone()));
            form.push(("client_secret".to_owned(), secret.secret().to_owned()));
        }
        (None, _) => form.push((provider.client_id_param.clone(), client.client_id.clone())),
    }
    tracing::debug!(provider = %provider.name, url = %token_url, grant_type, "token request");
    let mut all_secrets: Vec<&str> = secrets.to_vec();
    if let Some(s) = &client.client_secret {
        all_secrets.push(s.secret());
    }
    let response = request
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| transport_error(&provider.name, &e))?;
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let body = read_bounded(response)
        .await
        .map_err(|e| transport_error(&provider.name, &e))?;
    let result = match body {
        // Scrubbed before the text is cut: a secret split at the cut would not match later.
        Some(body) => classify_token_response_scrubbed(
            provider.classifier,
            status,
            retry_after,
            &body,
            &all_secrets,
        ),
        None => Err(crate::provider::Classified {
            class: ErrorClass::TRANSIENT,
            info: crate::protocol::ErrorInfo {
                code: "malformed_response".into(),
                description: format!("HTTP {status} with a body over {MAX_BODY} bytes"),
            },
        }),
    };
    result.map_err(|c| {
        // The classifier took what we sent out of the code and description already.
        let info = c.info;
        if is_normal_course(grant_type, &info.code) {
            // A device flow waiting for the owner: not a failure, and nothing is dead.
            tracing::debug!(provider = %provider.name, code = %info.code, "device code not answered yet");
        } else {
            tracing::info!(provider = %provider.name, grant_type, status, class = c.class.as_str(), code = %info.code, "token request failed");
        }
        OAuthError {
            provider: provider.name.clone(),
            class: c.class,
            info,
        }
    })
}

/// True for a device-code poll's answer that is the normal course of the flow
/// (`authorization_pending`, `slow_down`): logged at debug, never as a failure. Here, not
/// in `device.rs`, because the token request logs it and the device flow builds on this file.
fn is_normal_course(grant_type: &str, code: &str) -> bool {
    grant_type == "device_code" && matches!(code, "authorization_pending" | "slow_down")
}

/// Reads the body up to [`MAX_BODY`] bytes; `None` when it is longer.
async fn read_bounded(mut response: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// `Retry-After` in seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?;
    (at.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

/// A transport failure as a transient error; the URL is left out of the text (a Telegram
/// probe URL carries the bot token).
pub(crate) fn transport_error(provider: &str, e: &reqwest::Error) -> OAuthError {
    let code = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect_failed"
    } else if e.is_decode() || e.is_body() {
        "malformed_response"
    } else {
        "network"
    };
    let mut description = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        description.push_str(": ");
        description.push_str(&s.to_string());
        source = s.source();
    }
    // reqwest puts the URL in its Display: take it out.
    if let Some(url) = e.url() {
        description = description.replace(url.as_str(), "<url>");
    }
    OAuthError::new(
        provider,
        ErrorClass::TRANSIENT,
        code,
        &crate::text::clean_text(&description, 300),
    )
}

pub(super) fn token_set(
    provider: &Provider,
    mut obj: Map<String, Value>,
) -> Result<TokenSet, OAuthError> {
    let now = Utc::now();
    let take_str = |obj: &mut Map<String, Value>, k: &str| match obj.remove(k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    };
    let access_token = take_str(&mut obj, "access_token").ok_or_else(|| {
        OAuthError::new(
            &provider.name,
            ErrorClass::TRANSIENT,
            "malformed_response",
            "the token answer has no access_token",
        )
    })?;
    let refresh_token = take_str(&mut obj, "refresh_token").map(RefreshToken::new);
    let token_type = take_str(&mut obj, "token_type").unwrap_or_else(|| "Bearer".into());
    let secs = |v: Option<Value>| -> Option<i64> {
        match v? {
            Value::Number(n) => n.as_i64(),
            // Some providers send numbers as strings.
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    };
    let at = |s: Option<i64>| {
        s.filter(|s| *s > 0)
            .map(|s| now + chrono::Duration::seconds(s))
    };
    // No `expires_in`: the preset's assumed lifetime, so the broker stops serving a token the
    // provider has most likely expired (RFC 6749 5.1 makes the field optional).
    let expires_at = at(secs(obj.remove("expires_in"))).or_else(|| {
        provider
            .access_token_lifetime
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| now + d)
    });
    let refresh_expires_at =
        at(secs(obj.remove("refresh_expires_in")).or(secs(obj.remove("refresh_token_expires_in"))));
    let scopes = match obj.remove("scope") {
        Some(Value::String(s)) => s
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let id_token = match obj.get("id_token") {
        Some(Value::String(t)) => Some(AccessToken::new(t.clone())),
        _ => None,
    };
    // Leave credentials (id_token, Slack's bot/user tokens, ...) out of the extras.
    obj.retain(|k, _| !k.ends_with("token") && k != "authed_user");
    Ok(TokenSet {
        access_token: AccessToken::new(access_token),
        refresh_token,
        rotated: false,
        token_type,
        expires_at,
        refresh_expires_at,
        scopes,
        extras: obj,
        id_token,
    })
}
