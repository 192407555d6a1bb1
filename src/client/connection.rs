//! The connection to one agent daemon: [`AgentEndpoint`], [`AgentClient`] with its
//! pinned TLS, the URL rule, and the request helpers every call uses (timeouts, bounded
//! bodies, error replies, protocol mismatches). The calls are in `companion.rs` and
//! `broker.rs`.

use super::error::{ClientError, UpgradeSide};
use crate::pin::{find_pin_mismatch, pinned_tls_config, Fingerprint};
use crate::protocol::{self, ApiError, ErrorCode, API_PREFIX, PROTOCOL_VERSION};
use crate::secret::ApiToken;
use rustls::pki_types::CertificateDer;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Timeout for one ordinary request (health, pair, re-auth calls).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout for establishing a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach one agent.
#[derive(Debug, Clone)]
pub struct AgentEndpoint {
    /// Local name of the agent (used in messages).
    pub name: String,
    /// Base URL.
    pub url: String,
    /// Pinned fingerprint, if any (`None`: CA validation).
    pub fingerprint: Option<Fingerprint>,
}

/// A client for one agent.
#[derive(Clone)]
pub struct AgentClient {
    name: String,
    base: Url,
    pin: Option<Fingerprint>,
    /// The pinned client; `pair` uses it without the token.
    pub(super) http: reqwest::Client,
    token: Option<ApiToken>,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("name", &self.name)
            .field("base", &self.base.as_str())
            .field("pinned", &self.pin.is_some())
            .finish()
    }
}

/// True for `localhost`, `127.0.0.0/8` and `::1` (the one loopback rule,
/// [`crate::provider::is_loopback`]).
pub fn is_loopback(url: &Url) -> bool {
    crate::provider::is_loopback(url)
}

/// Largest reply body read from a daemon (a health report of hundreds of credentials is a
/// few hundred KiB); a longer one is refused rather than held in memory.
pub const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// Checks an agent base URL: `https://`, or `http://` on loopback only.
pub fn check_url(url: &str) -> Result<Url, ClientError> {
    let bad = |reason: &str| ClientError::BadUrl {
        url: url.into(),
        reason: reason.into(),
    };
    let mut parsed = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(&parsed) => {}
        "http" => {
            return Err(bad(
                "plain http is only allowed for loopback addresses; use https",
            ))
        }
        _ => return Err(bad("the scheme must be https")),
    }
    if parsed.host().is_none() {
        return Err(bad("it has no host"));
    }
    if !parsed.path().ends_with('/') {
        let p = format!("{}/", parsed.path());
        parsed.set_path(&p);
    }
    Ok(parsed)
}

impl AgentClient {
    /// A client for `endpoint`, authenticating with `token` (none when pairing).
    pub fn new(
        endpoint: &AgentEndpoint,
        token: Option<ApiToken>,
    ) -> Result<AgentClient, ClientError> {
        AgentClient::with_roots(endpoint, token, &[])
    }

    /// Like [`AgentClient::new`], trusting extra CA roots (DER) in addition to the webpki
    /// roots when no fingerprint is pinned (a private CA in front of the daemon).
    pub fn with_roots(
        endpoint: &AgentEndpoint,
        token: Option<ApiToken>,
        extra_roots: &[CertificateDer<'static>],
    ) -> Result<AgentClient, ClientError> {
        let base = check_url(&endpoint.url)?;
        let pin = endpoint.fingerprint.clone();
        let tls_err = |e: &dyn std::fmt::Display| ClientError::Tls {
            agent: endpoint.name.clone(),
            reason: e.to_string(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(&e))?;
        let tls = match &pin {
            Some(pin) => pinned_tls_config(pin).map_err(|e| tls_err(&e))?,
            None => {
                let mut roots = rustls::RootCertStore::empty();
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                for der in extra_roots {
                    roots.add(der.clone()).map_err(|e| tls_err(&e))?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        };
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tether-companion/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| tls_err(&e))?;
        Ok(AgentClient {
            name: endpoint.name.clone(),
            base,
            pin,
            http,
            token,
        })
    }

    /// The agent's local name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The base URL.
    pub fn url(&self) -> &Url {
        &self.base
    }

    pub(super) fn endpoint(&self, path: &str) -> Url {
        // `base` ends in '/', and `path` is relative ("v1/health"), so join appends.
        self.base
            .join(path.trim_start_matches('/'))
            .expect("invariant: a relative path joins onto a valid base url")
    }

    pub(super) fn api(&self, rest: &str) -> Url {
        self.endpoint(&format!("{}/{}", API_PREFIX.trim_start_matches('/'), rest))
    }

    pub(super) fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, url);
        match &self.token {
            Some(t) => rb.bearer_auth(t.secret()),
            None => rb,
        }
    }

    pub(super) fn transport_error(&self, err: reqwest::Error) -> ClientError {
        if let Some(m) = find_pin_mismatch(&err) {
            return ClientError::CertificateMismatch {
                agent: self.name.clone(),
                url: self.base.to_string(),
                expected: m.expected.clone(),
                got: m.got.clone(),
            };
        }
        ClientError::Unreachable {
            agent: self.name.clone(),
            url: self.base.to_string(),
            reason: crate::report::chain(&err),
        }
    }

    pub(super) async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        rb: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        self.send_json_within(what, rb, REQUEST_TIMEOUT).await
    }

    pub(super) async fn send_json_within<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        rb: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let resp = rb
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let resp = self.check_status(resp).await?;
        let bytes = match read_capped(resp, MAX_REPLY_BYTES).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Err(ClientError::BadReply {
                    agent: self.name.clone(),
                    what: what.into(),
                    reason: format!(
                        "the reply is larger than {MAX_REPLY_BYTES} bytes; is this a tether daemon?"
                    ),
                })
            }
            Err(e) => return Err(self.transport_error(e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| self.bad_reply(what, &bytes, e))
    }

    pub(super) fn bad_reply(&self, what: &str, body: &[u8], e: serde_json::Error) -> ClientError {
        // A reply we cannot parse may come from a daemon of another protocol version.
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
            if let Some(theirs) = v.get("protocol").and_then(|p| p.as_u64()) {
                if theirs as u32 != PROTOCOL_VERSION {
                    return self.mismatch(theirs as u32);
                }
            }
        }
        ClientError::BadReply {
            agent: self.name.clone(),
            what: what.into(),
            reason: e.to_string(),
        }
    }

    pub(super) fn mismatch(&self, theirs: u32) -> ClientError {
        ClientError::ProtocolMismatch {
            agent: self.name.clone(),
            ours: PROTOCOL_VERSION,
            theirs,
            upgrade: if theirs < PROTOCOL_VERSION {
                UpgradeSide::Agent
            } else {
                UpgradeSide::Companion
            },
        }
    }

    pub(super) async fn check_status(
        &self,
        resp: reqwest::Response,
    ) -> Result<reqwest::Response, ClientError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        // An error body is small; a huge one is no tether error and is not read whole.
        let bytes = read_capped(resp, MAX_ERROR_BYTES)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let api: Option<ApiError> = serde_json::from_slice(&bytes).ok();
        if status == reqwest::StatusCode::UNAUTHORIZED
            || api
                .as_ref()
                .is_some_and(|e| e.code == ErrorCode::Unauthorized)
        {
            return Err(ClientError::Unauthorized {
                agent: self.name.clone(),
            });
        }
        match api {
            Some(error) => Err(ClientError::Api {
                agent: self.name.clone(),
                status: status.as_u16(),
                error,
            }),
            // A 404 without our error shape: the server does not serve this protocol.
            None if status == reqwest::StatusCode::NOT_FOUND => Err(self.mismatch(0)),
            None => Err(ClientError::Unreachable {
                agent: self.name.clone(),
                url: self.base.to_string(),
                reason: format!("http {status} without a tether error body (a proxy in between?)"),
            }),
        }
    }

    pub(super) fn check_name(&self, credential: &str) -> Result<(), ClientError> {
        if protocol::valid_credential_name(credential) {
            Ok(())
        } else {
            Err(ClientError::BadUrl {
                url: credential.into(),
                reason: "not a credential name: use lower-case letters, digits, `_` and `-`".into(),
            })
        }
    }
}

/// Largest error body read (the daemon's `{code, message}` is well under 1 KiB).
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// Reads a body up to `max` bytes; `None` when it is longer (the rest is not read).
async fn read_capped(
    mut resp: reqwest::Response,
    max: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > max {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(check_url("http://127.0.0.1:7443").is_ok());
        assert!(check_url("http://localhost:1").is_ok());
        assert!(check_url("http://[::1]:1").is_ok());
        assert!(check_url("https://studio.example:7443").is_ok());
        let err = check_url("http://studio.example:7443")
            .unwrap_err()
            .to_string();
        assert!(err.contains("loopback"), "{err}");
        assert!(check_url("ftp://127.0.0.1").is_err());
    }

    #[test]
    fn api_urls_keep_the_base_path() {
        let ep = AgentEndpoint {
            name: "a".into(),
            url: "https://proxy.example/tether".into(),
            fingerprint: None,
        };
        let c = AgentClient::new(&ep, None).unwrap();
        assert_eq!(
            c.api("health").as_str(),
            "https://proxy.example/tether/v1/health"
        );
    }
}
