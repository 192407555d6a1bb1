//! Liveness probes ("is this grant still alive?") and paste-token verification.
//!
//! A probe asks the provider about the current access token (or a pasted secret) without
//! minting or rotating anything. "Gone" means the provider refused this token: for OAuth
//! credentials the caller confirms a death with one refresh test (an access token can also
//! just have expired); for paste-kind credentials the token itself is dead.

use super::client::ClientCredentials;
use super::error::OAuthError;
use super::identity::{stable_id, Identity};
use super::token::{retry_after, transport_error};
use crate::protocol::ErrorInfo;
use crate::provider::{
    check_endpoint, info_scrubbed, ClientAuth, ErrorClass, ProbeMethod, Provider,
};
use crate::secret::AccessToken;
use crate::text::clean_text;
use serde_json::Value;

/// What a probe learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The provider accepted the token.
    Alive,
    /// The provider said the token (and likely the grant) is gone.
    Gone(ErrorInfo),
    /// Network, timeout, 5xx, 429 or an answer that says nothing: ask again later.
    Transient(ErrorInfo),
    /// This probe cannot work here: the endpoint refuses this client (401/403 from
    /// introspection), does not exist (404, 405), or answers something that is not a probe
    /// answer. It says nothing about the grant; the caller falls back to another probe or
    /// to refresh tests.
    Misconfigured(ErrorInfo),
    /// The provider has no probe.
    Unsupported,
}

impl ProbeOutcome {
    /// `alive`, `gone`, `transient`, `misconfigured` or `unsupported` (the wire form in
    /// `ProbeHealth`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ProbeOutcome::Alive => "alive",
            ProbeOutcome::Gone(_) => "gone",
            ProbeOutcome::Transient(_) => "transient",
            ProbeOutcome::Misconfigured(_) => "misconfigured",
            ProbeOutcome::Unsupported => "unsupported",
        }
    }
}

/// Probes `token` with the provider's declared probe. `client` is used only by RFC 7662
/// introspection (which authenticates the caller).
pub async fn probe(
    http: &reqwest::Client,
    provider: &Provider,
    client: &ClientCredentials,
    token: &AccessToken,
) -> ProbeOutcome {
    probe_account(http, provider, client, token).await.0
}

/// [`probe`], plus the account the provider named when the token is alive: its stable id
/// (GitHub `id`, OpenID `sub`, Telegram bot id, ...) and its label (GitHub login, Telegram
/// bot username, e-mail, ...).
pub async fn probe_account(
    http: &reqwest::Client,
    provider: &Provider,
    client: &ClientCredentials,
    token: &AccessToken,
) -> (ProbeOutcome, Option<Identity>) {
    let Some(probe) = &provider.probe else {
        return (ProbeOutcome::Unsupported, None);
    };
    // What the request carries; a provider that echoes it must not put it into health or
    // logs. Taken out before the text is cut (see `info`).
    let mut secrets = vec![token.secret()];
    if let Some(s) = &client.client_secret {
        secrets.push(s.secret());
    }
    let secrets = &secrets[..];
    if let Err(e) = check_endpoint(&probe.url) {
        return (
            ProbeOutcome::Misconfigured(info(secrets, "insecure_endpoint", &e.to_string())),
            None,
        );
    }
    let request = match probe.method {
        // POST with a form body, which tokeninfo accepts: a token in a URL query ends up in
        // proxy and server access logs.
        ProbeMethod::TokenInfo => http
            .post(probe.url.clone())
            .form(&[("access_token", token.secret())]),
        ProbeMethod::Introspection => introspection_request(
            http,
            &probe.url,
            provider,
            client,
            token.secret(),
            "access_token",
        ),
        ProbeMethod::UserInfo | ProbeMethod::BearerGet => {
            http.get(probe.url.clone()).bearer_auth(token.secret())
        }
        ProbeMethod::BearerPost => http
            .post(probe.url.clone())
            .bearer_auth(token.secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body("null"),
        ProbeMethod::SlackAuthTest => http.post(probe.url.clone()).bearer_auth(token.secret()),
        ProbeMethod::TelegramGetMe => match telegram_url(&probe.url, token) {
            // The bot token lives in the path; this URL is never logged or shown.
            Some(url) => http.get(url),
            None => {
                return (
                    ProbeOutcome::Misconfigured(info(
                        secrets,
                        "invalid_probe_url",
                        "the telegram api url cannot take a path; set probe_url to a url like https://api.telegram.org",
                    )),
                    None,
                )
            }
        },
    };
    tracing::debug!(provider = %provider.name, method = ?probe.method, "probe");
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return (
                ProbeOutcome::Transient(transport_error(&provider.name, &e).info),
                None,
            )
        }
    };
    let status = response.status().as_u16();
    let retry = retry_after(response.headers());
    let www_auth = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return (
                ProbeOutcome::Transient(transport_error(&provider.name, &e).info),
                None,
            )
        }
    };
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let outcome = read_answer(
        secrets,
        probe.method,
        status,
        www_auth.as_deref(),
        json.as_ref(),
        retry,
    );
    let account = match (&outcome, &json) {
        (ProbeOutcome::Alive, Some(j)) => account(probe.method, j),
        _ => None,
    };
    tracing::debug!(provider = %provider.name, status, outcome = outcome.as_str(), "probe answered");
    (outcome, account)
}

/// An RFC 7662 introspection request for `token`, authenticated as `client`.
fn introspection_request(
    http: &reqwest::Client,
    url: &url::Url,
    provider: &Provider,
    client: &ClientCredentials,
    token: &str,
    hint: &str,
) -> reqwest::RequestBuilder {
    let mut form = vec![
        ("token", token.to_owned()),
        ("token_type_hint", hint.to_owned()),
    ];
    let mut req = http.post(url.clone());
    match (&client.client_secret, provider.client_auth) {
        (Some(secret), ClientAuth::Basic) => {
            req = req.basic_auth(&client.client_id, Some(secret.secret()));
        }
        (Some(secret), ClientAuth::Post) => {
            form.push(("client_id", client.client_id.clone()));
            form.push(("client_secret", secret.secret().to_owned()));
        }
        _ => form.push(("client_id", client.client_id.clone())),
    }
    req.form(&form)
}

/// Asks the provider's RFC 7662 introspection endpoint (the probe, or a fallback probe)
/// whether a refresh token is still active: `Alive`, `Gone` (inactive), `Transient` or
/// `Misconfigured`; `None` when the provider has no introspection endpoint. Used after a
/// refresh was cut off, to learn whether the old refresh token was spent.
pub async fn introspect_refresh_token(
    http: &reqwest::Client,
    provider: &Provider,
    client: &ClientCredentials,
    token: &crate::secret::RefreshToken,
) -> Option<ProbeOutcome> {
    let probe = provider
        .probe
        .iter()
        .chain(provider.probe_fallbacks.iter())
        .find(|p| p.method == ProbeMethod::Introspection)?;
    let request = introspection_request(
        http,
        &probe.url,
        provider,
        client,
        token.secret(),
        "refresh_token",
    );
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Some(ProbeOutcome::Transient(
                transport_error(&provider.name, &e).info,
            ))
        }
    };
    let status = response.status().as_u16();
    let retry = retry_after(response.headers());
    let json: Option<Value> = match response.bytes().await {
        Ok(b) => serde_json::from_slice(&b).ok(),
        Err(e) => {
            return Some(ProbeOutcome::Transient(
                transport_error(&provider.name, &e).info,
            ))
        }
    };
    let secrets = [token.secret()];
    Some(read_answer(
        &secrets,
        ProbeMethod::Introspection,
        status,
        None,
        json.as_ref(),
        retry,
    ))
}

/// `GET <base>/bot<token>/getMe`, built from path segments: whatever the token holds
/// (`/`, `?`, `#`) is percent-encoded inside its one segment and cannot change the request.
/// `None` when the base URL cannot take a path (`mailto:`-like URLs).
fn telegram_url(base: &url::Url, token: &AccessToken) -> Option<url::Url> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .push(&format!("bot{}", token.secret()))
        .push("getMe");
    Some(url)
}

/// A probe's code and description for health: `secrets` (what the request carried) taken
/// out before the text is cleaned and cut.
fn info(secrets: &[&str], code: &str, description: &str) -> ErrorInfo {
    info_scrubbed(code, description, secrets)
}

/// The `error` / `error_description` (or `message`) of a JSON error body, in any dialect.
fn body_error(json: Option<&Value>) -> Option<(String, String)> {
    let j = json?;
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    match j.get("error") {
        Some(Value::String(code)) => Some((
            code.clone(),
            s(j.get("error_description"))
                .or(s(j.get("message")))
                .or(s(j.get("error_summary")))
                .unwrap_or_default(),
        )),
        Some(Value::Object(e)) => Some((
            s(e.get("code"))
                .or(s(e.get(".tag")))
                .or(e.get("status").map(|v| format!("http_{v}")))
                .unwrap_or_else(|| "error".into()),
            s(e.get("message"))
                .or(s(j.get("error_summary")))
                .unwrap_or_default(),
        )),
        _ => s(j.get("message"))
            .or(s(j.get("detail")))
            .or(s(j.get("description")))
            .map(|m| ("error".to_owned(), m)),
    }
}

/// `error="..."` from a `WWW-Authenticate: Bearer` header (RFC 6750 3).
fn www_authenticate_error(h: &str) -> Option<String> {
    let i = h.find("error=\"")? + 7;
    let rest = &h[i..];
    Some(rest[..rest.find('"')?].to_owned())
}

fn read_answer(
    secrets: &[&str],
    method: ProbeMethod,
    status: u16,
    www_auth: Option<&str>,
    json: Option<&Value>,
    retry: Option<std::time::Duration>,
) -> ProbeOutcome {
    let misconfigured = |what: String| {
        ProbeOutcome::Misconfigured(info(
            secrets,
            &format!("probe_http_{status}"),
            &format!("the probe endpoint answered {what}; it cannot check this grant"),
        ))
    };
    if status == 429 || status >= 500 {
        let what = match retry {
            Some(d) => format!("HTTP {status}; retry after {} s", d.as_secs()),
            None => format!("HTTP {status}"),
        };
        return ProbeOutcome::Transient(info(secrets, &format!("http_{status}"), &what));
    }
    match method {
        ProbeMethod::SlackAuthTest | ProbeMethod::TelegramGetMe => {
            let ok = json.and_then(|j| j.get("ok")).and_then(Value::as_bool);
            if status == 200 && ok == Some(true) {
                return ProbeOutcome::Alive;
            }
            let code = json
                .and_then(|j| j.get("error"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| {
                    json.and_then(|j| j.get("error_code"))
                        .map(|c| format!("http_{c}"))
                })
                .unwrap_or_else(|| format!("http_{status}"));
            let description = json
                .and_then(|j| j.get("description"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let gone = match method {
                // api.slack.com/methods/auth.test#errors
                ProbeMethod::SlackAuthTest => matches!(
                    code.as_str(),
                    "invalid_auth"
                        | "token_revoked"
                        | "token_expired"
                        | "account_inactive"
                        | "not_authed"
                ),
                // 401 Unauthorized for a revoked token, 404 for one that never existed.
                _ => status == 401 || status == 404,
            };
            if gone {
                ProbeOutcome::Gone(info(secrets, &code, description))
            } else {
                ProbeOutcome::Transient(info(secrets, &code, description))
            }
        }
        ProbeMethod::Introspection => {
            if status == 200 {
                return match json.and_then(|j| j.get("active")).and_then(Value::as_bool) {
                    Some(true) => ProbeOutcome::Alive,
                    Some(false) => ProbeOutcome::Gone(info(
                        secrets,
                        "inactive",
                        "the authorization server says the token is not active",
                    )),
                    None => misconfigured("HTTP 200 without an `active` field".into()),
                };
            }
            // A refused introspection is about our client, not the grant: RFC 7662 2.1
            // requires the caller to authenticate, which a public client cannot.
            let (code, d) =
                body_error(json).unwrap_or_else(|| (format!("http_{status}"), String::new()));
            if matches!(status, 400 | 401 | 403 | 404 | 405) {
                let d = if d.is_empty() {
                    String::new()
                } else {
                    format!(": {d}")
                };
                return misconfigured(format!("HTTP {status} ({code}{d})"));
            }
            ProbeOutcome::Transient(info(secrets, &code, &d))
        }
        ProbeMethod::TokenInfo
        | ProbeMethod::UserInfo
        | ProbeMethod::BearerGet
        | ProbeMethod::BearerPost => {
            let error = body_error(json);
            let dead_code = |c: &str| {
                matches!(
                    c,
                    "invalid_token"
                        | "access_token_invalid"
                        | "access_token_expired"
                        | "invalid_access_token"
                        | "expired_access_token"
                        | "InvalidAuthenticationToken"
                        | "invalid_grant"
                )
            };
            if (200..300).contains(&status) {
                if json.is_none() {
                    return misconfigured(format!("HTTP {status} with a body that is not JSON"));
                }
                // TikTok answers API errors with HTTP 200 as well; {"error":{"code":"ok"}} is fine.
                return match error {
                    Some((code, d)) if dead_code(&code) => {
                        ProbeOutcome::Gone(info(secrets, &code, &d))
                    }
                    _ => ProbeOutcome::Alive,
                };
            }
            if matches!(status, 404 | 405) {
                return misconfigured(format!("HTTP {status}"));
            }
            let header_code = www_auth.and_then(www_authenticate_error);
            // RFC 6750 3.1: the token is fine but lacks the scope this endpoint needs.
            if status == 403 && header_code.as_deref() == Some("insufficient_scope") {
                return misconfigured("HTTP 403 insufficient_scope".into());
            }
            let (code, description) = match (error, header_code) {
                (Some((c, d)), _) if c != "error" => (c, d),
                (Some((_, d)), Some(h)) => (h, d),
                (Some((_, d)), None) => (format!("http_{status}"), d),
                (None, Some(h)) => (h, String::new()),
                (None, None) => (format!("http_{status}"), String::new()),
            };
            // 401 is RFC 6750's answer for an invalid token; Google tokeninfo uses 400
            // invalid_token.
            if status == 401 || dead_code(&code) {
                ProbeOutcome::Gone(info(secrets, &code, &description))
            } else {
                ProbeOutcome::Transient(info(secrets, &code, &description))
            }
        }
    }
}

/// The account a live probe's answer names. The label is read as it always was (stored
/// pins from before ids were kept are labels, see `agent::human::account_pin`); a provider that
/// gives no id is pinned on its label, one that gives no label is shown by its id.
fn account(method: ProbeMethod, j: &Value) -> Option<Identity> {
    let label = account_label(method, j);
    let ids: &[&str] = match method {
        ProbeMethod::TelegramGetMe => &["/result/id"],
        // A user id is unique within its workspace only.
        ProbeMethod::SlackAuthTest => {
            return match (stable_id(j, &["/team_id"]), stable_id(j, &["/user_id"])) {
                (Some(team), Some(user)) => Some(Identity {
                    id: format!("{team}/{user}"),
                    label: label.unwrap_or_else(|| format!("{team}/{user}")),
                }),
                _ => label.map(Identity::label_only),
            };
        }
        ProbeMethod::Introspection => &["/sub"],
        // GitHub, Spotify, Microsoft Graph, Discord, Reddit: `id`; Google tokeninfo and
        // OpenID userinfo: `sub`; X: `data.id`; TikTok: `data.user.open_id`; Dropbox:
        // `account_id`; Twitch: `user_id`.
        _ => &[
            "/id",
            "/sub",
            "/data/id",
            "/data/user/open_id",
            "/account_id",
            "/user_id",
        ],
    };
    match (stable_id(j, ids), label) {
        (Some(id), Some(label)) => Some(Identity { id, label }),
        (Some(id), None) => Some(Identity {
            label: id.clone(),
            id,
        }),
        (None, label) => label.map(Identity::label_only),
    }
}

fn account_label(method: ProbeMethod, j: &Value) -> Option<String> {
    if method == ProbeMethod::TelegramGetMe {
        // The bot's id is what stays the same (a pasted token of another bot has another
        // one); the username is what the owner recognises.
        let id = j.pointer("/result/id").and_then(Value::as_i64)?;
        let name = j
            .pointer("/result/username")
            .and_then(Value::as_str)
            .map(|u| format!("@{} ", clean_text(u, 64)))
            .unwrap_or_default();
        return Some(format!("{name}(bot id {id})"));
    }
    let pointers: &[&str] = match method {
        ProbeMethod::TelegramGetMe => &["/result/username", "/result/first_name"],
        ProbeMethod::SlackAuthTest => &["/user", "/team"],
        ProbeMethod::Introspection => &["/username", "/sub"],
        _ => &[
            "/login",
            "/email",
            "/data/username",
            "/data/user/display_name",
            "/userPrincipalName",
            "/mail",
            "/display_name",
            "/name/display_name",
            "/preferred_username",
            "/name",
            "/sub",
        ],
    };
    pointers
        .iter()
        .find_map(|p| j.pointer(p).and_then(Value::as_str))
        .map(|s| clean_text(s, 120))
}

/// Verifies a pasted secret (Telegram bot token, GitHub PAT) before it is stored: first its
/// shape ([`Provider::paste_format`], no request made for a malformed one), then with the
/// provider's probe. Returns the account when the provider named one, `None` when the
/// provider has no probe. A refused token is a [`ErrorClass::Dead`] error; a malformed one
/// is [`ErrorClass::Misconfigured`] with code `invalid_token_format`.
pub async fn verify_paste(
    http: &reqwest::Client,
    provider: &Provider,
    secret: &AccessToken,
) -> Result<Option<Identity>, OAuthError> {
    // Before any request: the token goes into a URL (Telegram) and into the files the
    // agent reads, so a value that is not a token of this provider is never sent or stored.
    if let Err(why) = provider.paste_format.check(secret.secret()) {
        return Err(OAuthError::new(
            &provider.name,
            ErrorClass::Misconfigured,
            "invalid_token_format",
            &why.0,
        ));
    }
    let client = ClientCredentials::public(String::new());
    match probe_account(http, provider, &client, secret).await {
        (ProbeOutcome::Alive, account) => Ok(account),
        (ProbeOutcome::Unsupported, _) => Ok(None),
        (ProbeOutcome::Gone(i), _) => Err(OAuthError {
            provider: provider.name.clone(),
            class: ErrorClass::Dead,
            info: i,
        }),
        (ProbeOutcome::Transient(i), _) => Err(OAuthError {
            provider: provider.name.clone(),
            class: ErrorClass::TRANSIENT,
            info: i,
        }),
        (ProbeOutcome::Misconfigured(i), _) => Err(OAuthError {
            provider: provider.name.clone(),
            class: ErrorClass::Misconfigured,
            info: i,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_users_with_the_same_display_name_have_different_ids() {
        // Spotify's /v1/me: `display_name` is chosen by the user, `id` is Spotify's.
        let sam = |id: &str| serde_json::json!({"id": id, "display_name": "Sam"});
        let a = account(ProbeMethod::BearerGet, &sam("sam-1")).unwrap();
        let b = account(ProbeMethod::BearerGet, &sam("sam-2")).unwrap();
        assert_eq!((a.label.as_str(), b.label.as_str()), ("Sam", "Sam"));
        assert_ne!(a.id, b.id);
        // GitHub: a renamed login keeps its numeric id.
        let gh = account(
            ProbeMethod::BearerGet,
            &serde_json::json!({"login": "octocat", "id": 583231}),
        )
        .unwrap();
        assert_eq!((gh.id.as_str(), gh.label.as_str()), ("583231", "octocat"));
        let bot = account(
            ProbeMethod::TelegramGetMe,
            &serde_json::json!({"ok": true, "result": {"id": 7, "username": "b_bot"}}),
        )
        .unwrap();
        assert_eq!(
            (bot.id.as_str(), bot.label.as_str()),
            ("7", "@b_bot (bot id 7)")
        );
        let slack = account(
            ProbeMethod::SlackAuthTest,
            &serde_json::json!({"ok": true, "user": "sam", "team": "T", "team_id": "T1", "user_id": "U9"}),
        )
        .unwrap();
        assert_eq!(slack.id, "T1/U9");
        // No id at all: the label is all there is, and is pinned.
        let bare = account(ProbeMethod::BearerGet, &serde_json::json!({"login": "x"})).unwrap();
        assert_eq!(bare, Identity::label_only("x".into()));
    }
}
