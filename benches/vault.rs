//! Vault commit latency on the real disk: p50/p99 for 1 and 3 locations.
//!
//! Run with `cargo bench --bench vault`. Temp directories go under the crate's `target/`
//! (a real filesystem, not a tmpfs), so every fsync reaches the disk.

use std::time::{Duration, Instant};
use tether::secret::{AccessToken, RefreshToken};
use tether::vault::{Record, Vault, VaultConfig};

const WARMUP: usize = 20;
const COMMITS: usize = 400;

fn record(i: usize) -> Record {
    let mut r = Record::new("youtube", "google");
    r.access_token = Some(AccessToken::new(format!(
        "ya29.{}",
        "a".repeat(160) + &i.to_string()
    )));
    r.refresh_token = Some(RefreshToken::new(format!("1//0g{}", "r".repeat(100))));
    r.scopes = vec!["https://www.googleapis.com/auth/youtube.upload".into()];
    r.expires_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    r
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn run(locations: usize) {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&base).expect("target dir");
    let tmp = tempfile::Builder::new()
        .prefix("vault-bench-")
        .tempdir_in(&base)
        .expect("temp dir under target/");
    let backups = (1..locations)
        .map(|i| tmp.path().join(format!("backup{i}")))
        .collect();
    let (vault, _) = Vault::open(VaultConfig::new(tmp.path().join("primary"), backups))
        .expect("open the bench vault");
    for i in 0..WARMUP {
        vault.commit(record(i)).expect("commit");
    }
    let mut times = Vec::with_capacity(COMMITS);
    for i in 0..COMMITS {
        let r = record(i);
        let t = Instant::now();
        let report = vault.commit(r).expect("commit");
        times.push(t.elapsed());
        assert!(report.failed.is_empty());
    }
    times.sort();
    let get_t = Instant::now();
    for _ in 0..100 {
        vault.get("youtube").expect("get").expect("present");
    }
    let get = get_t.elapsed() / 100;
    let rec_t = Instant::now();
    vault.reconcile().expect("reconcile");
    let rec = rec_t.elapsed();
    println!(
        "vault commit, {locations} location(s), {COMMITS} commits: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (get {:.3} ms, reconcile {:.2} ms)",
        ms(percentile(&times, 0.50)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().expect("non-empty")),
        ms(get),
        ms(rec),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    run(1);
    run(3);
}
