//! HTTP client for one agent daemon: pinned-certificate TLS, typed errors, and the
//! Ready / Unauthorized / ProtocolMismatch / Unreachable classification. Used by the
//! companion (devices) and by `tether token` (the user's agent).
//!
//! Files: `mod.rs` (the client and the companion's calls), `broker.rs` (the user's
//! agent's calls: access tokens, the refusal report), `error.rs` ([`ClientError`],
//! [`ContactClass`]), [`sse`] (event-stream decoding); the pin itself is [`crate::pin`].
//!
//! With a fingerprint (from the pairing code), the TLS verifier accepts exactly the
//! certificate whose DER hashes to it — no CA, no name check — and still verifies the
//! handshake signatures with the ring provider's algorithms, so only the holder of that
//! certificate's key can talk to us. Without one, normal CA validation (webpki roots)
//! applies. Plain `http://` is accepted only for loopback hosts.

mod broker;
mod error;
pub mod sse;

pub use broker::BROKER_TIMEOUT;
pub use error::{ClientError, ContactClass, UpgradeSide};

use crate::pin::find_pin_mismatch;
pub use crate::pin::{pin_mismatch, pinned_tls_config, Fingerprint};
use crate::protocol::{
    self, ApiError, CredentialHealth, ErrorCode, Event, HealthReport, PairRequest, PairResponse,
    ReauthComplete, ReauthStart, SecretPut, API_PREFIX, PROTOCOL_VERSION,
};
use crate::secret::ApiToken;
use futures_util::{Stream, StreamExt};
use rustls::pki_types::CertificateDer;
use sse::SseDecoder;
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
    http: reqwest::Client,
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

    fn endpoint(&self, path: &str) -> Url {
        // `base` ends in '/', and `path` is relative ("v1/health"), so join appends.
        self.base
            .join(path.trim_start_matches('/'))
            .expect("invariant: a relative path joins onto a valid base url")
    }

    fn api(&self, rest: &str) -> Url {
        self.endpoint(&format!("{}/{}", API_PREFIX.trim_start_matches('/'), rest))
    }

    fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, url);
        match &self.token {
            Some(t) => rb.bearer_auth(t.secret()),
            None => rb,
        }
    }

    fn transport_error(&self, err: reqwest::Error) -> ClientError {
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

    async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        rb: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        self.send_json_within(what, rb, REQUEST_TIMEOUT).await
    }

    async fn send_json_within<T: serde::de::DeserializeOwned>(
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

    fn bad_reply(&self, what: &str, body: &[u8], e: serde_json::Error) -> ClientError {
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

    fn mismatch(&self, theirs: u32) -> ClientError {
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

    async fn check_status(
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

    /// `POST /v1/pair`.
    pub async fn pair(&self, req: &PairRequest) -> Result<PairResponse, ClientError> {
        let resp: PairResponse = self
            .send_json("pair", self.http.post(self.api("pair")).json(req))
            .await?;
        if resp.protocol != PROTOCOL_VERSION {
            return Err(self.mismatch(resp.protocol));
        }
        Ok(resp)
    }

    /// `GET /v1/health`, with the protocol version checked.
    pub async fn health(&self) -> Result<HealthReport, ClientError> {
        let report: HealthReport = self
            .send_json(
                "health",
                self.request(reqwest::Method::GET, self.api("health")),
            )
            .await?;
        if report.protocol != PROTOCOL_VERSION {
            return Err(self.mismatch(report.protocol));
        }
        Ok(report)
    }

    /// `POST /v1/credentials/{name}/reauth`.
    pub async fn start_reauth(&self, credential: &str) -> Result<ReauthStart, ClientError> {
        self.check_name(credential)?;
        self.send_json(
            "reauth",
            self.request(
                reqwest::Method::POST,
                self.api(&format!("credentials/{credential}/reauth")),
            ),
        )
        .await
    }

    /// `POST /v1/credentials/{name}/device-reauth`: the daemon starts a device-code
    /// re-authorization and posts its code as the credential's challenge; returns the
    /// credential's health (with that challenge).
    pub async fn device_reauth(&self, credential: &str) -> Result<CredentialHealth, ClientError> {
        self.check_name(credential)?;
        self.send_json(
            "device re-authorization",
            self.request(
                reqwest::Method::POST,
                self.api(&format!("credentials/{credential}/device-reauth")),
            ),
        )
        .await
    }

    /// `POST /v1/reauth/{session}/complete`; returns the credential's new health.
    pub async fn complete_reauth(
        &self,
        session: &str,
        body: &ReauthComplete,
    ) -> Result<CredentialHealth, ClientError> {
        let session: String = url::form_urlencoded::byte_serialize(session.as_bytes()).collect();
        self.send_json(
            "reauth completion",
            self.request(
                reqwest::Method::POST,
                self.api(&format!("reauth/{session}/complete")),
            )
            .json(body),
        )
        .await
    }

    /// `PUT /v1/credentials/{name}/secret`; returns the credential's new health.
    pub async fn put_secret(
        &self,
        credential: &str,
        body: &SecretPut,
    ) -> Result<CredentialHealth, ClientError> {
        self.check_name(credential)?;
        self.send_json(
            "secret push",
            self.request(
                reqwest::Method::PUT,
                self.api(&format!("credentials/{credential}/secret")),
            )
            .json(body),
        )
        .await
    }

    /// `POST /v1/credentials/{name}/check`: asks the daemon to check the credential now
    /// (a tray's "Check now"); returns its health afterwards.
    pub async fn check_now(&self, credential: &str) -> Result<CredentialHealth, ClientError> {
        self.check_name(credential)?;
        self.send_json(
            "check",
            self.request(
                reqwest::Method::POST,
                self.api(&format!("credentials/{credential}/check")),
            ),
        )
        .await
    }

    fn check_name(&self, credential: &str) -> Result<(), ClientError> {
        if protocol::valid_credential_name(credential) {
            Ok(())
        } else {
            Err(ClientError::BadUrl {
                url: credential.into(),
                reason: "not a credential name: use lower-case letters, digits, `_` and `-`".into(),
            })
        }
    }

    /// `GET /v1/events`: a stream of decoded events. The stream ends when the connection
    /// does; undecodable events are skipped (a newer daemon may send new event types).
    pub async fn events(
        &self,
    ) -> Result<impl Stream<Item = Result<Event, ClientError>> + Send + 'static, ClientError> {
        let resp = self
            .request(reqwest::Method::GET, self.api("events"))
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let resp = self.check_status(resp).await?;
        let me = self.clone();
        let bytes = resp.bytes_stream();
        let stream = futures_util::stream::unfold(
            (
                bytes,
                SseDecoder::default(),
                std::collections::VecDeque::<String>::new(),
                me,
            ),
            |(mut bytes, mut dec, mut queue, me)| async move {
                loop {
                    while let Some(data) = queue.pop_front() {
                        match serde_json::from_str::<Event>(&data) {
                            Ok(ev) => return Some((Ok(ev), (bytes, dec, queue, me))),
                            Err(e) => {
                                tracing::debug!(agent = %me.name, "skipping an event we cannot read: {e}")
                            }
                        }
                    }
                    match bytes.next().await? {
                        Ok(chunk) => match dec.feed(&chunk) {
                            Ok(done) => queue.extend(done),
                            Err(source) => {
                                let err = ClientError::Stream {
                                    agent: me.name.clone(),
                                    source,
                                };
                                return Some((Err(err), (bytes, SseDecoder::default(), queue, me)));
                            }
                        },
                        Err(e) => {
                            let err = me.transport_error(e);
                            return Some((Err(err), (bytes, dec, queue, me)));
                        }
                    }
                }
            },
        );
        Ok(stream)
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
