//! Bad input: garbage, a wrong schema version, symbolic links, bad names, a location that
//! is a file, a read-only location. Each gets an error naming the path and the fix, and
//! no stored generation is touched.

use super::{content, is_root, refresh, sample, slot, snapshot, Dirs, Tmpfs};
use std::fs;
use std::os::unix::fs::symlink;
use tether::vault::{record, OutputFormat, OutputSpec, Vault, VaultConfig, VaultError};

/// A one-location vault holding generations 1 and 2 of `yt`.
fn stored() -> Dirs {
    let d = Dirs::new(0);
    let (vault, _) = d.open();
    vault.commit(sample("yt", "1")).unwrap();
    vault.commit(sample("yt", "2")).unwrap();
    d
}

/// Asserts every stored generation file of `before` is byte-identical now.
fn untouched(before: &std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>) {
    for (path, bytes) in before {
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with("gen-") && name.ends_with(".json") {
            assert_eq!(
                content(path).as_ref(),
                Some(bytes),
                "{} was touched",
                path.display()
            );
        }
    }
}

#[test]
fn garbage_record_is_reported_with_its_path_and_moved_aside_when_a_good_generation_exists() {
    let d = stored();
    let before = snapshot(&d.primary);
    let bad = slot(&d.primary, "yt", 3);
    fs::write(&bad, b"{\"this\": \"is not a record\"}").unwrap();
    let (vault, report) = d.open();
    let line = report.quarantined[0].to_string();
    assert!(line.contains(&bad.display().to_string()), "{line}");
    assert!(line.contains("not a tether vault record"), "{line}");
    assert!(line.contains("moved it to"), "{line}");
    untouched(&before);
    assert_eq!(vault.get("yt").unwrap().unwrap().generation, 2);
}

#[test]
fn wrong_schema_version_is_refused_and_left_untouched() {
    let d = stored();
    let before = snapshot(&d.primary);
    // A record from a future build: same layout, schema 2.
    let mut r = sample("yt", "future");
    r.generation = 3;
    let text = String::from_utf8(record::encode(&r)).unwrap();
    let future = slot(&d.primary, "yt", 3);
    fs::write(&future, text.replacen("schema=1", "schema=2", 1)).unwrap();
    let future_bytes = fs::read(&future).unwrap();

    let (vault, report) = d.open();
    let err = vault.get("yt").unwrap_err();
    assert!(matches!(
        err,
        VaultError::UnsupportedSchema { found: 2, .. }
    ));
    let msg = err.to_string();
    assert!(
        msg.contains(&future.display().to_string()) && msg.contains("upgrade tether"),
        "{msg}"
    );
    assert!(report
        .problems
        .iter()
        .any(|p| p.contains(&future.display().to_string()) && p.contains("left untouched")));
    assert_eq!(fs::read(&future).unwrap(), future_bytes);
    untouched(&before);
}

#[test]
fn a_symlinked_record_is_never_followed() {
    let d = stored();
    let outside = d.tmp.path().join("outside.json");
    // Even a valid-looking record behind a link is refused.
    let mut r = sample("yt", "planted");
    r.generation = 3;
    fs::write(&outside, record::encode(&r)).unwrap();
    let link = slot(&d.primary, "yt", 3);
    symlink(&outside, &link).unwrap();
    let before = snapshot(&d.primary);

    let (vault, report) = d.open();
    let err = vault.get("yt").unwrap_err();
    let msg = format!("{:#}", anyhow::Error::from(err));
    assert!(msg.contains(&link.display().to_string()), "{msg}");
    assert!(
        msg.contains("symbolic link") && msg.contains("replace it"),
        "{msg}"
    );
    assert!(report.problems.iter().any(|p| p.contains("symbolic link")));
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(&outside).unwrap(), record::encode(&r));
    untouched(&before);
}

#[test]
fn a_symlinked_credential_directory_is_refused() {
    let d = Dirs::new(0);
    let (vault, _) = d.open();
    let elsewhere = d.tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, d.primary.join("yt")).unwrap();
    let report = vault.commit(sample("yt", "1"));
    let err = report.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("symbolic link"), "{msg}");
    assert_eq!(
        fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "wrote through the link"
    );
}

#[test]
fn a_symlink_at_an_output_path_is_refused() {
    let d = Dirs::new(0);
    let target = d.tmp.path().join("victim");
    fs::write(&target, b"do not overwrite").unwrap();
    let out = d.tmp.path().join("token.json");
    symlink(&target, &out).unwrap();
    let mut cfg = d.config();
    cfg.outputs = vec![OutputSpec {
        credential: "yt".into(),
        path: out.clone(),
        format: OutputFormat::TokenJson,
    }];
    let (vault, _) = Vault::open(cfg).unwrap();
    let report = vault.commit(sample("yt", "1")).unwrap();
    assert_eq!(report.output_errors.len(), 1);
    assert!(
        report.output_errors[0].contains("symbolic link"),
        "{report:?}"
    );
    assert_eq!(fs::read(&target).unwrap(), b"do not overwrite");
    assert!(matches!(
        vault.check_outputs(),
        Err(VaultError::Outputs { .. })
    ));
}

#[test]
fn bad_credential_names_are_refused_before_touching_anything() {
    let d = stored();
    let (vault, _) = d.open();
    let before = snapshot(d.tmp.path());
    let long = "a".repeat(65);
    for bad in ["a/b", "..", "../yt", "a\0b", long.as_str(), "", "YT"] {
        for err in [
            vault.commit(sample(bad, "x")).unwrap_err(),
            vault.get(bad).unwrap_err(),
            vault.history(bad).unwrap_err(),
            vault.rollback(bad, 1).unwrap_err(),
        ] {
            assert!(
                matches!(err, VaultError::InvalidName { .. }),
                "{bad:?}: {err}"
            );
            let msg = err.to_string();
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
            assert!(msg.contains("a-z, 0-9"), "{msg}");
        }
    }
    assert_eq!(snapshot(d.tmp.path()), before);
    assert!(vault.commit(sample(&"a".repeat(64), "x")).is_ok());
}

#[test]
fn a_location_that_is_a_file_is_refused_at_open() {
    let d = stored();
    let file = d.tmp.path().join("not-a-dir");
    fs::write(&file, b"important").unwrap();
    let before = snapshot(&d.primary);
    let err = Vault::open(VaultConfig::new(&d.primary, vec![file.clone()])).unwrap_err();
    let msg = format!("{:#}", anyhow::Error::from(err));
    assert!(msg.contains("backup 1"), "{msg}");
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(
        msg.contains("not a directory") && msg.contains("point the vault location"),
        "{msg}"
    );
    assert_eq!(fs::read(&file).unwrap(), b"important");
    untouched(&before);
}

#[test]
fn a_read_only_location_is_reported_and_the_others_carry_on() {
    let d = Dirs::new(0);
    let ro_root = d.tmp.path().join("ro");
    // Root ignores mode bits, so as root the read-only location is a read-only mount.
    let mount = if is_root() {
        let m = Tmpfs::mount(&ro_root, "1m");
        crate::require!(m.is_some(), "mounting a tmpfs failed");
        m
    } else {
        None
    };
    let backup = ro_root.join("vault");
    let cfg = VaultConfig::new(&d.primary, vec![backup.clone()]);
    {
        let (vault, _) = Vault::open(cfg.clone()).unwrap();
        vault.commit(sample("yt", "1")).unwrap();
    }
    let (alone, _) = Vault::open(VaultConfig::new(&backup, vec![])).unwrap();
    let before = snapshot(&backup);
    match &mount {
        Some(m) => m.remount(true),
        None => {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&backup, fs::Permissions::from_mode(0o500)).unwrap();
            fs::set_permissions(backup.join("yt"), fs::Permissions::from_mode(0o500)).unwrap();
        }
    }
    let fixed = |msg: &str| {
        (msg.contains("read-only") && msg.contains("remount"))
            || (msg.contains("permission denied") && msg.contains("chmod 700"))
    };

    // A location that turns read-only under an open vault: the commit, with no other
    // location, fails as a whole and says where and why.
    let err = alone.commit(sample("yt", "lost")).unwrap_err();
    // No location can be written (nor locked): nothing changes, whichever is found first.
    assert!(
        matches!(
            err,
            VaultError::AllLocationsFailed { .. } | VaultError::Lock { .. }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&backup.display().to_string()) && fixed(&msg),
        "{msg}"
    );
    assert_eq!(snapshot(&backup), before, "read-only location changed");

    // Opening with a read-only backup: reported, and the primary carries on.
    let (vault, report) = Vault::open(cfg.clone()).unwrap();
    let problem = report
        .problems
        .iter()
        .find(|p| p.contains(&backup.display().to_string()))
        .unwrap_or_else(|| panic!("{report:#?}"));
    assert!(fixed(problem), "{problem}");
    let commit = vault.commit(sample("yt", "2")).unwrap();
    assert_eq!(commit.generation, 2);
    assert_eq!(commit.failed.len(), 1, "{commit:?}");
    assert!(commit.failed[0].location.starts_with("backup 1"));
    assert!(commit.to_string().contains("stored in 1 of 2 locations"));
    assert_eq!(refresh(&vault.get("yt").unwrap().unwrap()), "1//refresh-2");
    assert!(!vault.location_health()[1].ok);
    assert_eq!(snapshot(&backup), before, "read-only location changed");

    // A vault whose only location is read-only does not open.
    match Vault::open(VaultConfig::new(&backup, vec![])) {
        Err(VaultError::NoUsableLocation { details }) => {
            assert!(
                details[0].contains(&backup.display().to_string()),
                "{details:?}"
            )
        }
        other => panic!("expected NoUsableLocation, got {other:?}"),
    }
    assert_eq!(snapshot(&backup), before);

    if mount.is_none() {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(backup.join("yt"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(&backup, fs::Permissions::from_mode(0o700)).unwrap();
    }
}

#[test]
fn a_vault_whose_lock_cannot_be_taken_anywhere_changes_nothing() {
    let d = Dirs::new(1);
    let cfg = VaultConfig::new(&d.primary, d.backups.clone());
    let (vault, _) = Vault::open(cfg).unwrap();
    vault.commit(sample("yt", "1")).unwrap();
    // One lock that cannot be opened: the other location's lock still serialises.
    fs::remove_file(d.primary.join(".lock")).ok();
    fs::create_dir(d.primary.join(".lock")).unwrap();
    vault.commit(sample("yt", "2")).unwrap();
    // Neither can be opened: refuse rather than run unlocked beside another process.
    fs::remove_file(d.backups[0].join(".lock")).ok();
    fs::create_dir(d.backups[0].join(".lock")).unwrap();
    let before = snapshot(d.tmp.path());
    let err = vault.commit(sample("yt", "3")).unwrap_err();
    assert!(matches!(err, VaultError::Lock { .. }), "{err}");
    assert!(
        err.to_string().contains("cannot take the vault's lock"),
        "{err}"
    );
    untouched(&before);
    assert_eq!(snapshot(d.tmp.path()).len(), before.len(), "no new files");
}
