//! Agent daemon benchmarks (printed, not asserted): the real `tether agent serve` binary
//! with 100 credentials at the real oidc-provider fixture, over TLS on loopback.
//!
//! - `/v1/health` and cached access-token latency (p50/p99) and requests per second;
//! - daemon RSS when idle;
//! - idle CPU (from /proc) and checker wake-ups per second with 100 credentials;
//! - provider calls per hour per credential in steady state;
//! - detection latency (server-side revocation → `dead` in health → SSE event):
//!   20 credentials with one-hour tokens probed every 60 s, and 20 credentials with
//!   **10-second** rotating tokens probed every 15 s after six token lifetimes, each revoked
//!   at a random moment (a random phase of the probe schedule and of the token's life).
//!
//! Run: `cargo bench --bench agent` (needs Node and `npm ci` in tests/fixtures/oidc-provider).
//! `TETHER_BENCH_IDLE_ONLY=1` stops after the idle figures; `TETHER_BENCH_IDLE_SECS`
//! sets the idle window (default 60 s). Idle CPU is the daemon's own time and moves with
//! what else the machine runs: measure it on a quiet machine.

#[allow(dead_code, unused_imports)]
#[path = "../tests/util/oidc.rs"]
mod oidc;

use oidc::{OidcOptions, OidcProvider};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tether::agent::access::auth::{AuthStore, Role};
use tether::protocol::{CredentialState, Event, HealthReport, ReauthStart};

const CREDS: usize = 100;
/// Credentials revoked per detection group.
const REVOKED: usize = 20;

fn name(i: usize) -> String {
    format!("c{i:03}")
}

fn pinned(fp: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(
            tether::pin::pinned_tls_config(&tether::pin::Fingerprint::parse(fp).unwrap()).unwrap(),
        )
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn latency(label: &str, http: &reqwest::Client, url: &str, token: &str) {
    for _ in 0..200 {
        http.get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let mut samples = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let t = Instant::now();
        let r = http.get(url).bearer_auth(token).send().await.unwrap();
        assert!(r.status().is_success(), "{label}: {}", r.status());
        r.bytes().await.unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();
    // Throughput: 16 concurrent clients for 5 s on kept-alive TLS connections.
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(5);
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (http, url, token, done) = (
                http.clone(),
                url.to_string(),
                token.to_string(),
                done.clone(),
            );
            tokio::spawn(async move {
                while Instant::now() < until {
                    let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
                    r.bytes().await.unwrap();
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    let t = Instant::now();
    for w in workers {
        w.await.unwrap();
    }
    let rps = done.load(std::sync::atomic::Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    println!(
        "{label:<34} p50 {:>9}  p99 {:>9}  {:>8.0} req/s (16 clients)",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.99)),
        rps
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn summary(label: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "{label:<44} median {:>6.1} s  worst {:>6.1} s  (n={})",
        percentile(&v, 0.5).as_secs_f64(),
        v.last().unwrap().as_secs_f64(),
        v.len()
    );
}

/// A running `tether agent serve` with its tokens.
struct Daemon {
    child: std::process::Child,
    http: reqwest::Client,
    base: String,
    device: String,
    agent: String,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    // A daemon left running after its part of the bench would keep probing and distort
    // every figure measured after it.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a daemon with `n` credentials at `provider`, probed every `probe`, and
/// authorizes them all through the daemon's re-auth routes.
async fn start_daemon(provider: &OidcProvider, n: usize, probe: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base_url = provider.issuer().as_str().trim_end_matches('/').to_string();
    let mut cfg = format!(
        "name = \"bench\"\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"{}\"\nbackup_dirs = [\"{}\"]\n",
        dir.path().join("state").display(),
        dir.path().join("backup").display()
    );
    for i in 0..n {
        cfg.push_str(&format!(
            r#"
[[credentials]]
name = "{n}"
provider = "generic"
client_id = "{client}"
scopes = ["openid", "offline_access"]
probe_interval = "{probe}"
[credentials.overrides]
auth_url = "{b}/auth"
token_url = "{b}/token"
client_auth = "basic"
probe_url = "{b}/token/introspection"
probe_method = "introspection"
"#,
            n = name(i),
            client = provider.client_id(),
            b = base_url,
        ));
    }
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, cfg).unwrap();
    let store = AuthStore::open(&dir.path().join("state")).unwrap();
    let device = store
        .create_token(Role::Device, "bench")
        .unwrap()
        .1
        .secret()
        .to_string();
    let agent = store
        .create_token(Role::Agent, "bench")
        .unwrap()
        .1
        .secret()
        .to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["agent", "serve", "--config"])
        .arg(&config)
        .env("TETHER_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut fp = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(f) = line.strip_prefix("tls certificate fingerprint (sha-256): ") {
                fp = f.trim().to_string();
            }
            if line.starts_with("listening on ") {
                let _ = tx.send(fp.clone());
            }
        }
    });
    let fp = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("daemon starts");
    let http = pinned(&fp);
    let base = format!("https://127.0.0.1:{port}");
    for i in 0..n {
        let start: ReauthStart = http
            .post(format!("{base}/v1/credentials/{}/reauth", name(i)))
            .bearer_auth(&device)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let redirect = "http://127.0.0.1:9/callback";
        let mut url = url::Url::parse(&start.authorize_url).unwrap();
        url.query_pairs_mut().append_pair("redirect_uri", redirect);
        let cb = provider.consent(&url).await;
        let q: HashMap<String, String> = cb.query_pairs().into_owned().collect();
        let r = http
            .post(format!("{base}/v1/reauth/{}/complete", start.session))
            .bearer_auth(&device)
            .json(&serde_json::json!({"code": q["code"], "state": q["state"], "redirect_uri": redirect}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    Daemon {
        child,
        http,
        base,
        device,
        agent,
        _dir: dir,
    }
}

impl Daemon {
    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(&self.device)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    fn stop(mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        println!("daemon stopped on SIGTERM: {status}");
    }
}

/// utime + stime of a process in seconds (/proc/PID/stat).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / hz
}

/// Sum of a counter's samples in a /metrics text.
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>()
        + 0.0
}

/// Provider calls per hour per credential over `window`, from the fixture's counters.
fn calls_per_hour(
    c0: &oidc::Counters,
    c1: &oidc::Counters,
    creds: usize,
    window: Duration,
) -> (f64, u64, u64) {
    let probes = c1.introspections - c0.introspections;
    let refreshes = c1.refresh_grants - c0.refresh_grants;
    let hours = window.as_secs_f64() / 3600.0;
    (
        (probes + refreshes) as f64 / creds as f64 / hours,
        probes,
        refreshes,
    )
}

/// Revokes the first `REVOKED` credentials, each at a random moment within `spread`, and
/// prints revocation → dead (health) and → SSE event.
async fn detection(label: &str, d: &Daemon, provider: Arc<OidcProvider>, spread: Duration) {
    let events_resp = d
        .http
        .get(format!("{}/v1/events", d.base))
        .bearer_auth(&d.device)
        .send()
        .await
        .unwrap();
    let seen_sse: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    {
        let seen = seen_sse.clone();
        tokio::spawn(async move {
            let mut resp = events_resp;
            let mut buf = String::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(i) = buf.find("\n\n") {
                    let block: String = buf.drain(..i + 2).collect();
                    let data: String = block
                        .lines()
                        .filter_map(|l| l.strip_prefix("data:"))
                        .map(str::trim)
                        .collect();
                    if let Ok(Event::StateChanged { credential, .. }) = serde_json::from_str(&data)
                    {
                        if credential.state == CredentialState::Dead {
                            seen.lock()
                                .unwrap()
                                .entry(credential.name)
                                .or_insert_with(Instant::now);
                        }
                    }
                }
            }
        });
    }
    let revoked_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut revokers = Vec::new();
    for i in 0..REVOKED {
        // The access token in use right now; the whole grant is revoked through it.
        let r: serde_json::Value = d
            .http
            .get(format!(
                "{}/v1/credentials/{}/access-token",
                d.base,
                name(i)
            ))
            .bearer_auth(&d.agent)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = tether::secret::AccessToken::new(r["access_token"].as_str().unwrap());
        // Asked now, while the token lives: refreshes later keep the same grant.
        let grant = provider.grant_of(&token).await;
        let offset = Duration::from_millis(rand::Rng::gen_range(
            &mut rand::thread_rng(),
            0..spread.as_millis() as u64,
        ));
        let (provider, revoked_at) = (provider.clone(), revoked_at.clone());
        revokers.push(tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            provider.revoke_grant(&grant).await;
            revoked_at.lock().unwrap().insert(name(i), Instant::now());
        }));
    }
    let mut seen_health: HashMap<String, Instant> = HashMap::new();
    let deadline = Instant::now() + spread + Duration::from_secs(200);
    while seen_health.len() < REVOKED && Instant::now() < deadline {
        let h: HealthReport = d
            .http
            .get(format!("{}/v1/health", d.base))
            .bearer_auth(&d.device)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for c in h.credentials {
            if c.state == CredentialState::Dead {
                seen_health.entry(c.name).or_insert_with(Instant::now);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for r in revokers {
        r.await.unwrap();
    }
    let revoked_at = revoked_at.lock().unwrap().clone();
    let sse = seen_sse.lock().unwrap().clone();
    let mut health = Vec::new();
    let mut events = Vec::new();
    for i in 0..REVOKED {
        let n = name(i);
        let t0 = revoked_at[&n];
        match seen_health.get(&n) {
            Some(t) => health.push(t.saturating_duration_since(t0)),
            None => println!("  {n}: not dead within 200 s"),
        }
        if let Some(t) = sse.get(&n) {
            events.push(t.saturating_duration_since(t0));
        }
    }
    if !health.is_empty() {
        summary(
            &format!("detection, {label}: revocation -> dead in health"),
            health,
        );
    }
    if !events.is_empty() {
        summary(
            &format!("detection, {label}: revocation -> SSE event"),
            events,
        );
    }
}

#[tokio::main]
async fn main() {
    if !oidc::available() {
        println!("skipped: {}", oidc::MISSING);
        return;
    }
    // Part 1: 100 credentials with one-hour tokens, probed every 60 s.
    let provider = Arc::new(OidcProvider::start(OidcOptions::default()));
    let t = Instant::now();
    let d = start_daemon(&provider, CREDS, "60s").await;
    println!(
        "tether agent daemon benchmark: {CREDS} credentials at oidc-provider, TLS on loopback"
    );
    println!(
        "(authorized {CREDS} credentials through the daemon in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "daemon RSS idle with {CREDS} credentials: {:.1} MiB",
        rss_kib(d.child.id()) as f64 / 1024.0
    );
    // Idle: nothing asks the daemon anything for 60 s; only its own checks run.
    let c0 = provider.counters().await;
    // The scrape of /metrics is not idle work: it happens before the CPU reading here,
    // and after it at the end.
    let wake0 = counter(&d.metrics().await, "tether_checker_wakeups_total");
    let cpu0 = cpu_seconds(d.child.id());
    println!("(idle daemon pid {})", d.child.id());
    let idle = Instant::now();
    // `TETHER_BENCH_IDLE_SECS` lengthens the window: /proc counts CPU time in 10 ms
    // ticks, so 60 s resolves about 0.017 % of a core.
    let idle_secs = std::env::var("TETHER_BENCH_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let idle_for = idle.elapsed();
    let cpu = cpu_seconds(d.child.id()) - cpu0;
    let wakes = counter(&d.metrics().await, "tether_checker_wakeups_total") - wake0;
    let c1 = provider.counters().await;
    let (per, probes, refreshes) = calls_per_hour(&c0, &c1, CREDS, idle_for);
    println!(
        "idle with {CREDS} credentials (60 s probes, 1 h tokens): CPU {:.3} % of a core, {:.2} checker wake-ups/s ({:.3}/s per credential)",
        cpu / idle_for.as_secs_f64() * 100.0,
        wakes / idle_for.as_secs_f64(),
        wakes / idle_for.as_secs_f64() / CREDS as f64
    );
    println!(
        "provider calls per hour per credential, idle: {per:.1} ({probes} probes, {refreshes} refreshes in {:.0} s; expected ~60 probes/h + ~1 refresh/h)",
        idle_for.as_secs_f64()
    );
    // `TETHER_BENCH_IDLE_ONLY=1` stops after the idle figures (for profiling the idle
    // daemon without the ten minutes of load and detection runs that follow).
    if std::env::var_os("TETHER_BENCH_IDLE_ONLY").is_some() {
        return;
    }
    latency(
        "GET /v1/health",
        &d.http,
        &format!("{}/v1/health", d.base),
        &d.device,
    )
    .await;
    latency(
        "GET access-token (cached)",
        &d.http,
        &format!("{}/v1/credentials/c050/access-token", d.base),
        &d.agent,
    )
    .await;
    println!(
        "daemon RSS after the load: {:.1} MiB",
        rss_kib(d.child.id()) as f64 / 1024.0
    );
    detection(
        "1 h tokens, probe 60 s",
        &d,
        provider.clone(),
        Duration::from_secs(60),
    )
    .await;
    d.stop();

    // Part 2: 10-second rotating tokens, probed every 15 s, after six token lifetimes.
    let short = Arc::new(OidcProvider::start(OidcOptions {
        rotate_refresh_tokens: true,
        access_token_ttl_secs: 10,
        ..Default::default()
    }));
    let d = start_daemon(&short, REVOKED, "15s").await;
    let c0 = short.counters().await;
    let cpu0 = cpu_seconds(d.child.id());
    let lived = Instant::now();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let (per, probes, refreshes) =
        calls_per_hour(&c0, &short.counters().await, REVOKED, lived.elapsed());
    println!(
        "10 s tokens, {REVOKED} credentials: provider calls per hour per credential {per:.0} ({probes} probes, {refreshes} refreshes in {:.0} s: refreshed every ~5 s, half the lifetime); CPU {:.2} % of a core",
        lived.elapsed().as_secs_f64(),
        (cpu_seconds(d.child.id()) - cpu0) / lived.elapsed().as_secs_f64() * 100.0
    );
    // Revocations spread over two token lifetimes: every phase of the token's life.
    detection(
        "10 s tokens, probe 15 s",
        &d,
        short.clone(),
        Duration::from_secs(20),
    )
    .await;
    d.stop();
}
