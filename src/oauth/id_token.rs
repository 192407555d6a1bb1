//! The account an OpenID Connect `id_token` names, for identity pinning when the
//! provider's probe names none.
//!
//! What is checked, and why: the token comes straight from the token endpoint, over TLS
//! the daemon validated (or loopback), in answer to the daemon's own request, so OIDC Core
//! 3.1.3.7 (6) lets the client rely on TLS instead of the signature. Still checked: it is
//! a three-part JWT whose payload is JSON, `aud` names our client id (a token minted for
//! another client says nothing about this grant), `exp` has not passed (a minute of clock
//! skew allowed), and `iss` equals the configured issuer when there is one (presets have
//! none to compare). Not checked: the signature (above), `nonce` (the daemon sends none;
//! PKCE and `state` bind the code to its session), `azp`, `auth_time`.
//!
//! The identity is `iss` + `sub` (OIDC Core 5.7: the only claims a client may use as a
//! unique identifier of the user). The label is the e-mail only when `email_verified` is
//! true: an e-mail the provider has not verified (or not said it verified) could be
//! anyone's, so it is neither the identity nor shown as one; else `sub`.

use super::identity::Identity;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Why an `id_token` names no usable account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// Not a JWT with a JSON payload.
    #[error("the id_token is not a JWT with a JSON payload")]
    Malformed,
    /// Minted for another client.
    #[error("the id_token is for another client (aud does not name {client_id})")]
    WrongAudience {
        /// Our client id.
        client_id: String,
    },
    /// Expired.
    #[error("the id_token expired at {0}")]
    Expired(DateTime<Utc>),
    /// From another issuer than the configured one.
    #[error("the id_token is from {got}, not the configured issuer {want}")]
    WrongIssuer {
        /// The configured issuer.
        want: String,
        /// Its `iss`.
        got: String,
    },
}

/// The account `id_token` names for `client_id` (and `issuer` when configured); `None`
/// without a `sub`.
pub fn account(
    id_token: &str,
    client_id: &str,
    issuer: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<Identity>, IdTokenError> {
    let mut parts = id_token.split('.');
    let (Some(_header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenError::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| IdTokenError::Malformed)?;
    let claims: Value = serde_json::from_slice(&bytes).map_err(|_| IdTokenError::Malformed)?;
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err(IdTokenError::WrongAudience {
            client_id: client_id.to_string(),
        });
    }
    if let Some(exp) = claims.get("exp").and_then(Value::as_i64) {
        let end = DateTime::from_timestamp(exp, 0).ok_or(IdTokenError::Malformed)?;
        if end + chrono::Duration::seconds(60) < now {
            return Err(IdTokenError::Expired(end));
        }
    }
    if let Some(want) = issuer {
        let got = claims.get("iss").and_then(Value::as_str).unwrap_or("");
        if got.trim_end_matches('/') != want.trim_end_matches('/') {
            return Err(IdTokenError::WrongIssuer {
                want: want.to_string(),
                got: got.to_string(),
            });
        }
    }
    let clean = |s: &str| Some(crate::text::clean_text(s, 200)).filter(|s| !s.is_empty());
    let Some(sub) = claims.get("sub").and_then(Value::as_str).and_then(clean) else {
        return Ok(None);
    };
    // Some providers (Cognito, older Azure AD B2C) send the boolean as a string.
    let verified = matches!(claims.get("email_verified"), Some(Value::Bool(true)))
        || claims.get("email_verified").and_then(Value::as_str) == Some("true");
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .filter(|_| verified)
        .and_then(clean);
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .map(|i| i.trim_end_matches('/'))
        .unwrap_or("");
    Ok(Some(Identity {
        // `sub` is unique only within its issuer.
        id: format!("{iss} {sub}"),
        label: email.unwrap_or(sub),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.sig",
            b64(br#"{"alg":"RS256"}"#),
            b64(claims.to_string().as_bytes())
        )
    }

    #[test]
    fn names_iss_and_sub_with_the_verified_email_for_our_client_only() {
        let now = Utc::now();
        let exp = now.timestamp() + 600;
        let t = jwt(
            serde_json::json!({"iss": "https://id.example/", "aud": "me", "exp": exp,
            "sub": "1234", "email": "brand@example.com", "email_verified": true}),
        );
        assert_eq!(
            account(&t, "me", Some("https://id.example"), now),
            Ok(Some(Identity {
                id: "https://id.example 1234".into(),
                label: "brand@example.com".into()
            }))
        );
        assert!(matches!(
            account(&t, "other", None, now),
            Err(IdTokenError::WrongAudience { .. })
        ));
        assert!(matches!(
            account(&t, "me", Some("https://evil.example"), now),
            Err(IdTokenError::WrongIssuer { .. })
        ));
        let old = jwt(serde_json::json!({"aud": "me", "exp": now.timestamp() - 3600, "sub": "1"}));
        assert!(matches!(
            account(&old, "me", None, now),
            Err(IdTokenError::Expired(_))
        ));
        assert_eq!(
            account("not-a-jwt", "me", None, now),
            Err(IdTokenError::Malformed)
        );
        let no_sub = jwt(serde_json::json!({"aud": "me", "exp": exp, "email": "a@b"}));
        assert_eq!(account(&no_sub, "me", None, now), Ok(None));
    }

    #[test]
    fn an_unverified_email_is_neither_the_identity_nor_its_label() {
        let now = Utc::now();
        let exp = now.timestamp() + 600;
        // Two accounts claim the same e-mail; neither says it is verified (one says no).
        let said = |sub: &str, verified: Option<bool>| {
            let mut c = serde_json::json!({"iss": "https://id.example", "aud": ["x", "me"],
                "exp": exp, "sub": sub, "email": "ceo@example.com"});
            if let Some(v) = verified {
                c["email_verified"] = v.into();
            }
            account(&jwt(c), "me", None, now).unwrap().unwrap()
        };
        let (a, b) = (said("1111", None), said("2222", Some(false)));
        assert_eq!(
            a.label, "1111",
            "an e-mail without email_verified is not shown"
        );
        assert_eq!(b.label, "2222");
        assert_ne!(
            a.id, b.id,
            "the same unverified e-mail is not the same account"
        );
        assert!(!a.id.contains("ceo@"), "{a:?}");
        // "true" as a string counts as verified.
        let c = jwt(
            serde_json::json!({"iss": "https://id.example", "aud": "me", "exp": exp,
            "sub": "3333", "email": "c@example.com", "email_verified": "true"}),
        );
        let c = account(&c, "me", None, now).unwrap().unwrap();
        assert_eq!(c.label, "c@example.com");
    }
}
