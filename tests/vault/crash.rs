//! Crash test: a child process commits generations in a loop and is killed with SIGKILL
//! at random moments; after every kill, reconcile must find a complete, parsable newest
//! generation in every location, never older than the last one the child reported.

use super::{gens, Dirs};
use rand::Rng;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether::secret::{AccessToken, RefreshToken};
use tether::vault::{record, Record, Vault, VaultConfig};

/// Environment variable carrying the child's location roots, `;`-separated.
const ROOTS_VAR: &str = "TETHER_VAULT_CRASH_ROOTS";
const KILLS: usize = 200;
const NAME: &str = "yt";

/// The child: not a test on its own (ignored), run by `kill_9_during_commits_loses_nothing`
/// through this test binary.
#[test]
#[ignore = "child process of kill_9_during_commits_loses_nothing"]
fn crash_child_commit_loop() {
    let roots = std::env::var(ROOTS_VAR).expect("run by the crash test");
    let mut roots = roots.split(';').map(std::path::PathBuf::from);
    let primary = roots.next().expect("a primary");
    let (vault, _) = Vault::open(VaultConfig::new(primary, roots.collect())).expect("open");
    let mut next = vault
        .get(NAME)
        .expect("newest generation readable")
        .map_or(1, |r| r.generation + 1);
    let mut out = std::io::stdout().lock();
    loop {
        let mut r = Record::new(NAME, "google");
        r.access_token = Some(AccessToken::new(format!("at-{next}")));
        r.refresh_token = Some(RefreshToken::new(format!("rt-{next}")));
        // A few KiB, so a kill can land in the middle of a write.
        r.extras.insert(
            "padding".into(),
            "x".repeat(6000 + (next as usize % 997)).into(),
        );
        let report = vault.commit(r).expect("commit");
        assert_eq!(report.generation, next);
        assert!(report.failed.is_empty(), "{report}");
        writeln!(out, "committed {next}").expect("stdout");
        out.flush().expect("stdout");
        next += 1;
    }
}

#[test]
fn kill_9_during_commits_loses_nothing() {
    let d = Dirs::new(2);
    let roots = d.roots();
    let joined = roots
        .iter()
        .map(|p| p.to_str().expect("utf-8 temp path"))
        .collect::<Vec<_>>()
        .join(";");
    let exe = std::env::current_exe().expect("test binary path");
    let mut rng = rand::thread_rng();
    let started = Instant::now();
    let (mut floor, mut total_commits, mut mid_commit, mut repairs) = (0u64, 0u64, 0u64, 0usize);

    for i in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "vault::crash::crash_child_commit_loop",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env_clear()
            .env(ROOTS_VAR, &joined)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child");
        let last = Arc::new(AtomicU64::new(0));
        let count = Arc::new(AtomicU64::new(0));
        let stdout = child.stdout.take().expect("piped stdout");
        let reader = {
            let (last, count) = (last.clone(), count.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(g) = line.strip_prefix("committed ") {
                        // Only a whole line counts: the child printed it after commit returned.
                        last.store(g.trim().parse().expect("a number"), Ordering::SeqCst);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        // Every fourth kill lands anywhere from start-up (open, reconcile, repair) on;
        // the others wait for a few commits, then strike at a random instant.
        if i % 4 == 0 {
            std::thread::sleep(Duration::from_micros(rng.gen_range(0..40_000)));
        } else {
            let want = rng.gen_range(1..=4);
            let deadline = Instant::now() + Duration::from_secs(20);
            while count.load(Ordering::SeqCst) < want {
                assert!(Instant::now() < deadline, "child made no progress");
                if let Some(status) = child.try_wait().expect("poll child") {
                    panic!("child exited by itself: {status}");
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            std::thread::sleep(Duration::from_micros(rng.gen_range(0..6_000)));
        }
        child.kill().expect("SIGKILL the child");
        child.wait().expect("reap the child");
        reader.join().expect("reader thread");
        let reported = last.load(Ordering::SeqCst);
        total_commits += count.load(Ordering::SeqCst);

        let (vault, report) = Vault::open(VaultConfig::new(&roots[0], roots[1..].to_vec()))
            .expect("reopen after kill");
        repairs += report.repairs.len();
        assert!(report.problems.is_empty(), "kill {i}: {report:#?}");
        assert!(report.quarantined.is_empty(), "kill {i}: {report:#?}");
        let newest = vault.get(NAME).expect("readable");
        let Some(newest) = newest else {
            assert_eq!(reported, 0, "kill {i}: committed generations vanished");
            continue;
        };
        let g = newest.generation;
        assert!(
            g >= reported.max(floor),
            "kill {i}: newest {g} < reported {reported} / earlier {floor}"
        );
        if g > reported {
            mid_commit += 1;
        }
        for root in &roots {
            let here = gens(root, NAME);
            assert_eq!(
                here.last(),
                Some(&g),
                "kill {i}: {} has {here:?}",
                root.display()
            );
            let bytes = std::fs::read(super::slot(root, NAME, g)).unwrap();
            let r = record::decode_slot(&bytes, NAME, g)
                .unwrap_or_else(|e| panic!("kill {i}: {}: {e}", root.display()));
            assert_eq!(r.access_token.unwrap().secret(), format!("at-{g}"));
            assert_eq!(r.refresh_token.unwrap().secret(), format!("rt-{g}"));
            let leftovers = std::fs::read_dir(root.join(NAME))
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with(".tmp-")
                })
                .count();
            assert_eq!(
                leftovers,
                0,
                "kill {i}: temp files left in {}",
                root.display()
            );
        }
        floor = g;
    }
    println!(
        "crash test: {KILLS} kills in {:.1}s, {total_commits} commits reported, newest generation {floor}, \
         {mid_commit} kills left a generation newer than the last reported one, {repairs} copies repaired",
        started.elapsed().as_secs_f64()
    );
    assert!(floor > 0, "the child never committed");
}
