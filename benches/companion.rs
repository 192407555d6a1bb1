//! Companion benchmarks, printed not asserted:
//! - time from the daemon marking a credential dead (its `since`) to the companion's
//!   notifier call, following `/v1/events` and with polling only (2 s interval);
//! - resident memory of `tether watch` with 10 paired agents.
//!
//! Needs node and `npm ci` in tests/fixtures/oidc-provider (the real OAuth server).
//! Run: `cargo bench --bench companion`.

#[path = "../tests/util/oidc.rs"]
#[allow(dead_code)]
mod oidc;

use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tether::companion::notice::{Notice, NoticeKind};
use tether::companion::notifier::{ActionSender, Notifier, NotifyError};
use tether::companion::pair::PairOptions;
use tether::companion::reauth::{Opener, ReauthOptions};
use tether::companion::secrets::Backend;
use tether::companion::watcher::{WatchEvent, WatchTiming};
use tether::companion::Companion;
use tether::protocol::CredentialState;

const ROUNDS: usize = 5;

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tether(config_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", config_dir)
        .env("TETHER_CONFIG_DIR", config_dir)
        .env("TETHER_SECRETS", "file")
        .env("TETHER_LOG", "warn");
    cmd
}

/// Starts `tether agent serve` with `body` appended to its config; returns (process, url).
fn serve(dir: &Path, body: &str) -> (KillOnDrop, String) {
    let cfg = format!(
        "name = \"studio\"\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\nbackup_dirs = [\"{}\"]\n{body}",
        dir.join("state").display(),
        dir.join("backup").display()
    );
    std::fs::write(dir.join("agent.toml"), cfg).unwrap();
    let log = dir.join("serve.log");
    let child = tether(dir)
        .args(["agent", "serve", "--config"])
        .arg(dir.join("agent.toml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start tether agent serve");
    let child = KillOnDrop(child);
    for _ in 0..600 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(url) = text
            .split_whitespace()
            .find(|w| w.starts_with("https://127.0.0.1:"))
        {
            return (child, url.to_string());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "daemon did not start: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

fn pairing_code(dir: &Path, url: &str) -> String {
    let out = tether(dir)
        .args(["agent", "pair", "--no-qr", "--config"])
        .arg(dir.join("agent.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let link = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("tether://pair?"))
        .expect("link");
    let mut code = tether::protocol::PairingCode::parse(link).unwrap();
    code.url = url.to_string();
    code.to_link()
}

/// Records when the notifier is called for a death.
struct Stopwatch(tokio::sync::mpsc::UnboundedSender<(DateTime<Utc>, Notice)>);
impl Notifier for Stopwatch {
    fn notify(&self, notice: &Notice, _: &ActionSender) -> Result<(), NotifyError> {
        let _ = self.0.send((Utc::now(), notice.clone()));
        Ok(())
    }
}

/// The browser: consents at the provider and delivers the callback.
struct Consent(Arc<oidc::OidcProvider>);
impl Opener for Consent {
    fn open(&self, url: &str) -> Result<(), tether::companion::reauth::OpenError> {
        let (p, url) = (
            self.0.clone(),
            url::Url::parse(url).map_err(tether::companion::reauth::OpenError::new)?,
        );
        tokio::spawn(async move {
            let cb = p.consent(&url).await;
            oidc::browser_get(&cb).await;
        });
        Ok(())
    }
}

fn summary(label: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    println!(
        "death → notifier call, {label}: min {:.1} ms, median {:.1} ms, max {:.1} ms ({} rounds)",
        ms(&v[0]),
        ms(&v[v.len() / 2]),
        ms(&v[v.len() - 1]),
        v.len()
    );
}

async fn latency(use_events: bool, label: &str) {
    let provider = Arc::new(oidc::OidcProvider::start(oidc::OidcOptions::default()));
    let dir = tempfile::tempdir().unwrap();
    let issuer = provider.issuer();
    let base = issuer.as_str().trim_end_matches('/');
    let body = format!(
        "[[credentials]]\nname = \"youtube\"\nprovider = \"generic\"\nclient_id = \"{}\"\nscopes = [\"openid\", \"offline_access\"]\nprobe_interval = \"15s\"\n[credentials.overrides]\nauth_url = \"{base}/auth\"\ntoken_url = \"{base}/token\"\nrevoke_url = \"{base}/token/revocation\"\nclient_auth = \"basic\"\nprobe_url = \"{base}/token/introspection\"\nprobe_method = \"introspection\"\n",
        provider.client_id()
    );
    let (_daemon, url) = serve(dir.path(), &body);
    let home = tempfile::tempdir().unwrap();
    let companion = Companion::open(home.path(), Backend::File);
    companion
        .pair(
            &pairing_code(dir.path(), &url),
            &PairOptions::default(),
            &mut |_| false,
        )
        .await
        .unwrap();
    let browser = Consent(provider.clone());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut timing = WatchTiming::from_config(&companion.config().unwrap());
    timing.poll = Duration::from_secs(2);
    timing.use_events = use_events;
    let mut watcher = companion
        .watch_with(timing, Arc::new(Stopwatch(tx)), None)
        .unwrap();
    let client = companion.client("studio").unwrap();
    let mut samples = Vec::new();
    for _ in 0..ROUNDS {
        companion
            .reauth(
                "studio",
                "youtube",
                &browser,
                ReauthOptions::default(),
                &|_| {},
            )
            .await
            .expect("reauth");
        // Wait for the watcher to see it alive again.
        loop {
            let ev = watcher.next_event().await.expect("watcher running");
            if let WatchEvent::Credential { credential, .. } = ev {
                if credential.state == CredentialState::Ok {
                    break;
                }
            }
        }
        while rx.try_recv().is_ok() {}
        provider.revoke_all().await;
        let dead = client.check_now("youtube").await.unwrap();
        let since = dead.since;
        let at = loop {
            let (at, n) = rx.recv().await.unwrap();
            if n.kind == NoticeKind::Dead {
                break at;
            }
        };
        samples.push((at - since).to_std().unwrap_or_default());
    }
    watcher.shutdown().await;
    summary(label, samples);
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn watch_rss() {
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, url) = serve(dir.path(), "");
    let home: PathBuf = tempfile::tempdir().unwrap().keep();
    for i in 0..10 {
        let out = tether(&home)
            .args([
                "pair",
                &pairing_code(dir.path(), &url),
                "--name",
                &format!("agent{i}"),
                "--yes",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let log = home.join("watch.log");
    let child = tether(&home)
        .arg("watch")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    for _ in 0..600 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.matches(": connected").count() >= 10 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let the ten event streams settle.
    std::thread::sleep(Duration::from_secs(3));
    println!(
        "tether watch RSS with 10 paired agents: {} KiB",
        rss_kib(child.0.id())
    );
    let _ = std::fs::remove_dir_all(&home);
}

fn main() {
    if !oidc::available() {
        println!("skipped: {}", oidc::MISSING);
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(latency(true, "event stream"));
    rt.block_on(latency(false, "polling only, 2 s interval"));
    watch_rss();
}
