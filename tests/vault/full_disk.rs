//! Full disk: a backup location on a tiny tmpfs fills up; the commit reports it as failed,
//! the previous generation there stays intact, and the other locations get the new one.

use super::{gens, refresh, sample, slot, Dirs, Tmpfs};
use std::fs;
use std::io::Write;
use tether::vault::{record, RepairKind, Vault, VaultConfig};

#[test]
fn a_full_location_fails_alone_and_keeps_its_previous_generation() {
    let d = Dirs::new(0);
    let mount = Tmpfs::mount(&d.tmp.path().join("tiny"), "64k");
    crate::require!(
        mount.is_some(),
        "mounting a 64k tmpfs needs root (mount -t tmpfs)"
    );
    // The guard unmounts on drop, also when an assertion below fails.
    let mount = mount.expect("checked by require!");
    let full = mount.path.join("vault");
    let cfg = VaultConfig::new(&d.primary, vec![full.clone()]);
    let (vault, _) = Vault::open(cfg.clone()).unwrap();
    vault.commit(sample("yt", "1")).unwrap();
    let gen1 = fs::read(slot(&full, "yt", 1)).unwrap();

    // Fill the filesystem to the last byte.
    let mut filler = fs::File::create(mount.path.join("filler")).unwrap();
    let chunk = vec![0u8; 4096];
    loop {
        match filler.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                break;
            }
        }
    }
    drop(filler);

    let report = vault.commit(sample("yt", "2")).unwrap();
    assert_eq!(report.generation, 2);
    assert_eq!(report.written.len(), 1);
    assert!(report.written[0].starts_with("primary"));
    assert_eq!(report.failed.len(), 1, "{report:?}");
    let failure = &report.failed[0];
    assert!(failure.location.starts_with("backup 1"), "{failure}");
    assert!(failure.error.contains("no space left"), "{failure}");
    assert!(
        failure.error.contains(&full.display().to_string()),
        "{failure}"
    );

    // The full location still holds generation 1, byte for byte, and no temp file.
    assert_eq!(gens(&full, "yt"), vec![1]);
    assert_eq!(fs::read(slot(&full, "yt", 1)).unwrap(), gen1);
    record::decode_slot(&gen1, "yt", 1).unwrap();
    assert_eq!(fs::read_dir(full.join("yt")).unwrap().count(), 1);
    // The primary has the new one, and reads return it.
    assert_eq!(refresh(&vault.get("yt").unwrap().unwrap()), "1//refresh-2");
    assert!(!vault.location_health()[1].ok);

    // While it is full, reconcile cannot repair it and says so.
    let report = vault.reconcile().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("could not repair") && p.contains("no space left")),
        "{report:#?}"
    );
    assert!(!vault.location_health()[1].ok);
    assert_eq!(fs::read(slot(&full, "yt", 1)).unwrap(), gen1);

    // Once there is space again, reconcile brings the backup forward.
    fs::remove_file(mount.path.join("filler")).unwrap();
    let report = vault.reconcile().unwrap();
    let repair = report
        .repairs
        .iter()
        .find(|r| r.location.starts_with("backup 1"))
        .unwrap_or_else(|| panic!("{report:#?}"));
    assert_eq!(repair.was, RepairKind::Older { had: 1 });
    assert_eq!(gens(&full, "yt"), vec![1, 2]);
    assert!(vault.location_health()[1].ok);
    drop(vault);
    drop(mount);
}
