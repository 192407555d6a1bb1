//! Fair connections under a flood, with the real `tether agent serve` over HTTPS and a
//! grant from the real oidc-provider: 512 connections from 127.0.0.2 and 127.0.0.3, each
//! asking `GET /healthz` again and again (no token needed), must not lock out the agent's
//! broker request (agent token) nor the companion's health request (device token).
//!
//! Both clients open a new connection for every request (`Connection: close`), as the
//! `tether token` command and a script calling the broker do: an old keep-alive connection
//! proves nothing about getting a new one in. The latencies are printed next to the quiet
//! figures; only the answers are asserted.

use super::harness::{config_head, oidc_credential};
use super::restart::{bootstrap_running, free_port, spawn, Running};
use crate::require;
use crate::util::oidc::{OidcOptions, OidcProvider};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether::agent::access::auth::{AuthStore, Role};

/// Flooding connections, half from each source address.
const FLOOD_CONNECTIONS: usize = 512;
/// The flood's source addresses (loopback answers for all of 127/8 on Linux).
const FLOOD_SOURCES: [&str; 2] = ["127.0.0.2", "127.0.0.3"];
/// How long the flood lasts; it stops by itself.
const FLOOD_FOR: Duration = Duration::from_secs(20);
/// Pause between one flooding connection's requests.
const FLOOD_EVERY: Duration = Duration::from_millis(500);
/// Pause before a flooding connection that was closed or refused connects again.
const FLOOD_RECONNECT_AFTER: Duration = Duration::from_millis(100);
/// Requests measured while it is quiet, per client.
const QUIET_REQUESTS: usize = 20;
/// How long one measured request may take before it counts as locked out.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

#[derive(Default)]
struct FloodCount {
    answered: AtomicU64,
    failed: AtomicU64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn figures(mut v: Vec<Duration>) -> String {
    v.sort();
    format!(
        "p50 {:>7.1} ms  p99 {:>7.1} ms  ({} requests)",
        percentile(&v, 0.5).as_secs_f64() * 1e3,
        percentile(&v, 0.99).as_secs_f64() * 1e3,
        v.len()
    )
}

/// One request on a new connection; its latency, or why it got no 200.
async fn timed(d: &Running, path: &str, token: &str) -> Result<Duration, String> {
    let t = Instant::now();
    let r = d
        .req(reqwest::Method::GET, path, token)
        .header(reqwest::header::CONNECTION, "close")
        .timeout(ANSWER_WITHIN)
        .send()
        .await
        .map_err(|e| {
            let mut chain = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                chain.push_str(&format!(": {s}"));
                src = s.source();
            }
            chain
        })?;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    if status != 200 {
        return Err(format!("{status} {body}"));
    }
    Ok(t.elapsed())
}

/// The flood, on its own thread and runtime (another program, as far as the daemon can
/// tell): every connection repeats `GET /healthz` until `FLOOD_FOR` has passed.
fn flood(base: String, fingerprint: String, count: Arc<FloodCount>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("flood runtime");
        rt.block_on(async move {
            let pin = tether::pin::Fingerprint::parse(&fingerprint).expect("fingerprint");
            let end = Instant::now() + FLOOD_FOR;
            let mut tasks = Vec::new();
            for i in 0..FLOOD_CONNECTIONS {
                let source: IpAddr = FLOOD_SOURCES[i % FLOOD_SOURCES.len()].parse().unwrap();
                let cfg = tether::pin::pinned_tls_config(&pin).expect("pinned tls config");
                // One client per flooding connection: it keeps its connection alive and
                // opens a new one when the daemon closes it.
                let http = reqwest::Client::builder()
                    .use_preconfigured_tls(cfg)
                    .local_address(source)
                    .pool_max_idle_per_host(1)
                    .timeout(Duration::from_secs(10))
                    .build()
                    .expect("client builds");
                let url = format!("{base}/healthz");
                let count = count.clone();
                tasks.push(tokio::spawn(async move {
                    while Instant::now() < end {
                        match http.get(&url).send().await {
                            Ok(r) if r.status() == 200 => {
                                let _ = r.bytes().await;
                                count.answered.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(FLOOD_EVERY).await;
                            }
                            _ => {
                                count.failed.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(FLOOD_RECONNECT_AFTER).await;
                            }
                        }
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    })
}

#[tokio::test]
async fn a_healthz_flood_from_two_addresses_does_not_lock_out_the_agent_or_the_companion() {
    require!(crate::util::oidc::available(), crate::util::oidc::MISSING);
    // The flood holds 512 sockets here and the daemon up to its cap there.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(8192);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    require!(
        lim.rlim_cur >= 2048,
        "needs a file-descriptor limit of at least 2048"
    );
    let oidc = OidcProvider::start(OidcOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = config_head(dir.path(), "").replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
        + &oidc_credential(
            "yt",
            &oidc,
            "probe_interval = \"1h\"\nrefresh_interval = \"1h\"",
        );
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, text).unwrap();
    let store = AuthStore::open(&dir.path().join("state")).unwrap();
    let (_, device) = store.create_token(Role::Device, "laptop").unwrap();
    let (_, agent) = store.create_token(Role::Agent, "uploader").unwrap();
    let (device, agent) = (device.secret().to_string(), agent.secret().to_string());
    let d = spawn(&config);
    bootstrap_running(&d, &device, "yt", &oidc).await;
    let broker = "/v1/credentials/yt/access-token";

    // Quiet figures first.
    let mut quiet_agent = Vec::new();
    let mut quiet_companion = Vec::new();
    for _ in 0..QUIET_REQUESTS {
        quiet_agent.push(
            timed(&d, broker, &agent)
                .await
                .expect("quiet broker request"),
        );
        quiet_companion.push(
            timed(&d, "/v1/health", &device)
                .await
                .expect("quiet health request"),
        );
    }

    let count = Arc::new(FloodCount::default());
    let fingerprint = d.fingerprint.clone();
    let flooding = flood(d.base.clone(), fingerprint, count.clone());
    // The flood is on once every flooding connection has been answered or turned away
    // about once.
    let started = Instant::now();
    while count.answered.load(Ordering::Relaxed) + count.failed.load(Ordering::Relaxed)
        < FLOOD_CONNECTIONS as u64
    {
        assert!(
            started.elapsed() < FLOOD_FOR,
            "the flood never got going: {} answered, {} failed",
            count.answered.load(Ordering::Relaxed),
            count.failed.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut flood_agent = Vec::new();
    let mut flood_companion = Vec::new();
    let mut failures = Vec::new();
    while !flooding.is_finished() {
        match timed(&d, broker, &agent).await {
            Ok(t) => flood_agent.push(t),
            Err(e) => failures.push(format!("agent's broker request: {e}")),
        }
        match timed(&d, "/v1/health", &device).await {
            Ok(t) => flood_companion.push(t),
            Err(e) => failures.push(format!("companion's health request: {e}")),
        }
        if failures.len() >= 5 {
            break;
        }
    }
    let answered = count.answered.load(Ordering::Relaxed);
    let turned_away = count.failed.load(Ordering::Relaxed);
    println!(
        "flood: {FLOOD_CONNECTIONS} connections from {FLOOD_SOURCES:?} for {FLOOD_FOR:?}: {answered} /healthz answered, {turned_away} closed or refused"
    );
    println!(
        "agent's broker request, quiet:        {}",
        figures(quiet_agent)
    );
    if !flood_agent.is_empty() {
        println!(
            "agent's broker request, flood:        {}",
            figures(flood_agent.clone())
        );
    }
    println!(
        "companion's health request, quiet:    {}",
        figures(quiet_companion)
    );
    if !flood_companion.is_empty() {
        println!(
            "companion's health request, flood:    {}",
            figures(flood_companion.clone())
        );
    }
    assert!(
        failures.is_empty(),
        "locked out during the flood: {failures:#?}"
    );
    assert!(
        flood_agent.len() >= 3 && flood_companion.len() >= 3,
        "too few requests during the flood to tell: {} and {}",
        flood_agent.len(),
        flood_companion.len()
    );
    assert!(
        answered > FLOOD_CONNECTIONS as u64,
        "the flood was answered {answered} times: it did not really run"
    );
    let _ = flooding.join();
}

/// Reads one HTTP/1.1 response (headers and a `content-length` body) from `s`; `None` when
/// the daemon closed the connection instead.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().expect("a length"))
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Some(head);
            }
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Sends `GET path` (with `token`) on the connection and reads the response's head.
async fn ask<S>(s: &mut S, path: &str, token: Option<&str>) -> Option<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    s.flush().await.ok()?;
    read_response(s).await
}

#[tokio::test]
async fn an_unauthenticated_connection_ends_at_its_request_cap_and_a_token_lifts_it() {
    use tether::agent::access::conn_limit::MAX_UNAUTHENTICATED_REQUESTS;
    let a = super::harness::TestAgent::start("", "").await;
    let mut s = super::hostile::raw_tls(&a).await;
    for i in 1..=MAX_UNAUTHENTICATED_REQUESTS {
        let head = ask(&mut s, "/healthz", None)
            .await
            .unwrap_or_else(|| panic!("request {i} answered"));
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert_eq!(
            head.contains("connection: close"),
            i == MAX_UNAUTHENTICATED_REQUESTS,
            "request {i}: {head}"
        );
    }
    assert_eq!(
        ask(&mut s, "/healthz", None).await,
        None,
        "the daemon closed the connection after the cap"
    );
    // One request with a valid token (the route's role does not matter) and the same
    // connection may go on asking.
    let mut s = super::hostile::raw_tls(&a).await;
    let head = ask(&mut s, "/v1/health", Some(&a.device)).await.unwrap();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    for i in 0..2 * MAX_UNAUTHENTICATED_REQUESTS {
        let head = ask(&mut s, "/healthz", None)
            .await
            .unwrap_or_else(|| panic!("request {i} after the token answered"));
        assert!(!head.contains("connection: close"), "request {i}: {head}");
    }
}
