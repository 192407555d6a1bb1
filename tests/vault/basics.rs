//! Core properties: create, overwrite, generation numbers, history trimming, rollback,
//! permissions, never older over newer, location placement warnings.

use super::{gens, refresh, sample, slot, snapshot, Dirs};
use std::os::unix::fs::MetadataExt;
use tether::vault::{record, Vault, VaultError};

#[test]
fn create_stores_generation_1_in_every_location() {
    let d = Dirs::new(2);
    let (vault, _) = d.open();
    assert!(vault.get("youtube").unwrap().is_none());
    let report = vault.commit(sample("youtube", "a")).unwrap();
    assert_eq!(report.generation, 1);
    assert_eq!(report.written.len(), 3);
    assert!(report.failed.is_empty());
    for root in d.roots() {
        let bytes = std::fs::read(slot(&root, "youtube", 1)).unwrap();
        let r = record::decode_slot(&bytes, "youtube", 1).unwrap();
        assert_eq!(refresh(&r), "1//refresh-a");
    }
    let got = vault.get("youtube").unwrap().unwrap();
    assert_eq!(got.generation, 1);
    assert_eq!(got.access_token.unwrap().secret(), "ya29.access-a");
    assert_eq!(vault.names().unwrap(), vec!["youtube".to_string()]);
}

#[test]
fn overwrite_returns_the_new_content_and_keeps_the_old_generation() {
    let d = Dirs::new(1);
    let (vault, _) = d.open();
    vault.commit(sample("yt", "a")).unwrap();
    let old = std::fs::read(slot(&d.primary, "yt", 1)).unwrap();
    vault.commit(sample("yt", "b")).unwrap();
    assert_eq!(refresh(&vault.get("yt").unwrap().unwrap()), "1//refresh-b");
    // The old generation's file is untouched: a commit never writes over an existing file.
    assert_eq!(std::fs::read(slot(&d.primary, "yt", 1)).unwrap(), old);
    // A fresh open (another process) sees the same newest generation.
    drop(vault);
    let (again, _) = d.open();
    assert_eq!(again.get("yt").unwrap().unwrap().generation, 2);
}

#[test]
fn generations_increment_and_ignore_the_callers_number() {
    let d = Dirs::new(1);
    let (vault, _) = d.open();
    for expected in 1..=4u64 {
        let mut r = sample("yt", &expected.to_string());
        r.generation = 999; // the vault assigns generations, never the caller
        assert_eq!(vault.commit(r).unwrap().generation, expected);
    }
    assert_eq!(vault.get("yt").unwrap().unwrap().generation, 4);
    // Credentials have independent counters.
    assert_eq!(vault.commit(sample("x", "1")).unwrap().generation, 1);
}

#[test]
fn history_is_trimmed_to_keep_generations_everywhere() {
    let d = Dirs::new(1);
    let mut cfg = d.config();
    cfg.keep = 3;
    let (vault, _) = Vault::open(cfg).unwrap();
    for i in 1..=7 {
        vault.commit(sample("yt", &i.to_string())).unwrap();
    }
    for root in d.roots() {
        assert_eq!(gens(&root, "yt"), vec![5, 6, 7], "{}", root.display());
    }
    let history = vault.history("yt").unwrap();
    let numbers: Vec<u64> = history.iter().map(|h| h.generation).collect();
    assert_eq!(numbers, vec![7, 6, 5]);
    assert_eq!(history[0].locations.len(), 2);
    // The refresh token is identified, never shown.
    let id = history[0].refresh_token_id.as_deref().unwrap();
    assert_eq!(id.len(), 12);
    assert!(!format!("{history:?}").contains("refresh-7"));
}

#[test]
fn default_keep_is_five() {
    let d = Dirs::new(0);
    let (vault, _) = d.open();
    for i in 1..=8 {
        vault.commit(sample("yt", &i.to_string())).unwrap();
    }
    assert_eq!(gens(&d.primary, "yt"), vec![4, 5, 6, 7, 8]);
}

#[test]
fn rollback_commits_old_content_as_a_new_generation() {
    let d = Dirs::new(1);
    let (vault, _) = d.open();
    vault.commit(sample("yt", "a")).unwrap();
    vault.commit(sample("yt", "b")).unwrap();
    let before = snapshot(&d.primary);
    let report = vault.rollback("yt", 1).unwrap();
    assert_eq!(report.generation, 3);
    let now = vault.get("yt").unwrap().unwrap();
    assert_eq!(now.generation, 3);
    assert_eq!(refresh(&now), "1//refresh-a");
    assert_eq!(now.extras["rolled_back_from"], 1);
    // Generations 1 and 2 are untouched; 3 is new.
    let after = snapshot(&d.primary);
    for (path, bytes) in &before {
        assert_eq!(after.get(path), Some(bytes), "{} changed", path.display());
    }
    assert_eq!(gens(&d.backups[0], "yt"), vec![1, 2, 3]);
    // Rolling back to a generation that is not kept names the ones that are.
    match vault.rollback("yt", 42) {
        Err(e @ VaultError::GenerationNotFound { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("3, 2, 1") && msg.contains("tether vault history yt"),
                "{msg}"
            );
        }
        other => panic!("expected GenerationNotFound, got {other:?}"),
    }
    assert!(matches!(
        vault.rollback("nothing", 1),
        Err(VaultError::NotFound { .. })
    ));
}

#[test]
fn files_are_0600_and_directories_0700() {
    let d = Dirs::new(1);
    let (vault, _) = d.open();
    vault.commit(sample("yt", "a")).unwrap();
    for root in d.roots() {
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&root), 0o700, "{}", root.display());
        assert_eq!(mode(&root.join("yt")), 0o700);
        assert_eq!(mode(&slot(&root, "yt", 1)), 0o600);
    }
}

#[test]
fn missing_parent_directories_are_created_0700() {
    let d = Dirs::new(0);
    let mut cfg = d.config();
    cfg.primary = d.tmp.path().join("a/b/vault");
    let (vault, _) = Vault::open(cfg).unwrap();
    vault.commit(sample("yt", "a")).unwrap();
    for p in ["a", "a/b", "a/b/vault"] {
        let mode = std::fs::metadata(d.tmp.path().join(p)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700, "{p}");
    }
}

#[test]
fn an_older_generation_never_replaces_a_newer_one() {
    let d = Dirs::new(1);
    let (vault, _) = d.open();
    vault.commit(sample("yt", "1")).unwrap();
    vault.commit(sample("yt", "2")).unwrap();
    drop(vault);
    // The backup falls behind: the primary alone receives generations 3 and 4.
    let stale_backup = d.tmp.path().join("stale");
    std::fs::rename(&d.backups[0], &stale_backup).unwrap();
    let (vault, _) = Vault::open(tether::vault::VaultConfig::new(&d.primary, vec![])).unwrap();
    vault.commit(sample("yt", "3")).unwrap();
    vault.commit(sample("yt", "4")).unwrap();
    drop(vault);
    std::fs::remove_dir_all(&d.backups[0]).ok();
    std::fs::rename(&stale_backup, &d.backups[0]).unwrap();
    let newest_primary = std::fs::read(slot(&d.primary, "yt", 4)).unwrap();

    // Reopening with the stale backup: the backup is brought forward, the primary untouched.
    let (vault, report) = d.open();
    assert_eq!(refresh(&vault.get("yt").unwrap().unwrap()), "1//refresh-4");
    assert_eq!(
        std::fs::read(slot(&d.primary, "yt", 4)).unwrap(),
        newest_primary
    );
    assert_eq!(
        std::fs::read(slot(&d.backups[0], "yt", 4)).unwrap(),
        newest_primary
    );
    let repair = report
        .repairs
        .iter()
        .find(|r| r.location.starts_with("backup 1"))
        .expect("backup repaired");
    assert_eq!(repair.was, tether::vault::RepairKind::Older { had: 2 });
    assert!(repair.to_string().contains("generation 4"), "{repair}");
    // The next commit continues after the newest, never after the stale copy.
    assert_eq!(vault.commit(sample("yt", "5")).unwrap().generation, 5);
}

#[test]
fn an_old_record_copied_under_a_newer_name_is_not_taken_for_newer() {
    let d = Dirs::new(1);
    let (vault, _) = d.open();
    vault.commit(sample("yt", "1")).unwrap();
    vault.commit(sample("yt", "2")).unwrap();
    drop(vault);
    // Someone copies generation 1's file in as "generation 9" in the backup.
    std::fs::copy(slot(&d.backups[0], "yt", 1), slot(&d.backups[0], "yt", 9)).unwrap();
    let (vault, report) = d.open();
    let got = vault.get("yt").unwrap().unwrap();
    assert_eq!(
        (got.generation, refresh(&got)),
        (2, "1//refresh-2".to_string())
    );
    assert_eq!(report.quarantined.len(), 1, "{:#?}", report);
    assert!(report.quarantined[0].reason.contains("generation 1"));
}

#[test]
fn a_backup_on_the_primarys_filesystem_is_warned_about() {
    let d = Dirs::new(1);
    let (_, report) = d.open();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("same filesystem as the primary") && w.contains("backup 1")),
        "{:?}",
        report.warnings
    );
    let lone = Dirs::new(0);
    let (_, report) = lone.open();
    assert!(report
        .warnings
        .iter()
        .any(|w| w.contains("no backup location")));
    let mut same = d.config();
    same.backups = vec![d.primary.clone()];
    let (_, report) = Vault::open(same).unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("same directory as the primary")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn reports_and_errors_never_contain_secrets() {
    let d = Dirs::new(1);
    let (vault, _) = d.open();
    let report = vault.commit(sample("yt", "SECRETTAG")).unwrap();
    let r = vault.get("yt").unwrap().unwrap();
    let text = format!(
        "{report} {report:?} {r:?} {:?} {:?}",
        vault.history("yt").unwrap(),
        vault.location_health()
    );
    assert!(!text.contains("SECRETTAG"), "{text}");
}

#[test]
fn location_health_lists_every_location() {
    let d = Dirs::new(2);
    let (vault, _) = d.open();
    let health = vault.location_health();
    assert_eq!(health.len(), 3);
    assert!(health.iter().all(|h| h.ok && h.error.is_none()));
    assert!(health[0].name.starts_with("primary "));
    assert!(health[2].name.starts_with("backup 2 "));
}

#[test]
fn concurrent_writers_never_share_a_generation_number() {
    // Two vault handles (as the daemon and a `tether vault` command would have) commit at
    // once; the inter-process lock serialises them, so every commit gets its own number.
    let d = Dirs::new(1);
    let handles: Vec<_> = (0..2)
        .map(|w| {
            let cfg = d.config();
            std::thread::spawn(move || {
                let (vault, _) = Vault::open(cfg).unwrap();
                (0..25)
                    .map(|i| {
                        vault
                            .commit(sample("yt", &format!("{w}-{i}")))
                            .unwrap()
                            .generation
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=50).collect::<Vec<u64>>());
    let (vault, _) = d.open();
    assert_eq!(vault.get("yt").unwrap().unwrap().generation, 50);
}
