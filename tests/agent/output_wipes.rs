//! Output files watched from the start: a daemon started before the directories of its
//! output files exist (they are made by the first render) restores every wiped output at
//! once, in every phase (after the first grant, after a refresh, after its directory was
//! deleted, after a reload moved it into a new directory), and tells the owner once per file: one `output_wiped` alert on the webhook and
//! one line in health's `repaired` (what the companion shows). Real daemon over HTTPS, a
//! grant from the real oidc-provider, a webhook receiver on loopback.

use super::harness::{oidc_credential, TestAgent, Webhook};
use crate::require;
use crate::util::oidc::{OidcOptions, OidcProvider};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a test waits for a restored file; the times are printed, not asserted.
const RESTORED_WITHIN: Duration = Duration::from_secs(10);
/// After the alerts arrived: time for a wrongly sent second one to arrive too.
const GRACE: Duration = Duration::from_millis(500);

/// Waits until `file` holds `good` again; how long it took.
async fn restored(file: &Path, good: &[u8], what: &str) -> Duration {
    let t = Instant::now();
    loop {
        if std::fs::read(file).ok().as_deref() == Some(good) {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < RESTORED_WITHIN,
            "{} not restored within {RESTORED_WITHIN:?} after: {what}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Wipes `file` in the way `how` names.
fn wipe(file: &Path, how: &str) {
    match how {
        "truncate" => std::fs::write(file, b"").unwrap(),
        "delete" => std::fs::remove_file(file).unwrap(),
        "garble" => std::fs::write(file, b"{ garbage").unwrap(),
        "delete its directory" => {
            // The daemon may write a restored file into the directory while it is being
            // emptied (ENOTEMPTY at the last step): delete again until it is gone.
            let dir = file.parent().unwrap();
            for attempt in 0.. {
                match std::fs::remove_dir_all(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && attempt < 50 => {
                    }
                    Err(e) => panic!("cannot delete {}: {e}", dir.display()),
                }
            }
        }
        _ => unreachable!("no such wipe: {how}"),
    }
}

fn alerts_for(hook: &Webhook, file: &Path) -> usize {
    let needle = format!("\"detail\":\"{}\"", file.display());
    hook.bodies()
        .iter()
        .filter(|b| b.contains("\"kind\":\"output_wiped\"") && b.contains(&needle))
        .count()
}

#[tokio::test]
async fn outputs_whose_directory_appears_after_start_are_restored_at_once_and_reported_once() {
    require!(crate::util::oidc::available(), crate::util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions::default());
    let hook = Webhook::start();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("agent-home");
    let files: [PathBuf; 2] = [
        home.join("out").join("token.json"),
        home.join("deeper").join("still").join("yt.env"),
    ];
    let body = |files: &[PathBuf; 2]| {
        let extra = format!(
            r#"probe_interval = "1h"
refresh_interval = "1h"
[[credentials.outputs]]
path = "{}"
format = "token_json"
[[credentials.outputs]]
path = "{}"
format = "env"
access_var = "YT_ACCESS"
refresh_var = "YT_REFRESH"
"#,
            files[0].display(),
            files[1].display()
        );
        format!(
            "{}\n[alerts]\nreminder_interval = \"1h\"\n[[alerts.channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n",
            oidc_credential("yt", &oidc, &extra),
            hook.url
        )
    };
    let head = "vault_check_interval = \"1h\"";
    // The periodic vault check and the probes are an hour away: only the watch can
    // restore anything here.
    let a = TestAgent::start_in(dir, head, &body(&files), |_| {}).await;
    assert!(
        !home.exists(),
        "the outputs' directories do not exist at start"
    );

    // Phase 1: the first grant renders the outputs and creates their directories.
    a.bootstrap("yt", &oidc).await;
    let mut good: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let mut times: Vec<(String, Duration)> = Vec::new();
    for how in ["truncate", "delete", "garble"] {
        for (f, g) in files.iter().zip(&good) {
            wipe(f, how);
            let t = restored(f, g, how).await;
            times.push((
                format!("{how} {}", f.file_name().unwrap().to_string_lossy()),
                t,
            ));
        }
    }

    // Phase 2: after a refresh (new contents, rendered by the commit).
    let r = a
        .req(
            reqwest::Method::POST,
            "/v1/credentials/yt/check",
            Some(&a.device),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    for (f, g) in files.iter().zip(good.iter_mut()) {
        // The refresh re-rendered the file: wait until it holds the new access token.
        let deadline = Instant::now() + RESTORED_WITHIN;
        loop {
            let now = std::fs::read(f).unwrap_or_default();
            if now != *g && !now.is_empty() {
                *g = now;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} was not re-rendered after the refresh",
                f.display()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        wipe(f, "truncate");
        let t = restored(f, g, "truncate after a refresh").await;
        times.push((
            format!(
                "truncate after refresh {}",
                f.file_name().unwrap().to_string_lossy()
            ),
            t,
        ));
    }

    // Phase 3: the whole directory goes; the watch falls back to its parent and comes back.
    for (f, g) in files.iter().zip(&good) {
        wipe(f, "delete its directory");
        let t = restored(f, g, "delete its directory").await;
        times.push((
            format!(
                "delete the directory of {}",
                f.file_name().unwrap().to_string_lossy()
            ),
            t,
        ));
        wipe(f, "garble");
        let t = restored(f, g, "garble after its directory came back").await;
        times.push((
            format!(
                "garble after the directory came back {}",
                f.file_name().unwrap().to_string_lossy()
            ),
            t,
        ));
    }
    // Phase 4: a reload moves the first output into a directory that does not exist yet.
    let moved = home.join("moved").join("token.json");
    let new_files = [moved.clone(), files[1].clone()];
    let text = super::harness::config_head(a.dir.path(), head) + &body(&new_files);
    std::fs::write(a.config_path(), text).unwrap();
    let cfg = tether::agent::config::parse(&a.config_path()).expect("the new config parses");
    a.daemon.reload(cfg).await.expect("the reload applies");
    let moved_good = std::fs::read(&moved).expect("the reload rendered the moved output");
    for how in ["truncate", "delete", "garble"] {
        wipe(&moved, how);
        let t = restored(&moved, &moved_good, how).await;
        times.push((format!("{how} after a reload moved token.json"), t));
    }
    for (what, t) in &times {
        println!("restored in {:>7.1} ms: {what}", t.as_secs_f64() * 1e3);
    }
    let slowest = times.iter().map(|(_, t)| *t).max().unwrap();
    println!("slowest restore: {:.1} ms", slowest.as_secs_f64() * 1e3);

    // The owner hears of it once per file: wait for each file's alert, then give a
    // wrongly sent second one time to arrive.
    let all_files = [files[0].clone(), files[1].clone(), moved];
    for f in &all_files {
        let needle = format!("\"detail\":\"{}\"", f.display());
        hook.wait_for(&["\"kind\":\"output_wiped\"", &needle], RESTORED_WITHIN)
            .await;
    }
    tokio::time::sleep(GRACE).await;
    for f in &all_files {
        assert_eq!(
            alerts_for(&hook, f),
            1,
            "one wipe alert for {}; the webhook got {:#?}",
            f.display(),
            hook.bodies()
        );
    }
    // And the companion's notice: one `repaired` line per file in health.
    let health = a.health().await;
    for f in &all_files {
        let name = f.display().to_string();
        let lines: Vec<&String> = health
            .repaired
            .iter()
            .filter(|l| l.contains(&name) && l.contains("was wiped or damaged"))
            .collect();
        assert_eq!(lines.len(), 1, "{name}: {:#?}", health.repaired);
    }
}
