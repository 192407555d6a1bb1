//! Crash safety of the real binary: kill -9 during a commit storm, restart, and every
//! credential is intact; health reports what the vault repaired; SIGTERM exits 0.

use super::harness::{config_head, oidc_credential, pinned_client};
use crate::require;
use crate::util;
use crate::util::oidc::OidcProvider;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tether::agent::access::auth::{AuthStore, Role};
use tether::protocol::{CredentialState, HealthReport, ReauthStart};

/// A `tether agent serve` child process.
pub(super) struct Running {
    pub(super) child: Child,
    pub(super) base: String,
    pub(super) http: reqwest::Client,
    /// Every line the daemon wrote to stderr so far (its log).
    pub(super) log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The daemon certificate's SHA-256 fingerprint, as printed.
    pub(super) fingerprint: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed assertion must not leave a daemon behind (a no-op once it exited).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `tether agent serve` and waits for its fingerprint and listening lines.
pub(super) fn spawn(config: &std::path::Path) -> Running {
    spawn_logging(
        config,
        &std::env::var("TETHER_TEST_DAEMON_LOG").unwrap_or_else(|_| "warn".into()),
    )
}

/// [`spawn`] with the daemon's log at `level` (`TETHER_LOG`), kept in [`Running::log`].
pub(super) fn spawn_logging(config: &std::path::Path, level: &str) -> Running {
    let mut child = Command::new(util::tether_bin())
        .args(["agent", "serve", "--config"])
        .arg(config)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TETHER_LOG", level)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tether agent serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut fp = None;
        let echo = std::env::var_os("TETHER_TEST_DAEMON_LOG").is_some();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if echo {
                eprintln!("daemon: {line}");
            }
            sink.lock().unwrap().push(line.clone());
            if let Some(f) = line.strip_prefix("tls certificate fingerprint (sha-256): ") {
                fp = Some(f.trim().to_string());
            }
            if let Some(rest) = line.strip_prefix("listening on ") {
                let url = rest.split_whitespace().next().unwrap().to_string();
                let _ = tx.send((url, fp.clone()));
            }
        }
    });
    let (base, fp) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("daemon starts and prints its address");
    let fingerprint = fp.expect("fingerprint printed before listening");
    Running {
        child,
        base,
        http: pinned_client(&fingerprint),
        fingerprint,
        log,
    }
}

/// Authorizes `name` at the oidc fixture through the running daemon's re-auth routes.
pub(super) async fn bootstrap_running(d: &Running, device: &str, name: &str, oidc: &OidcProvider) {
    let start: ReauthStart = d
        .req(
            reqwest::Method::POST,
            &format!("/v1/credentials/{name}/reauth"),
            device,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let redirect_uri = "http://127.0.0.1:9/callback";
    let mut url = url::Url::parse(&start.authorize_url).unwrap();
    url.query_pairs_mut()
        .append_pair("redirect_uri", redirect_uri);
    let cb = oidc.consent(&url).await;
    let q: std::collections::HashMap<String, String> = cb.query_pairs().into_owned().collect();
    let r = d
        .req(reqwest::Method::POST, &format!("/v1/reauth/{}/complete", start.session), device)
        .json(&serde_json::json!({"code": q["code"], "state": q["state"], "redirect_uri": redirect_uri}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

impl Running {
    /// A request to `path` on this daemon with `token`.
    pub(super) fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
    }

    pub(super) async fn health(&self, token: &str) -> HealthReport {
        self.req(reqwest::Method::GET, "/v1/health", token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn kill_9_during_commit_storm_loses_nothing() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(crate::util::oidc::OidcOptions {
        // Two-second tokens: each credential is refreshed and committed every second
        // (forced checks are rate-limited, so they alone would not make a storm).
        access_token_ttl_secs: 2,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let names = ["alpha", "beta", "gamma"];
    let mut text = config_head(dir.path(), "").replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    for n in names {
        text.push_str(&oidc_credential(n, &oidc, "refresh_interval = \"1h\""));
    }
    let out = dir.path().join("alpha-token.json");
    text = text.replacen(
        "[credentials.overrides]",
        &format!("[[credentials.outputs]]\npath = \"{}\"\nformat = \"token_json\"\n[credentials.overrides]", out.display()),
        1,
    );
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, text).unwrap();
    let store = AuthStore::open(&dir.path().join("state")).unwrap();
    let (_, device) = store.create_token(Role::Device, "test").unwrap();
    let device = device.secret().to_string();

    let mut d = spawn(&config);
    for n in names {
        bootstrap_running(&d, &device, n, &oidc).await;
    }

    // Commit storm: every check refreshes and commits a new generation everywhere.
    let storm = storm_on(&d, &device, names);
    // Let a few generations land, then kill -9 in the middle of the storm.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while d
        .health(&device)
        .await
        .credentials
        .iter()
        .map(|c| c.generation)
        .min()
        .unwrap()
        < 4
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the storm made no commits"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.child.kill().unwrap(); // SIGKILL
    d.child.wait().unwrap();
    let _ = storm.await;

    // Damage one backup copy and wipe the output, as a crash and a careless agent might.
    let backup_dir = dir.path().join("backup").join("beta");
    let newest = std::fs::read_dir(&backup_dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().unwrap().to_string_lossy().ends_with(".json"))
        .max()
        .expect("beta has generations in the backup");
    std::fs::remove_file(&newest).unwrap();
    std::fs::write(&out, b"").unwrap();

    let mut d = spawn(&config);
    let health = d.health(&device).await;
    for n in names {
        let c = health.credentials.iter().find(|c| c.name == n).unwrap();
        assert!(c.generation >= 4, "{n} lost generations: {c:?}");
    }
    let repaired = health.repaired.join("\n");
    assert!(
        repaired.contains("beta"),
        "repairs not reported: {repaired}"
    );
    assert!(
        repaired.contains("alpha-token.json"),
        "output re-render not reported: {repaired}"
    );
    let rendered: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(rendered["access_token"].is_string());
    // The start-up refresh test proves every stored grant still works.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let h = d.health(&device).await;
        if h.credentials.iter().all(|c| c.state == CredentialState::Ok) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all ok after restart: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM in the middle of another storm: requests and commits in flight finish,
    // the process exits 0, and the next start finds every location consistent.
    let before: u64 = d
        .health(&device)
        .await
        .credentials
        .iter()
        .map(|c| c.generation)
        .sum();
    let storm = storm_on(&d, &device, names);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while d
        .health(&device)
        .await
        .credentials
        .iter()
        .map(|c| c.generation)
        .sum::<u64>()
        < before + 6
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second storm made no commits"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(d.child.id() as i32, libc::SIGTERM) };
    let status = d.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let _ = storm.await;
    let d = spawn(&config);
    let health = d.health(&device).await;
    let repairs: Vec<&String> = health
        .repaired
        .iter()
        .filter(|l| !l.starts_with("warning:"))
        .collect();
    assert!(
        repairs.is_empty(),
        "a graceful stop left work to repair: {repairs:?}"
    );
    let mut d = d;
    // SAFETY: as above.
    unsafe { libc::kill(d.child.id() as i32, libc::SIGTERM) };
    assert_eq!(d.child.wait().unwrap().code(), Some(0));
}

/// Checks every credential in a loop (each check refreshes and commits) until the daemon
/// stops answering.
fn storm_on(d: &Running, device: &str, names: [&'static str; 3]) -> tokio::task::JoinHandle<()> {
    let (http, base, device) = (d.http.clone(), d.base.clone(), device.to_string());
    tokio::spawn(async move {
        loop {
            let reqs = names.iter().map(|n| {
                http.post(format!("{base}/v1/credentials/{n}/check"))
                    .bearer_auth(&device)
                    .send()
            });
            if futures_util::future::join_all(reqs)
                .await
                .iter()
                .any(|r| r.is_err())
            {
                return;
            }
        }
    })
}
