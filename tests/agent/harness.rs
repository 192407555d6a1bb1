//! A real agent daemon for the tests: config in a temp dir, `Daemon::build` + `agent::serve`
//! on 127.0.0.1:0 with real TLS, a client that pins the daemon's certificate fingerprint,
//! and the helpers the scenarios share (seeding the vault, bootstrapping a grant through
//! the daemon's re-auth routes, an SSE reader, a webhook receiver, an SMTP server).

use serde::de::DeserializeOwned;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether::agent::access::auth::Role;
use tether::agent::{Daemon, ServeError};
use tether::protocol::{CredentialHealth, CredentialState, Event, HealthReport, ReauthStart};
use tether::vault::{Record, Vault, VaultConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An HTTPS client that trusts only the certificate with `fingerprint` (what the companion
/// does with the fingerprint from the pairing code).
pub fn pinned_client(fingerprint: &str) -> reqwest::Client {
    let pin = tether::pin::Fingerprint::parse(fingerprint).expect("a fingerprint");
    let cfg = tether::pin::pinned_tls_config(&pin).expect("pinned tls config");
    reqwest::Client::builder()
        .use_preconfigured_tls(cfg)
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(200)
        .build()
        .expect("client builds")
}

/// The credential block for a credential at the oidc-provider fixture.
pub fn oidc_credential(name: &str, oidc: &crate::util::oidc::OidcProvider, extra: &str) -> String {
    let issuer = oidc.issuer();
    let base = issuer.as_str().trim_end_matches('/');
    format!(
        r#"
[[credentials]]
name = "{name}"
provider = "generic"
client_id = "{client}"
scopes = ["openid", "offline_access"]
{extra}
[credentials.overrides]
auth_url = "{base}/auth"
token_url = "{base}/token"
revoke_url = "{base}/token/revocation"
client_auth = "basic"
probe_url = "{base}/token/introspection"
probe_method = "introspection"
"#,
        client = oidc.client_id(),
    )
}

/// A daemon under test.
pub struct TestAgent {
    /// Temp dir holding state, backups and config.
    pub dir: tempfile::TempDir,
    /// The daemon.
    pub daemon: Arc<Daemon>,
    /// `https://127.0.0.1:PORT`.
    pub base: String,
    /// Pinned client.
    pub http: reqwest::Client,
    /// A device token.
    pub device: String,
    /// An agent token.
    pub agent: String,
    stop: Option<oneshot::Sender<()>>,
    join: Option<JoinHandle<Result<(), ServeError>>>,
}

/// The top of an agent.toml for a test in `dir`.
pub fn config_head(dir: &Path, extra: &str) -> String {
    format!(
        r#"name = "studio"
listen = "127.0.0.1:0"
state_dir = "{state}"
backup_dirs = ["{backup}"]
{extra}
"#,
        state = dir.join("state").display(),
        backup = dir.join("backup").display(),
    )
}

/// Stores `record` in the vault of a daemon that is not running yet.
pub fn seed(dir: &Path, record: Record) {
    let cfg = VaultConfig::new(dir.join("state").join("vault"), vec![dir.join("backup")]);
    let (vault, _) = Vault::open(cfg).expect("open the test vault");
    vault.commit(record).expect("seed the vault");
}

impl TestAgent {
    /// Starts a daemon whose config is `config_head` + `body` in a new temp dir.
    pub async fn start(head_extra: &str, body: &str) -> TestAgent {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, head_extra, body, |_| {}).await
    }

    /// Like [`start`](Self::start), in `dir`, with `prepare` run before the daemon is built.
    pub async fn start_in(
        dir: tempfile::TempDir,
        head_extra: &str,
        body: &str,
        prepare: impl FnOnce(&Path),
    ) -> TestAgent {
        let text = format!("{}{}", config_head(dir.path(), head_extra), body);
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, &text).expect("write agent.toml");
        prepare(dir.path());
        Self::launch(dir).await
    }

    /// Stops the daemon gracefully and starts a new one on the same directory and config
    /// (what a `systemctl restart` does).
    pub async fn restart(mut self) -> TestAgent {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let join = self.join.take().expect("running");
        tokio::time::timeout(Duration::from_secs(30), join)
            .await
            .expect("daemon stops within 30 s")
            .expect("serve task does not panic")
            .expect("serve ends cleanly");
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        drop(self);
        Self::launch(dir).await
    }

    /// Builds and serves a daemon from `dir/agent.toml`.
    async fn launch(dir: tempfile::TempDir) -> TestAgent {
        let path = dir.path().join("agent.toml");
        let cfg = tether::agent::config::parse(&path).expect("test config parses");
        let daemon = Daemon::build(cfg, tether::oauth::http_client())
            .await
            .expect("daemon builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let fingerprint = daemon.tls().expect("tls on").fingerprint.to_hex();
        let (tx, rx) = oneshot::channel::<()>();
        let join = tokio::spawn(tether::agent::serve(listener, daemon.clone(), async move {
            let _ = rx.await;
        }));
        let (_, device) = daemon
            .auth()
            .create_token(Role::Device, "test laptop")
            .expect("device token");
        let (_, agent) = daemon
            .auth()
            .create_token(Role::Agent, "test agent")
            .expect("agent token");
        TestAgent {
            dir,
            daemon,
            base: format!("https://127.0.0.1:{port}"),
            http: pinned_client(&fingerprint),
            device: device.secret().to_string(),
            agent: agent.secret().to_string(),
            stop: Some(tx),
            join: Some(join),
        }
    }

    /// The config file path.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("agent.toml")
    }

    /// A request with an optional bearer token.
    pub fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r
    }

    /// GET with the device token, JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> T {
        let resp = self
            .req(reqwest::Method::GET, path, Some(&self.device))
            .send()
            .await
            .expect("request to the daemon");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert!(status.is_success(), "GET {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    /// The health report.
    pub async fn health(&self) -> HealthReport {
        self.get_json("/v1/health").await
    }

    /// One credential's health.
    pub async fn cred(&self, name: &str) -> CredentialHealth {
        self.health()
            .await
            .credentials
            .into_iter()
            .find(|c| c.name == name)
            .expect("credential in health")
    }

    /// Polls health until `name` is in `state` (or panics after `timeout`).
    pub async fn wait_state(
        &self,
        name: &str,
        state: CredentialState,
        timeout: Duration,
    ) -> CredentialHealth {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let c = self.cred(name).await;
            if c.state == state {
                return c;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "credential {name} did not reach {state} within {timeout:?}; now {c:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Authorizes `name` at the oidc fixture through the daemon's re-auth routes, as the
    /// companion would (the callback URL is read instead of served by a listener).
    pub async fn bootstrap(
        &self,
        name: &str,
        oidc: &crate::util::oidc::OidcProvider,
    ) -> CredentialHealth {
        let start: ReauthStart = self
            .post_json(&format!("/v1/credentials/{name}/reauth"), None)
            .await;
        let redirect_uri = "http://127.0.0.1:9/callback";
        let mut url = url::Url::parse(&start.authorize_url).expect("authorize url");
        url.query_pairs_mut()
            .append_pair("redirect_uri", redirect_uri);
        let callback = oidc.consent(&url).await;
        let q: std::collections::HashMap<String, String> =
            callback.query_pairs().into_owned().collect();
        self.post_json(
            &format!("/v1/reauth/{}/complete", start.session),
            Some(serde_json::json!({"code": q["code"], "state": q["state"], "redirect_uri": redirect_uri})),
        )
        .await
    }

    /// POST with the device token, JSON reply (must succeed).
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> T {
        let mut r = self.req(reqwest::Method::POST, path, Some(&self.device));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("request to the daemon");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert!(status.is_success(), "POST {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: {e}: {text}"))
    }

    /// GET the access token with the agent token: status and JSON body.
    pub async fn access_token(&self, name: &str) -> (u16, serde_json::Value) {
        let resp = self
            .req(
                reqwest::Method::GET,
                &format!("/v1/credentials/{name}/access-token"),
                Some(&self.agent),
            )
            .send()
            .await
            .expect("request to the daemon");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON body"))
    }

    /// Subscribes to `/v1/events`.
    pub async fn events(&self) -> EventStream {
        let resp = self
            .req(reqwest::Method::GET, "/v1/events", Some(&self.device))
            .send()
            .await
            .expect("events request");
        assert_eq!(resp.status(), 200);
        EventStream {
            resp,
            buf: String::new(),
        }
    }

    /// Stops the daemon gracefully and returns what `serve` returned.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let join = self.join.take().expect("running");
        tokio::time::timeout(Duration::from_secs(30), join)
            .await
            .expect("daemon stops within 30 s")
            .expect("serve task does not panic")
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A server-sent event stream.
pub struct EventStream {
    resp: reqwest::Response,
    buf: String,
}

impl EventStream {
    /// The next event (heartbeats included).
    pub async fn next(&mut self) -> Event {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue;
                }
                return serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("bad event {data}: {e}"));
            }
            let chunk = self
                .resp
                .chunk()
                .await
                .expect("event stream")
                .expect("stream open");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// A stream over an `/v1/events` response obtained elsewhere (another token).
    pub fn from_response(resp: reqwest::Response) -> EventStream {
        EventStream {
            resp,
            buf: String::new(),
        }
    }

    /// Resolves when the server ends the stream.
    pub async fn closed(&mut self) {
        while let Ok(Some(_)) = self.resp.chunk().await {}
    }

    /// The next state change of `name` to `state`, skipping everything else.
    pub async fn wait_for(
        &mut self,
        name: &str,
        state: CredentialState,
        timeout: Duration,
    ) -> Event {
        tokio::time::timeout(timeout, async {
            loop {
                let ev = self.next().await;
                if let Event::StateChanged { credential, .. } = &ev {
                    if credential.name == name && credential.state == state {
                        return ev;
                    }
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no event for {name} -> {state} within {timeout:?}"))
    }
}

/// A webhook receiver on 127.0.0.1 that keeps every request body.
pub struct Webhook {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Webhook {
    /// Starts the receiver on a free port.
    pub fn start() -> Webhook {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind webhook receiver");
        let port = server.server_addr().to_ip().expect("ip listener").port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let sink = bodies.clone();
        std::thread::spawn(move || {
            for mut req in server.incoming_requests() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                sink.lock().unwrap().push(body);
                let _ = req.respond(tiny_http::Response::from_string("ok"));
            }
        });
        Webhook {
            url: format!("http://127.0.0.1:{port}/hook"),
            bodies,
        }
    }

    /// Bodies received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }

    /// Waits for a body containing every one of `needles`.
    pub async fn wait_for(&self, needles: &[&str], timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(b) = self
                .bodies()
                .into_iter()
                .find(|b| needles.iter().all(|n| b.contains(n)))
            {
                return b;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "webhook got no body with {needles:?}; got {:?}",
                self.bodies()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A real SMTP server (Python aiosmtpd) on 127.0.0.1 that prints every message.
pub struct Smtp {
    /// Its port.
    pub port: u16,
    child: Child,
    out: Arc<Mutex<String>>,
}

/// True when `python3 -m aiosmtpd` can run.
pub fn smtp_available() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Smtp {
    /// Starts aiosmtpd on a free port and waits until it accepts connections.
    pub fn start() -> Smtp {
        // aiosmtpd binds by itself: find a free port, release it, hand it over.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let stdout = child.stdout.take().expect("piped");
        let out = Arc::new(Mutex::new(String::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "aiosmtpd did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Smtp { port, child, out }
    }

    /// Waits until the printed mail contains every one of `needles`.
    pub async fn wait_for(&self, needles: &[&str], timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let text = self.out.lock().unwrap().clone();
            if needles.iter().all(|n| text.contains(n)) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "smtp server got no mail with {needles:?}; got:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
