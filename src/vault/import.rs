//! Importing an existing token file: Google's `authorized_user` JSON (as written by
//! google-auth or gcloud) or a plain OAuth token JSON (a token endpoint's reply, with
//! `expires_at`/`expires_in`).

use super::record::Record;
use crate::secret::{AccessToken, RefreshToken};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

/// Which kind of file was imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportedFrom {
    /// Google's `authorized_user` JSON.
    AuthorizedUser,
    /// A plain token JSON.
    TokenJson,
}

/// Why a token file could not be imported. Never quotes the file's content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Not JSON.
    #[error("not a JSON file (syntax error at line {line} column {column}); pass a google-auth authorized_user file or a token JSON")]
    NotJson {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
    /// JSON, but not an object.
    #[error("the JSON is not an object; pass a google-auth authorized_user file or a token JSON")]
    NotAnObject,
    /// Neither token present.
    #[error("the file has neither an access token nor a refresh token (looked for refresh_token, access_token, token)")]
    NoToken,
    /// A field of the wrong type or form.
    #[error("field {field} is not {expected}")]
    BadField {
        /// The field.
        field: &'static str,
        /// What it should be.
        expected: &'static str,
    },
}

/// Parses a token file into a record for credential `name` (generation assigned on commit).
/// `provider` defaults to `google` for authorized_user files and `generic` otherwise.
pub fn parse_token_file(
    bytes: &[u8],
    name: &str,
    provider: Option<&str>,
) -> Result<(Record, ImportedFrom), ImportError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| ImportError::NotJson {
        line: e.line(),
        column: e.column(),
    })?;
    let Value::Object(mut obj) = value else {
        return Err(ImportError::NotAnObject);
    };
    let kind = if obj.get("type").and_then(Value::as_str) == Some("authorized_user")
        || (obj.contains_key("client_id") && !obj.contains_key("access_token"))
    {
        ImportedFrom::AuthorizedUser
    } else {
        ImportedFrom::TokenJson
    };
    let default_provider = match kind {
        ImportedFrom::AuthorizedUser => "google",
        ImportedFrom::TokenJson => "generic",
    };
    let mut r = Record::new(name, provider.unwrap_or(default_provider));
    r.refresh_token = take_string(&mut obj, "refresh_token")?.map(RefreshToken::new);
    r.access_token = match take_string(&mut obj, "access_token")? {
        Some(t) => Some(AccessToken::new(t)),
        None => take_string(&mut obj, "token")?.map(AccessToken::new),
    };
    if r.refresh_token.is_none() && r.access_token.is_none() {
        return Err(ImportError::NoToken);
    }
    if let Some(t) = take_string(&mut obj, "token_type")? {
        r.token_type = t;
    }
    r.account = take_string(&mut obj, "account")?.filter(|a| !a.is_empty());
    r.scopes = match obj.remove("scopes").or_else(|| obj.remove("scope")) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(ImportError::BadField {
                    field: "scopes",
                    expected: "a list of strings",
                }),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ImportError::BadField {
                field: "scopes",
                expected: "a string or a list of strings",
            })
        }
    };
    let now = Utc::now();
    r.expires_at = match (
        take_string(&mut obj, "expiry")?,
        take_string(&mut obj, "expires_at")?,
        obj.remove("expires_in"),
    ) {
        (Some(s), _, _) | (None, Some(s), _) => {
            Some(parse_time(&s).ok_or(ImportError::BadField {
                field: "expiry",
                expected: "a date like 2026-01-02T03:04:05Z",
            })?)
        }
        (None, None, Some(v)) => Some(
            now + chrono::Duration::seconds(v.as_i64().ok_or(ImportError::BadField {
                field: "expires_in",
                expected: "a number of seconds",
            })?),
        ),
        _ => None,
    };
    if let Some(v) = obj.remove("refresh_token_expires_in") {
        let secs = v.as_i64().ok_or(ImportError::BadField {
            field: "refresh_token_expires_in",
            expected: "a number of seconds",
        })?;
        r.refresh_expires_at = Some(now + chrono::Duration::seconds(secs));
    }
    // The client secret belongs in the daemon's config, not in every generation.
    obj.remove("client_secret");
    obj.remove("type");
    let extras: Map<String, Value> = obj.into_iter().filter(|(_, v)| !v.is_null()).collect();
    r.extras = extras;
    Ok((r, kind))
}

fn take_string(
    obj: &mut Map<String, Value>,
    key: &'static str,
) -> Result<Option<String>, ImportError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ImportError::BadField {
            field: key,
            expected: "a string",
        }),
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // google-auth writes naive UTC, sometimes with fractions, sometimes with a Z.
    let trimmed = s.trim_end_matches('Z');
    NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorized_user_file() {
        let (r, kind) = parse_token_file(
            br#"{"type":"authorized_user","client_id":"cid","client_secret":"cs","refresh_token":"1//r","token":"ya29","expiry":"2030-01-02T03:04:05.123456Z","scopes":["a","b"]}"#,
            "yt",
            None,
        )
        .unwrap();
        assert_eq!(kind, ImportedFrom::AuthorizedUser);
        assert_eq!(r.provider, "google");
        assert_eq!(r.refresh_token.unwrap().secret(), "1//r");
        assert_eq!(r.access_token.unwrap().secret(), "ya29");
        assert_eq!(r.scopes, vec!["a", "b"]);
        assert_eq!(r.extras["client_id"], "cid");
        assert!(!r.extras.contains_key("client_secret"));
        assert_eq!(
            r.expires_at
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string(),
            "2030-01-02T03:04:05"
        );
    }

    #[test]
    fn plain_token_file() {
        let (r, kind) = parse_token_file(
            br#"{"access_token":"at","refresh_token":"rt","token_type":"bearer","expires_in":3600,"scope":"x y","id_token":"idt"}"#,
            "gh",
            Some("github"),
        )
        .unwrap();
        assert_eq!(kind, ImportedFrom::TokenJson);
        assert_eq!(r.provider, "github");
        assert_eq!(r.scopes, vec!["x", "y"]);
        assert!(r.expires_at.unwrap() > Utc::now());
        assert_eq!(r.extras["id_token"], "idt");
    }

    #[test]
    fn bad_files_are_refused_without_quoting() {
        assert!(matches!(
            parse_token_file(b"SECRET", "x", None),
            Err(ImportError::NotJson { .. })
        ));
        assert!(matches!(
            parse_token_file(b"[1]", "x", None),
            Err(ImportError::NotAnObject)
        ));
        assert!(matches!(
            parse_token_file(br#"{"token_type":"x"}"#, "x", None),
            Err(ImportError::NoToken)
        ));
        let err = parse_token_file(
            br#"{"refresh_token":"SECRET","expiry":"SECRET"}"#,
            "x",
            None,
        )
        .unwrap_err();
        assert!(!err.to_string().contains("SECRET"));
    }
}
