//! The one rule for every provider URL (issuer, overrides, discovery results, probe and
//! revocation endpoints, and the authorization URL the companion opens): https, or plain
//! http only to a loopback host (127.0.0.0/8, ::1, `localhost`).
//!
//! Tokens, codes and client secrets travel to these URLs; over plain http to another host
//! anyone on the path reads them. Loopback stays allowed for local test servers and
//! authorization servers on the same machine.

use url::{Host, Url};

/// Why a URL breaks the endpoint rule. The message names the URL and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// Not https, and not http to a loopback host.
    #[error("`{url}` is not an https url; use https (plain http is allowed only for 127.0.0.1, ::1 and localhost)")]
    NotHttps {
        /// The URL (provider endpoints carry no secrets in their text).
        url: String,
    },
    /// No host to talk to (`https:foo`, `file:///x`).
    #[error("`{url}` has no host; write it as https://host/path")]
    NoHost {
        /// The URL.
        url: String,
    },
}

/// True when `url`'s host is a loopback address or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        // `Url` lower-cases domains, so `LOCALHOST` arrives here as `localhost`.
        Some(Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// Checks `url` against the endpoint rule. `Url` lower-cases the scheme, so `HTTPS://`
/// and `Http://` are judged like their lower-case forms.
pub fn check_endpoint(url: &Url) -> Result<(), EndpointError> {
    if url.host().is_none() {
        return Err(EndpointError::NoHost {
            url: url.to_string(),
        });
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        _ => Err(EndpointError::NotHttps {
            url: url.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> bool {
        check_endpoint(&Url::parse(s).unwrap()).is_ok()
    }

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        assert!(ok("https://accounts.google.com/o/oauth2/v2/auth"));
        assert!(ok("HTTPS://ACCOUNTS.GOOGLE.COM/x"));
        assert!(ok("http://127.0.0.1:8080/token"));
        assert!(ok("http://127.8.9.10/token"));
        assert!(ok("http://[::1]:9000/token"));
        assert!(ok("http://localhost:3000/token"));
        assert!(ok("HTTP://LocalHost/token"));
        assert!(!ok("http://id.example/token"));
        assert!(!ok("http://128.0.0.1/token"));
        assert!(!ok("http://localhost.evil.example/token"));
        assert!(!ok("http://[::2]/token"));
        assert!(!ok("ftp://id.example/token"));
        assert!(!ok("file:///etc/passwd"));
        assert!(!ok("javascript:alert(1)"));
    }
}
