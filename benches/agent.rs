//! Agent daemon benchmarks (printed, not asserted): the real `tether agent serve` binary
//! with 100 credentials at the real oidc-provider fixture, over TLS on loopback.
//!
//! - `/v1/health` and cached access-token latency (p50/p99) and requests per second;
//! - daemon RSS when idle;
//! - detection latency (server-side revocation → `dead` in health → SSE event) for probe
//!   intervals of 15 s and 60 s, 20 revocations each (20 credentials per interval, each
//!   revoked at a random moment within one probe interval, so every phase is sampled);
//! - provider calls per hour per credential in steady state.
//!
//! Run: `cargo bench --bench agent` (needs Node and `npm ci` in tests/fixtures/oidc-provider).

#[allow(dead_code, unused_imports)]
#[path = "../tests/util/oidc.rs"]
mod oidc;

use oidc::{OidcOptions, OidcProvider};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tether::agent::auth::{AuthStore, Role};
use tether::protocol::{CredentialState, Event, HealthReport, ReauthStart};

const CREDS: usize = 100;
const FAST: usize = 20; // c000..c019: probe every 15 s
const SLOW: usize = 20; // c020..c039: probe every 60 s (the rest too, but not revoked)

fn name(i: usize) -> String {
    format!("c{i:03}")
}

fn pinned(fp: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tether::agent::tls::pinned_client_config(fp).unwrap())
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

#[tokio::main]
async fn main() {
    if !oidc::available() {
        println!("skipped: {}", oidc::MISSING);
        return;
    }
    let provider = OidcProvider::start(OidcOptions::default());
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
    for i in 0..CREDS {
        let probe = if i < FAST { "15s" } else { "60s" };
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

    // Authorize every credential through the daemon's re-auth routes.
    let t = Instant::now();
    for i in 0..CREDS {
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
        rss_kib(child.id()) as f64 / 1024.0
    );

    let c0 = provider.counters().await;
    let window = Instant::now();
    latency(
        "GET /v1/health",
        &http,
        &format!("{base}/v1/health"),
        &device,
    )
    .await;
    latency(
        "GET access-token (cached)",
        &http,
        &format!("{base}/v1/credentials/c050/access-token"),
        &agent,
    )
    .await;
    println!(
        "daemon RSS after the load: {:.1} MiB",
        rss_kib(child.id()) as f64 / 1024.0
    );
    // Steady state: at least two minutes of provider traffic with nothing else happening.
    let rest = Duration::from_secs(120).saturating_sub(window.elapsed());
    tokio::time::sleep(rest).await;
    let c1 = provider.counters().await;
    let hours = window.elapsed().as_secs_f64() / 3600.0;
    let calls = (c1.introspections - c0.introspections) + (c1.refresh_grants - c0.refresh_grants);
    let per = calls as f64 / CREDS as f64 / hours;
    let expected =
        (FAST as f64 * 240.0 + (CREDS - FAST) as f64 * 60.0) / CREDS as f64 + 1.0 + 1.0 / 6.0;
    println!(
        "provider calls per hour per credential, steady state: {per:.1} measured over {:.0} s \
         ({} probes, {} refreshes; mix of {FAST}x15 s and {}x60 s probes; expected ~{expected:.1}: \
         60/h per 60 s probe, 240/h per 15 s probe, ~1/h access-token refresh, 1/6 h refresh test)",
        window.elapsed().as_secs_f64(),
        c1.introspections - c0.introspections,
        c1.refresh_grants - c0.refresh_grants,
        CREDS - FAST
    );

    // Detection latency: revoke 20 grants probed every 15 s and 20 probed every 60 s.
    let events_resp = http
        .get(format!("{base}/v1/events"))
        .bearer_auth(&device)
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
    let mut tokens = Vec::new();
    for i in 0..FAST + SLOW {
        let r: serde_json::Value = http
            .get(format!("{base}/v1/credentials/{}/access-token", name(i)))
            .bearer_auth(&agent)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(tether::secret::AccessToken::new(
            r["access_token"].as_str().unwrap(),
        ));
    }
    // Each grant is revoked at a random moment within one probe interval of its group,
    // so the samples cover every phase of the probe schedule.
    let revoked_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let provider = Arc::new(provider);
    let mut revokers = Vec::new();
    for (i, t) in tokens.into_iter().enumerate() {
        let interval = if i < FAST { 15_000 } else { 60_000 };
        let offset =
            Duration::from_millis(rand::Rng::gen_range(&mut rand::thread_rng(), 0..interval));
        let (provider, revoked_at) = (provider.clone(), revoked_at.clone());
        revokers.push(tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            provider.revoke_grant_for_access_token(&t).await;
            revoked_at.lock().unwrap().insert(name(i), Instant::now());
        }));
    }
    let mut seen_health: HashMap<String, Instant> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(200);
    while seen_health.len() < FAST + SLOW && Instant::now() < deadline {
        let h: HealthReport = http
            .get(format!("{base}/v1/health"))
            .bearer_auth(&device)
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
    for (label, range) in [("15 s", 0..FAST), ("60 s", FAST..FAST + SLOW)] {
        let mut health = Vec::new();
        let mut events = Vec::new();
        for i in range {
            let n = name(i);
            let t0 = revoked_at[&n];
            match seen_health.get(&n) {
                Some(t) => health.push(t.duration_since(t0)),
                None => println!("  {n}: not dead within 200 s"),
            }
            if let Some(t) = sse.get(&n) {
                events.push(t.duration_since(t0));
            }
        }
        if !health.is_empty() {
            summary(
                &format!("detection, probe {label}: revocation -> dead in health"),
                health,
            );
        }
        if !events.is_empty() {
            summary(
                &format!("detection, probe {label}: revocation -> SSE event"),
                events,
            );
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    println!("daemon stopped on SIGTERM: {status}");
}
