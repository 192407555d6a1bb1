//! Location directories deleted while the vault is open: the next commit recreates them
//! and fills them with every credential, not just the one being committed; the cheap
//! check notices a wiped file by itself.

use super::{gens, refresh, sample, slot, Dirs};
use std::fs;
use tether::vault::RepairKind;

#[test]
fn the_next_commit_recreates_deleted_locations_and_refills_them() {
    let d = Dirs::new(2);
    let (vault, _) = d.open();
    vault.commit(sample("yt", "1")).unwrap();
    vault.commit(sample("tt", "1")).unwrap();
    // The primary and the first backup vanish while the daemon runs.
    fs::remove_dir_all(&d.primary).unwrap();
    fs::remove_dir_all(&d.backups[0]).unwrap();

    let report = vault.commit(sample("yt", "2")).unwrap();
    assert_eq!(report.generation, 2);
    assert_eq!(report.written.len(), 3, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    for root in [&d.primary, &d.backups[0]] {
        assert_eq!(gens(root, "yt"), vec![2], "{}", root.display());
        // The other credential is back too.
        assert_eq!(gens(root, "tt"), vec![1], "{}", root.display());
    }
    // The untouched backup keeps its history as before.
    assert_eq!(gens(&d.backups[1], "yt"), vec![1, 2]);
    assert!(
        report
            .repairs
            .iter()
            .any(|r| r.credential == "tt" && r.was == RepairKind::Missing),
        "{report:#?}"
    );
    assert!(vault.location_health().iter().all(|l| l.ok));
    assert_eq!(refresh(&vault.get("tt").unwrap().unwrap()), "1//refresh-1");
}

#[test]
fn the_cheap_check_sees_a_wiped_file_and_otherwise_reads_nothing() {
    let d = Dirs::new(1);
    let (vault, _) = d.open();
    vault.commit(sample("yt", "1")).unwrap();
    // Nothing changed: no reconcile.
    assert!(vault.quick_check().unwrap().is_none());
    fs::write(slot(&d.backups[0], "yt", 1), b"").unwrap();
    let report = vault.quick_check().unwrap().expect("a change was seen");
    assert!(
        report
            .repairs
            .iter()
            .any(|r| r.was == RepairKind::Empty && r.location.starts_with("backup 1")),
        "{report:#?}"
    );
    assert!(fs::metadata(slot(&d.backups[0], "yt", 1)).unwrap().len() > 0);
    assert!(vault.quick_check().unwrap().is_none());
}
