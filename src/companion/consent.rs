//! The companion's check of an authorization URL before the browser opens it.
//!
//! The URL comes from the daemon; a daemon that was taken over (or a device token used
//! from elsewhere to start a re-auth) could send the owner to a look-alike consent page.
//! So the companion opens only URLs that pass [`inspect`]: the one endpoint rule (https,
//! http only on loopback), a `state` equal to the session's, PKCE S256, and a client id;
//! and it remembers each credential's authorization server (host, path, client id) at the
//! first authorization ([`AuthorizationPin`], kept in `companion.toml`), so a change is
//! refused until the owner accepts it.

use crate::oauth::AuthorizationUrl;
use crate::provider::check_endpoint;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The parts of an authorization URL that identify the authorization server and client,
/// remembered per credential at its first authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationPin {
    /// Host, with the port when the URL names one (`accounts.google.com`, `127.0.0.1:9000`).
    pub host: String,
    /// Path of the authorization endpoint.
    pub path: String,
    /// The OAuth client id (`client_id`, or TikTok's `client_key`).
    pub client_id: String,
}

impl fmt::Display for AuthorizationPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{} (client {})", self.host, self.path, self.client_id)
    }
}

/// What the owner is about to be sent to: shown before the browser opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentTarget {
    /// Authorization server and client.
    pub server: AuthorizationPin,
    /// Scopes the consent page will ask for (may be empty: the provider's defaults).
    pub scopes: Vec<String>,
}

/// Why an authorization URL is not opened, in words for the owner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsafe(pub String);

/// Reads `url` (the daemon's `authorize_url`) and checks it; `state` is the session's.
/// The error says what is wrong, in words for the owner.
pub fn inspect(url: &str, state: &str) -> Result<(AuthorizationUrl, ConsentTarget), Unsafe> {
    let parsed = AuthorizationUrl::parse(url).map_err(|e| Unsafe(e.info.description))?;
    let u = parsed.url();
    check_endpoint(u).map_err(|e| Unsafe(crate::report::chain(&e)))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err(Unsafe(
            "it carries a user name before the host, which only disguises the host".into(),
        ));
    }
    let param = |names: &[&str]| {
        u.query_pairs()
            .find(|(k, _)| names.contains(&k.as_ref()))
            .map(|(_, v)| v.into_owned())
    };
    match param(&["state"]) {
        Some(s) if s == state => {}
        Some(_) => {
            return Err(Unsafe(
                "its `state` is not the one of this sign-in session".into(),
            ))
        }
        None => {
            return Err(Unsafe(
                "it has no `state`, so a forged callback could not be told apart".into(),
            ))
        }
    }
    if param(&["code_challenge_method"]).as_deref() != Some("S256")
        || !matches!(param(&["code_challenge"]), Some(c) if !c.is_empty())
    {
        return Err(Unsafe(
            "it does not use PKCE with S256 (`code_challenge_method=S256`), so a stolen code could be used"
                .into(),
        ));
    }
    let client_id = param(&["client_id", "client_key"])
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Unsafe("it names no client (`client_id`)".into()))?;
    let host = match (u.host_str(), u.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        // check_endpoint refused URLs without a host.
        (None, _) => return Err(Unsafe("it has no host".into())),
    };
    let scopes = param(&["scope", "user_scope"])
        .map(|s| {
            s.split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let target = ConsentTarget {
        server: AuthorizationPin {
            host,
            path: u.path().to_owned(),
            client_id,
        },
        scopes,
    };
    Ok((parsed, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "https://accounts.google.com/o/oauth2/v2/auth?response_type=code&client_id=123.apps&state=st&code_challenge=abc&code_challenge_method=S256&scope=openid+https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fyoutube.upload";

    #[test]
    fn a_good_url_yields_host_path_client_and_scopes() {
        let (_, t) = inspect(OK, "st").unwrap();
        assert_eq!(t.server.host, "accounts.google.com");
        assert_eq!(t.server.path, "/o/oauth2/v2/auth");
        assert_eq!(t.server.client_id, "123.apps");
        assert_eq!(
            t.scopes,
            ["openid", "https://www.googleapis.com/auth/youtube.upload"]
        );
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        let cases = [
            (OK.replace("https://", "http://"), "https"),
            (
                OK.replace("accounts.google.com", "x@accounts.google.com"),
                "user name",
            ),
            (OK.replace("&state=st", ""), "state"),
            (OK.replace("state=st", "state=other"), "state"),
            (
                OK.replace("code_challenge_method=S256", "code_challenge_method=plain"),
                "S256",
            ),
            (OK.replace("&code_challenge=abc", ""), "S256"),
            (OK.replace("client_id=123.apps", "client_id="), "client"),
            ("javascript:alert(1)".to_owned(), "http"),
            (format!("{OK}&redirect_uri=http://evil"), "redirect_uri"),
        ];
        for (url, why) in cases {
            let err = inspect(&url, "st").unwrap_err();
            assert!(err.0.contains(why), "{url}: {err}");
        }
        // Loopback http stays allowed (local authorization servers, the test provider).
        let local = OK.replace("https://accounts.google.com", "http://127.0.0.1:9000");
        assert_eq!(
            inspect(&local, "st").unwrap().1.server.host,
            "127.0.0.1:9000"
        );
    }
}
