//! The real OpenID Connect provider (npm `oidc-provider`, tests/fixtures/oidc-provider) for
//! end-to-end tests: a launcher, a cookie-keeping "browser" that walks the consent chain,
//! and the fixture's loopback admin API (server-side revocation, event counters).
//!
//! ```ignore
//! require!(util::oidc::available(), util::oidc::MISSING);
//! let oidc = OidcProvider::start(OidcOptions { rotate_refresh_tokens: true, ..Default::default() });
//! let provider = oidc.provider();              // tether::provider::Provider pointed at it
//! let callback = oidc.consent(&authorize_url_with_redirect).await; // the loopback callback URL
//! let (status, page) = util::oidc::browser_get(&callback).await;   // deliver it to a listener
//! oidc.revoke_grant_for(&refresh_token).await;  // "the user revoked access"
//! assert_eq!(oidc.counters().await.refresh_grants, 1);
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether::oauth::ClientCredentials;
use tether::provider::{ClientAuth, Probe, ProbeMethod, Provider};
use tether::secret::{AccessToken, ClientSecret, RefreshToken};
use url::Url;

/// Why the fixture is missing, for `require!`.
pub const MISSING: &str =
    "the oidc-provider fixture: install Node 20+ and run `npm ci` in tests/fixtures/oidc-provider";

/// How long the server may take to print its first line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The fixture directory.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oidc-provider")
}

/// True when `node` runs and the fixture's dependencies are installed.
pub fn available() -> bool {
    fixture_dir()
        .join("node_modules/oidc-provider/package.json")
        .exists()
        && Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct OidcOptions {
    /// Rotate refresh tokens on every refresh (reuse of a rotated one revokes the grant).
    pub rotate_refresh_tokens: bool,
    /// Access token lifetime.
    pub access_token_ttl_secs: u64,
    /// Refresh token lifetime.
    pub refresh_token_ttl_secs: u64,
    /// Answer every consent with access_denied.
    pub decline_consent: bool,
    /// Refuse introspection from callers without HTTP Basic client authentication (401
    /// invalid_client), as strict RFC 7662 servers do with public clients.
    pub strict_introspection: bool,
    /// Device codes live this long (seconds).
    pub device_code_ttl_secs: u64,
    /// The Nth device-code poll that would be `authorization_pending` is `slow_down`
    /// instead (0: never).
    pub slow_down_at: u64,
}

impl Default for OidcOptions {
    fn default() -> Self {
        OidcOptions {
            rotate_refresh_tokens: false,
            access_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 14 * 24 * 3600,
            decline_consent: false,
            strict_introspection: false,
            device_code_ttl_secs: 600,
            slow_down_at: 0,
        }
    }
}

/// The fixture's event counters (`GET /admin/counters`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Counters {
    /// Successful refresh_token grants.
    pub refresh_grants: u64,
    /// Successful authorization_code grants.
    pub code_grants: u64,
    /// Failed token requests (`grant.error`).
    pub grant_errors: u64,
    /// Introspection requests.
    pub introspections: u64,
    /// Introspection requests refused for lack of client authentication (strict mode).
    #[serde(default)]
    pub introspections_refused: u64,
    /// Userinfo requests.
    pub userinfo: u64,
    /// RFC 7009 revocation requests.
    pub revocations: u64,
    /// Grants revoked (by the admin API or by refresh-token reuse detection).
    pub grants_revoked: u64,
    /// The real reasons of the last failed token requests.
    pub last_grant_errors: Vec<GrantError>,
}

/// One `grant.error` event.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GrantError {
    /// `authorization_code` / `refresh_token`.
    pub grant_type: Option<String>,
    /// The wire error.
    pub error: String,
    /// The server-side reason (e.g. "refresh token already used").
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct StartLine {
    issuer: String,
    clients: BTreeMap<String, ClientInfo>,
}

#[derive(Debug, Clone, Deserialize)]
struct ClientInfo {
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
}

/// A running oidc-provider on 127.0.0.1; killed on drop.
pub struct OidcProvider {
    child: Child,
    // Held open: the server exits when it closes (even if this process is killed).
    _stdin: ChildStdin,
    issuer: Url,
    clients: BTreeMap<String, ClientInfo>,
    stderr: Arc<Mutex<String>>,
    http: reqwest::Client,
}

impl OidcProvider {
    /// Starts the server on a free port and waits until discovery answers.
    pub fn start(opts: OidcOptions) -> OidcProvider {
        let mut cmd = Command::new("node");
        cmd.current_dir(fixture_dir())
            .arg("server.js")
            .args(["--port", "0"])
            .args([
                "--rotate",
                if opts.rotate_refresh_tokens {
                    "on"
                } else {
                    "off"
                },
            ])
            .args(["--access-ttl", &opts.access_token_ttl_secs.to_string()])
            .args(["--refresh-ttl", &opts.refresh_token_ttl_secs.to_string()])
            .args([
                "--consent",
                if opts.decline_consent {
                    "decline"
                } else {
                    "approve"
                },
            ])
            .args([
                "--introspection",
                if opts.strict_introspection {
                    "strict"
                } else {
                    "open"
                },
            ])
            .args(["--device-ttl", &opts.device_code_ttl_secs.to_string()])
            .args(["--slow-down", &opts.slow_down_at.to_string()])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NODE_ENV", "test")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .expect("spawn `node server.js` (is Node installed?)");
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let first = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                panic!(
                    "oidc-provider did not start ({other:?}); stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        let start: StartLine = serde_json::from_str(&first)
            .unwrap_or_else(|e| panic!("bad first line from oidc-provider `{first}`: {e}"));
        let issuer = Url::parse(&start.issuer).expect("issuer is a URL");
        let server = OidcProvider {
            child,
            _stdin: stdin,
            issuer,
            clients: start.clients,
            stderr,
            http: tether::oauth::http_client(),
        };
        server.wait_for_discovery();
        server
    }

    /// Polls the discovery document with a plain blocking request (usable from any
    /// context, async or not) until it answers 200.
    fn wait_for_discovery(&self) {
        let addr = format!(
            "127.0.0.1:{}",
            self.issuer.port().expect("the issuer has an explicit port")
        );
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let req = format!(
                    "GET /.well-known/openid-configuration HTTP/1.0\r\nHost: {addr}\r\n\r\n"
                );
                let mut answer = String::new();
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.1 200")
                {
                    return;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "oidc-provider discovery never answered; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the server wrote to stderr so far (for failure messages).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The issuer URL (`http://127.0.0.1:PORT`).
    pub fn issuer(&self) -> Url {
        self.issuer.clone()
    }

    fn endpoint(&self, path: &str) -> Url {
        self.issuer
            .join(path)
            .expect("fixture endpoint paths are valid")
    }

    /// The public (PKCE, no secret) client's id.
    pub fn client_id(&self) -> String {
        self.clients["public"].client_id.clone()
    }

    /// The public client.
    pub fn client(&self) -> ClientCredentials {
        ClientCredentials::public(self.client_id())
    }

    /// A confidential client that authenticates with HTTP Basic (`basic`) or in the body
    /// (`post`).
    pub fn confidential_client(&self, which: &str) -> ClientCredentials {
        let c = &self.clients[which];
        ClientCredentials::confidential(
            c.client_id.clone(),
            ClientSecret::new(
                c.client_secret
                    .clone()
                    .expect("confidential clients have a secret"),
            ),
        )
    }

    /// The `generic` preset pointed at this server (as discovery would build it), with the
    /// introspection probe. Client authentication Basic (ignored for the public client).
    pub fn provider(&self) -> Provider {
        let mut p = tether::provider::preset("generic").expect("generic preset");
        p.auth_url = Some(self.endpoint("/auth"));
        p.token_url = Some(self.endpoint("/token"));
        p.revoke_url = Some(self.endpoint("/token/revocation"));
        p.client_auth = ClientAuth::Basic;
        p.default_scopes = vec!["openid".into(), "offline_access".into()];
        p.probe = Some(Probe {
            method: ProbeMethod::Introspection,
            url: self.endpoint("/token/introspection"),
        });
        p
    }

    /// [`provider`](Self::provider) with the userinfo probe instead of introspection.
    pub fn provider_with_userinfo_probe(&self) -> Provider {
        let mut p = self.provider();
        p.probe = Some(Probe {
            method: ProbeMethod::UserInfo,
            url: self.endpoint("/me"),
        });
        p
    }

    /// Plays the browser on the consent pages: follows the provider's redirects (keeping
    /// cookies) from `authorize_url` (which carries the redirect_uri) and returns the URL it
    /// was finally sent to outside the provider: the loopback callback, not yet requested.
    pub async fn consent(&self, authorize_url: &Url) -> Url {
        let mut jar: BTreeMap<String, String> = BTreeMap::new();
        let mut url = authorize_url.clone();
        for _ in 0..20 {
            let cookie = jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let mut req = self.http.get(url.clone()).header("accept", "text/html");
            if !cookie.is_empty() {
                req = req.header("cookie", cookie);
            }
            let resp = req.send().await.expect("consent request to oidc-provider");
            for v in resp.headers().get_all("set-cookie") {
                let v = v.to_str().expect("ASCII cookie");
                let pair = v.split(';').next().unwrap_or_default();
                if let Some((k, val)) = pair.split_once('=') {
                    if val.is_empty() {
                        jar.remove(k.trim());
                    } else {
                        jar.insert(k.trim().to_owned(), val.to_owned());
                    }
                }
            }
            let status = resp.status();
            if !status.is_redirection() {
                let body = resp.text().await.unwrap_or_default();
                panic!("consent ended on HTTP {status} at {url} instead of a redirect: {body}");
            }
            let location = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .expect("redirect with a Location");
            let next = url.join(location).expect("Location is a URL");
            if next.origin() != self.issuer.origin() {
                return next;
            }
            url = next;
        }
        panic!("consent did not reach the client's redirect_uri in 20 redirects");
    }

    async fn admin(&self, path: &str, body: Option<serde_json::Value>) -> serde_json::Value {
        let url = self.endpoint(path);
        let req = match body {
            Some(b) => self.http.post(url).json(&b),
            None => self.http.get(url),
        };
        let resp = req.send().await.expect("fixture admin request");
        let status = resp.status();
        let json: serde_json::Value = resp.json().await.expect("fixture admin answers JSON");
        assert!(status.is_success(), "fixture admin {path}: {status} {json}");
        json
    }

    /// Revokes, server-side, the whole grant the refresh token belongs to.
    pub async fn revoke_grant_for(&self, refresh_token: &RefreshToken) {
        let n = self
            .admin(
                "/admin/revoke",
                Some(serde_json::json!({ "refresh_token": refresh_token.secret() })),
            )
            .await;
        assert_eq!(n["revoked"], 1, "one grant revoked");
    }

    /// The id of the grant an access token belongs to (ask while the token lives).
    pub async fn grant_of(&self, access_token: &AccessToken) -> String {
        let g = self
            .admin(
                "/admin/grant",
                Some(serde_json::json!({ "access_token": access_token.secret() })),
            )
            .await;
        g["grant_id"].as_str().expect("a grant id").to_string()
    }

    /// Revokes, server-side, the grant with this id (from [`grant_of`](Self::grant_of)).
    pub async fn revoke_grant(&self, grant_id: &str) {
        let n = self
            .admin(
                "/admin/revoke",
                Some(serde_json::json!({ "grant_id": grant_id })),
            )
            .await;
        assert_eq!(n["revoked"], 1, "one grant revoked");
    }

    /// Revokes, server-side, the whole grant the access token belongs to.
    pub async fn revoke_grant_for_access_token(&self, access_token: &AccessToken) {
        self.admin(
            "/admin/revoke",
            Some(serde_json::json!({ "access_token": access_token.secret() })),
        )
        .await;
    }

    /// Revokes every grant; returns how many.
    pub async fn revoke_all(&self) -> u64 {
        self.admin("/admin/revoke", Some(serde_json::json!({ "all": true })))
            .await["revoked"]
            .as_u64()
            .expect("revoked count")
    }

    /// Makes the consent step approve or decline from now on.
    pub async fn set_decline_consent(&self, decline: bool) {
        let mode = if decline { "decline" } else { "approve" };
        self.admin("/admin/consent", Some(serde_json::json!({ "mode": mode })))
            .await;
    }

    /// Makes the consent step approve, leaving `drop` unticked (granular consent).
    pub async fn set_dropped_scopes(&self, drop: &[&str]) {
        self.admin(
            "/admin/consent",
            Some(serde_json::json!({ "mode": "approve", "drop": drop })),
        )
        .await;
    }

    /// The event counters.
    pub async fn counters(&self) -> Counters {
        serde_json::from_value(self.admin("/admin/counters", None).await)
            .expect("counters have the documented shape")
    }

    /// Successful refresh grants so far.
    pub async fn refresh_count(&self) -> u64 {
        self.counters().await.refresh_grants
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Plays the browser's last step: requests the callback URL on the loopback listener and
/// returns the status and the page (which the listener sends only once the flow's outcome
/// is known, so run this concurrently with the rest of the flow).
pub async fn browser_get(url: &Url) -> (u16, String) {
    let resp = tether::oauth::http_client()
        .get(url.clone())
        .header("accept", "text/html")
        .send()
        .await
        .expect("request to the loopback listener");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}
