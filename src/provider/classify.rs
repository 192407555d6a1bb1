//! Token-endpoint answer classification: success, or dead / transient / misconfigured with
//! the provider's own error code and description kept for display.
//!
//! The body decides, not only the status: GitHub answers errors with HTTP 200, Slack with
//! HTTP 200 and `ok:false`, X calls a dead refresh token `invalid_request`, Microsoft hides
//! the reason in an `AADSTS` number, Twitch uses `{status, message}`.

use super::policy_death;
use crate::protocol::ErrorInfo;
use crate::text::clean_text;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;

/// Which provider's error dialect to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Classifier {
    /// RFC 6749 section 5.2 only.
    Rfc6749,
    /// Google: `invalid_grant`, also with the `invalid_rapt` subtype.
    Google,
    /// X: `invalid_request` "Value passed for the token was invalid." means dead.
    X,
    /// GitHub: HTTP 200 with `error` (`bad_refresh_token`, `bad_verification_code`).
    #[serde(rename = "github")]
    GitHub,
    /// Slack: HTTP 200 `{"ok":false,"error":...}`.
    Slack,
    /// Microsoft identity platform: `AADSTS` codes in the description / `error_codes`.
    Microsoft,
    /// Twitch: `{"status":400,"message":"Invalid refresh token"}`.
    Twitch,
    /// TikTok: `{error, error_description, log_id}`, API errors as `{"error":{"code":...}}`.
    #[serde(rename = "tiktok")]
    TikTok,
}

/// What a failure means for the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The grant is gone: a human must re-authorize.
    Dead,
    /// Network, timeout, 5xx, rate limit, malformed answer: retry later.
    Transient {
        /// The provider's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The client or request is wrong (secret, redirect URI, scope): fix the config.
    Misconfigured,
}

impl ErrorClass {
    /// A transient class without a retry hint.
    pub const TRANSIENT: ErrorClass = ErrorClass::Transient { retry_after: None };

    /// `dead`, `transient` or `misconfigured`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Dead => "dead",
            ErrorClass::Transient { .. } => "transient",
            ErrorClass::Misconfigured => "misconfigured",
        }
    }
}

/// A classified failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// What it means.
    pub class: ErrorClass,
    /// The provider's code and description (or Tether's, for transport failures).
    pub info: ErrorInfo,
}

/// Longest provider description kept; the rest is cut (descriptions are shown in health).
const MAX_DESCRIPTION: usize = 300;

/// Classifies a token-endpoint answer: `Ok` with the token object (Slack's user-token
/// `authed_user` object lifted to the top level), or the classified failure.
pub fn classify_token_response(
    classifier: Classifier,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Map<String, Value>, Classified> {
    classify_token_response_scrubbed(classifier, status, retry_after, body, &[])
}

/// [`classify_token_response`] that takes `secrets` (what the request carried) out of the
/// provider's code and description before they are cut to length, so a provider that
/// echoes a token cannot leave a piece of it behind at the cut.
pub fn classify_token_response_scrubbed(
    classifier: Classifier,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    secrets: &[&str],
) -> Result<Map<String, Value>, Classified> {
    classify_raw(classifier, status, retry_after, body).map_err(|raw| Classified {
        class: raw.class,
        info: info_scrubbed(&raw.code, &raw.description, secrets),
    })
}

/// A failure before scrubbing and cutting.
struct Raw {
    class: ErrorClass,
    code: String,
    description: String,
}

fn classify_raw(
    classifier: Classifier,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Map<String, Value>, Raw> {
    let parsed: Option<Map<String, Value>> = serde_json::from_slice(body).ok();
    if status == 429 || status >= 500 {
        let (code, description) = parsed
            .as_ref()
            .and_then(|o| error_fields(classifier, o))
            .unwrap_or_else(|| (format!("http_{status}"), http_reason(status)));
        return Err(classified(
            ErrorClass::Transient { retry_after },
            &code,
            &description,
        ));
    }
    let Some(obj) = parsed else {
        return Err(classified(
            ErrorClass::TRANSIENT,
            "malformed_response",
            &format!("HTTP {status} with a body that is not a JSON object"),
        ));
    };
    if let Some((code, description)) = error_fields(classifier, &obj) {
        let class = class_for(classifier, &code, &description, &obj, retry_after);
        // A death a provider's policy caused is named, with who can stop it recurring.
        let rule: Option<policy_death::Rule> = match classifier {
            Classifier::Google => Some(policy_death::google),
            Classifier::Microsoft => Some(policy_death::microsoft),
            _ => None,
        };
        let description = match rule.and_then(|r| r(&code, &description, &obj)) {
            Some(p) if class == ErrorClass::Dead => p.describe(&description),
            _ => description,
        };
        return Err(classified(class, &code, &description));
    }
    if (200..300).contains(&status) {
        if obj.get("access_token").and_then(Value::as_str).is_some() {
            return Ok(obj);
        }
        // An RFC 8628 device authorization answer (same endpoint rules, no token yet);
        // `token_set` still refuses it where an access token is due.
        if obj.get("device_code").and_then(Value::as_str).is_some() {
            return Ok(obj);
        }
        // Slack user tokens (user_scope) arrive under `authed_user`.
        if let Some(user) = obj.get("authed_user").and_then(Value::as_object) {
            if user.get("access_token").and_then(Value::as_str).is_some() {
                return Ok(user.clone());
            }
        }
        return Err(classified(
            ErrorClass::TRANSIENT,
            "malformed_response",
            &format!("HTTP {status} without an access_token or an error"),
        ));
    }
    Err(classified(
        ErrorClass::TRANSIENT,
        &format!("http_{status}"),
        &format!("{} without an error code", http_reason(status)),
    ))
}

fn http_reason(status: u16) -> String {
    match status {
        429 => "HTTP 429 Too Many Requests".into(),
        500 => "HTTP 500 Internal Server Error".into(),
        502 => "HTTP 502 Bad Gateway".into(),
        503 => "HTTP 503 Service Unavailable".into(),
        504 => "HTTP 504 Gateway Timeout".into(),
        s => format!("HTTP {s}"),
    }
}

fn classified(class: ErrorClass, code: &str, description: &str) -> Raw {
    Raw {
        class,
        code: code.to_owned(),
        description: description.to_owned(),
    }
}

/// Shortest value [`scrub`] takes out: shorter strings are not tokens, and replacing them
/// would mangle ordinary words.
const MIN_SCRUBBED: usize = 8;

/// Replaces every occurrence of each secret in `s` by `[redacted]`.
pub(crate) fn scrub(s: &str, secrets: &[&str]) -> String {
    let mut out = s.to_owned();
    for secret in secrets.iter().filter(|x| x.len() >= MIN_SCRUBBED) {
        out = out.replace(secret, "[redacted]");
    }
    out
}

/// A provider's code and description for display: secrets taken out first, then control
/// characters replaced and the text cut (in that order: a secret cut in half by the
/// length limit would no longer match).
pub(crate) fn info_scrubbed(code: &str, description: &str, secrets: &[&str]) -> ErrorInfo {
    ErrorInfo {
        code: clean_text(&scrub(code, secrets), 80),
        description: clean_text(&scrub(description, secrets), MAX_DESCRIPTION),
    }
}

/// The error code and description in any of the dialects, or `None` for a non-error body.
fn error_fields(classifier: Classifier, obj: &Map<String, Value>) -> Option<(String, String)> {
    let str_of = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    // Slack: {"ok": false, "error": "invalid_refresh_token"}
    if obj.get("ok") == Some(&Value::Bool(false)) {
        let code = str_of(obj.get("error")).unwrap_or_else(|| "unknown_error".into());
        let description = str_of(obj.get("error_description"))
            .or_else(|| str_of(obj.get("description")))
            .unwrap_or_else(|| slack_description(&code).into());
        return Some((code, description));
    }
    match obj.get("error") {
        Some(Value::String(code)) => {
            let description = str_of(obj.get("error_description"))
                .or_else(|| str_of(obj.get("message")))
                .unwrap_or_default();
            return Some((code.clone(), description));
        }
        // TikTok API / Microsoft Graph / Spotify style: {"error": {"code"|"status", "message"}}
        Some(Value::Object(e)) => {
            let code = str_of(e.get("code"))
                .or_else(|| str_of(e.get(".tag")))
                .or_else(|| e.get("status").map(|s| format!("http_{s}")))
                .unwrap_or_else(|| "unknown_error".into());
            // TikTok sends {"error": {"code": "ok"}} on success.
            if code == "ok" {
                return None;
            }
            let description = str_of(e.get("message")).unwrap_or_default();
            return Some((code, description));
        }
        _ => {}
    }
    // Twitch: {"status": 400, "message": "Invalid refresh token"}
    if let (Some(status), Some(message)) = (
        obj.get("status").and_then(Value::as_u64),
        str_of(obj.get("message")),
    ) {
        if status >= 400 || classifier == Classifier::Twitch {
            return Some((format!("http_{status}"), message));
        }
    }
    None
}

fn slack_description(code: &str) -> &'static str {
    match code {
        "invalid_refresh_token" => "the refresh token is invalid",
        "token_revoked" => "the token was revoked",
        "token_expired" => "the token expired",
        "invalid_auth" => "the token is invalid",
        _ => "",
    }
}

fn class_for(
    classifier: Classifier,
    code: &str,
    description: &str,
    obj: &Map<String, Value>,
    retry_after: Option<Duration>,
) -> ErrorClass {
    let code_lc = code.to_ascii_lowercase();
    let desc_lc = description.to_ascii_lowercase();
    let transient = ErrorClass::Transient { retry_after };
    match classifier {
        // X calls a dead (revoked, rotated-away, expired) refresh token invalid_request.
        Classifier::X
            if code_lc == "invalid_request"
                && desc_lc.contains("value passed for the token was invalid") =>
        {
            return ErrorClass::Dead
        }
        Classifier::GitHub => match code_lc.as_str() {
            "bad_refresh_token" | "bad_verification_code" | "expired_token" => {
                return ErrorClass::Dead
            }
            "incorrect_client_credentials" | "redirect_uri_mismatch" | "unverified_user_email" => {
                return ErrorClass::Misconfigured
            }
            _ => {}
        },
        Classifier::Slack => match code_lc.as_str() {
            "invalid_refresh_token"
            | "token_revoked"
            | "token_expired"
            | "invalid_code"
            | "code_already_used"
            | "invalid_auth"
            | "account_inactive"
            | "not_authed" => return ErrorClass::Dead,
            "invalid_client_id"
            | "bad_client_secret"
            | "bad_redirect_uri"
            | "oauth_authorization_url_mismatch"
            | "invalid_grant_type"
            | "invalid_scope"
            | "invalid_arguments" => return ErrorClass::Misconfigured,
            "ratelimited"
            | "internal_error"
            | "fatal_error"
            | "service_unavailable"
            | "request_timeout" => return transient,
            _ => {}
        },
        Classifier::Twitch => {
            if desc_lc.contains("invalid refresh token") {
                return ErrorClass::Dead;
            }
            if desc_lc.contains("invalid client") || desc_lc.contains("missing client") {
                return ErrorClass::Misconfigured;
            }
        }
        Classifier::Microsoft => {
            if let Some(class) = microsoft_aadsts(description, obj) {
                return class;
            }
        }
        _ => {}
    }
    match code_lc.as_str() {
        // RFC 6749 5.2: the grant is invalid, expired, revoked or issued to another client.
        // Google adds the invalid_rapt subtype (re-authentication required): also dead.
        "invalid_grant"
        | "invalid_rapt"
        | "invalid_token"
        | "expired_token"
        | "access_denied"
        | "interaction_required"
        | "consent_required"
        | "login_required"
        | "access_token_invalid"
        | "refresh_token_invalid" => ErrorClass::Dead,
        "invalid_client"
        | "unauthorized_client"
        | "unsupported_grant_type"
        | "invalid_scope"
        | "redirect_uri_mismatch"
        | "invalid_redirect_uri"
        | "invalid_request"
        | "unsupported_response_type"
        | "incorrect_client_credentials"
        | "invalid_client_id" => ErrorClass::Misconfigured,
        "temporarily_unavailable"
        | "server_error"
        | "slow_down"
        | "rate_limited"
        | "rate_limit_exceeded"
        | "ratelimited" => transient,
        // An unknown code on a refused request: the provider would not give a token for
        // this grant. Treating it as dead puts the owner in front of the message (with the
        // provider's code) instead of retrying forever in silence.
        _ => ErrorClass::Dead,
    }
}

/// Microsoft: the AADSTS number in the description (`AADSTS700082: ...`) or `error_codes`.
fn microsoft_aadsts(description: &str, obj: &Map<String, Value>) -> Option<ErrorClass> {
    let from_desc = description.find("AADSTS").and_then(|i| {
        let digits: String = description[i + 6..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse::<u64>().ok()
    });
    let number = from_desc.or_else(|| {
        obj.get("error_codes")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_u64)
    })?;
    // learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
    Some(match number {
        // Client secret invalid / expired / missing, app not found, redirect URI mismatch,
        // invalid scope, malformed request.
        7000215 | 7000222 | 7000218 | 700016 | 50011 | 70011 | 90014 | 900144 | 9002313
        | 700054 | 70002 => ErrorClass::Misconfigured,
        // Throttled / service trouble.
        50196 | 90033 | 50001 => ErrorClass::TRANSIENT,
        // 700082 expired by inactivity, 70008 expired, 50173 grant revoked (password
        // change), 50076/50079/50078 MFA needed, 65001 consent missing, 70043 and 700084
        // expired by policy, 50057 account disabled, 54005 code already redeemed,
        // 50126 bad credentials, 70000 invalid grant.
        700082 | 70008 | 50173 | 50076 | 50079 | 50078 | 65001 | 70043 | 700084 | 50057 | 54005
        | 50126 | 70000 => ErrorClass::Dead,
        // Unknown numbers: the OAuth error code decides.
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(c: Classifier, status: u16, body: &str) -> ErrorClass {
        classify_token_response(c, status, None, body.as_bytes())
            .unwrap_err()
            .class
    }

    #[test]
    fn standard_codes() {
        let r = Classifier::Rfc6749;
        assert_eq!(
            class(r, 400, r#"{"error":"invalid_grant"}"#),
            ErrorClass::Dead
        );
        assert_eq!(
            class(r, 401, r#"{"error":"invalid_client"}"#),
            ErrorClass::Misconfigured
        );
        assert_eq!(class(r, 502, "<html>"), ErrorClass::TRANSIENT);
        assert_eq!(class(r, 200, "not json"), ErrorClass::TRANSIENT);
        assert!(classify_token_response(r, 200, None, br#"{"access_token":"a"}"#).is_ok());
    }

    #[test]
    fn microsoft_codes_win_over_the_oauth_code() {
        let m = Classifier::Microsoft;
        assert_eq!(
            class(
                m,
                401,
                r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#
            ),
            ErrorClass::Misconfigured
        );
        assert_eq!(
            class(
                m,
                400,
                r#"{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity."}"#
            ),
            ErrorClass::Dead
        );
    }

    #[test]
    fn descriptions_are_cut_and_cleaned() {
        let long = "x".repeat(1000);
        let body = format!(r#"{{"error":"invalid_grant","error_description":"{long}\n"}}"#);
        let c =
            classify_token_response(Classifier::Rfc6749, 400, None, body.as_bytes()).unwrap_err();
        assert!(c.info.description.chars().count() <= MAX_DESCRIPTION + 1);
        assert!(!c.info.description.contains('\n'));
    }

    #[test]
    fn secrets_are_scrubbed_before_the_cut_and_in_codes() {
        let secret = "1//refresh-token-0123456789abcdef";
        // The secret straddles the 300-character cut.
        let pad = "x".repeat(MAX_DESCRIPTION - 10);
        let body = format!(r#"{{"error":"bad {secret}","error_description":"{pad}{secret}"}}"#);
        let c = classify_token_response_scrubbed(
            Classifier::Rfc6749,
            400,
            None,
            body.as_bytes(),
            &[secret],
        )
        .unwrap_err();
        assert!(!c.info.code.contains("refresh-token"), "{:?}", c.info);
        assert!(!c.info.description.contains("1//refresh"), "{:?}", c.info);
        assert!(c.info.description.ends_with("[redacted]"), "{:?}", c.info);
    }
}
