//! Reconcile repairs a damaged or missing primary from a backup, and re-renders wiped
//! outputs.

use super::{gens, refresh, sample, slot, snapshot, Dirs};
use std::fs;
use tether::vault::{OutputFormat, OutputSpec, RepairKind, Vault, VaultError};

/// A vault with generations 1 and 2 of `yt` in the primary and one backup, closed again.
fn two_generations() -> Dirs {
    let d = Dirs::new(1);
    let (vault, _) = d.open();
    vault.commit(sample("yt", "1")).unwrap();
    vault.commit(sample("yt", "2")).unwrap();
    d
}

fn primary_repair(report: &tether::vault::ReconcileReport) -> &tether::vault::Repair {
    report
        .repairs
        .iter()
        .find(|r| r.location.starts_with("primary") && r.generation == 2)
        .unwrap_or_else(|| panic!("no primary repair in {report:#?}"))
}

#[test]
fn zero_byte_primary_is_repaired_from_the_backup_not_taken_as_no_credential() {
    let d = two_generations();
    let good = fs::read(slot(&d.backups[0], "yt", 2)).unwrap();
    fs::File::create(slot(&d.primary, "yt", 2)).unwrap(); // truncates to 0 bytes

    let (vault, report) = d.open();
    let repair = primary_repair(&report);
    assert_eq!(repair.was, RepairKind::Empty);
    assert!(repair.from.starts_with("backup 1"));
    assert!(report.lines().iter().any(|l| l.contains("empty (0-byte)")));
    assert_eq!(fs::read(slot(&d.primary, "yt", 2)).unwrap(), good);
    let got = vault.get("yt").unwrap().expect("credential still there");
    assert_eq!((got.generation, refresh(&got)), (2, "1//refresh-2".into()));
}

#[test]
fn zero_byte_primary_is_read_from_the_backup_even_before_a_reconcile() {
    let d = two_generations();
    let (vault, _) = d.open();
    fs::File::create(slot(&d.primary, "yt", 2)).unwrap();
    let got = vault.get("yt").unwrap().expect("never `no credential`");
    assert_eq!(got.generation, 2);
    let report = vault.reconcile().unwrap();
    assert_eq!(primary_repair(&report).was, RepairKind::Empty);
}

#[test]
fn truncated_primary_is_repaired() {
    let d = two_generations();
    let path = slot(&d.primary, "yt", 2);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let (_, report) = d.open();
    assert_eq!(primary_repair(&report).was, RepairKind::Truncated);
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn garbage_primary_is_repaired() {
    let d = two_generations();
    let path = slot(&d.primary, "yt", 2);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, b"\x89PNG\r\n not a record at all").unwrap();
    let (_, report) = d.open();
    assert!(matches!(
        primary_repair(&report).was,
        RepairKind::Corrupt { .. }
    ));
    assert_eq!(fs::read(&path).unwrap(), bytes);

    // A single flipped byte inside the JSON is caught by the checksum.
    let mut flipped = bytes.clone();
    let i = flipped.len() - 10;
    flipped[i] ^= 1;
    fs::write(&path, &flipped).unwrap();
    let (_, report) = d.open();
    match &primary_repair(&report).was {
        RepairKind::Corrupt { reason } => assert!(reason.contains("checksum"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn missing_primary_is_repaired() {
    let d = two_generations();
    fs::remove_dir_all(d.primary.join("yt")).unwrap();
    let (vault, report) = d.open();
    assert_eq!(primary_repair(&report).was, RepairKind::Missing);
    assert_eq!(gens(&d.primary, "yt"), vec![2]);
    assert_eq!(vault.get("yt").unwrap().unwrap().generation, 2);
}

#[test]
fn older_primary_is_brought_forward() {
    let d = two_generations();
    fs::remove_file(slot(&d.primary, "yt", 2)).unwrap();
    let (_, report) = d.open();
    assert_eq!(primary_repair(&report).was, RepairKind::Older { had: 1 });
    assert_eq!(gens(&d.primary, "yt"), vec![1, 2]);
}

#[test]
fn each_location_is_repaired_from_whichever_has_the_good_copy() {
    let d = Dirs::new(2);
    let (vault, _) = d.open();
    vault.commit(sample("yt", "1")).unwrap();
    drop(vault);
    let good = fs::read(slot(&d.backups[1], "yt", 1)).unwrap();
    fs::write(slot(&d.primary, "yt", 1), b"garbage").unwrap();
    fs::remove_file(slot(&d.backups[0], "yt", 1)).unwrap();
    let (_, report) = d.open();
    assert_eq!(report.repairs.len(), 2, "{report:#?}");
    for root in d.roots() {
        assert_eq!(fs::read(slot(&root, "yt", 1)).unwrap(), good);
    }
    assert!(report
        .repairs
        .iter()
        .all(|r| r.from.starts_with("backup 2")));
}

#[test]
fn a_consistent_vault_reconciles_to_a_clean_report() {
    let d = two_generations();
    let (vault, _) = d.open();
    let before = snapshot(d.tmp.path());
    let report = vault.reconcile().unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(snapshot(d.tmp.path()), before);
}

#[test]
fn an_unrecoverable_newest_is_moved_aside_and_the_previous_one_serves() {
    let d = two_generations();
    // Generation 3 exists only in the primary, and is garbage.
    fs::write(slot(&d.primary, "yt", 3), b"").unwrap();
    let gen2 = fs::read(slot(&d.primary, "yt", 2)).unwrap();
    let (vault, report) = d.open();
    assert_eq!(report.quarantined.len(), 1, "{report:#?}");
    let q = &report.quarantined[0];
    assert_eq!(q.generation, 3);
    assert!(fs::metadata(&q.moved_to).is_ok(), "kept for inspection");
    assert!(q.to_string().contains(&q.path));
    assert_eq!(vault.get("yt").unwrap().unwrap().generation, 2);
    assert_eq!(fs::read(slot(&d.primary, "yt", 2)).unwrap(), gen2);
    // The next commit never reuses the number of the generation moved aside.
    assert_eq!(vault.commit(sample("yt", "n")).unwrap().generation, 4);
}

#[test]
fn a_credential_with_no_valid_generation_is_an_error_not_absent() {
    let d = Dirs::new(0);
    let (vault, _) = d.open();
    vault.commit(sample("yt", "1")).unwrap();
    fs::write(slot(&d.primary, "yt", 1), b"").unwrap();
    let err = vault.get("yt").unwrap_err();
    assert!(matches!(err, VaultError::NoValidGeneration { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains(&slot(&d.primary, "yt", 1).display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("empty"), "{msg}");
    // Reconcile leaves the only evidence in place and reports it.
    let report = vault.reconcile().unwrap();
    assert!(report.quarantined.is_empty());
    assert!(report
        .problems
        .iter()
        .any(|p| p.contains("no valid generation")));
    assert!(vault.get("yt").is_err());
}

#[test]
fn leftover_temp_files_from_a_crash_are_removed() {
    let d = two_generations();
    let tmp = d
        .primary
        .join("yt")
        .join(".tmp-gen-000000000003.json-abcdef");
    fs::write(&tmp, b"half a rec").unwrap();
    let (vault, _) = d.open();
    assert!(!tmp.exists());
    assert_eq!(vault.get("yt").unwrap().unwrap().generation, 2);
}

fn with_outputs(d: &Dirs) -> Vec<OutputSpec> {
    let out = d.tmp.path().join("agent");
    vec![
        OutputSpec {
            credential: "yt".into(),
            path: out.join("token.json"),
            format: OutputFormat::TokenJson,
        },
        OutputSpec {
            credential: "yt".into(),
            path: out.join("yt.env"),
            format: OutputFormat::Env {
                access_var: None,
                refresh_var: None,
            },
        },
    ]
}

#[test]
fn outputs_are_rendered_on_commit_and_a_wiped_output_is_re_rendered() {
    let d = Dirs::new(1);
    let mut cfg = d.config();
    cfg.outputs = with_outputs(&d);
    let (token_json, env) = (cfg.outputs[0].path.clone(), cfg.outputs[1].path.clone());
    let (vault, _) = Vault::open(cfg.clone()).unwrap();
    let report = vault.commit(sample("yt", "1")).unwrap();
    assert_eq!(report.outputs, vec![token_json.clone(), env.clone()]);
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&token_json).unwrap()).unwrap();
    assert_eq!(v["refresh_token"], "1//refresh-1");
    assert_eq!(v["generation"], 1);
    assert_eq!(
        fs::read_to_string(&env).unwrap(),
        "YT_ACCESS_TOKEN=ya29.access-1\nYT_REFRESH_TOKEN=1//refresh-1\n"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(&token_json).unwrap().mode() & 0o777, 0o600);
    let good = fs::read(&token_json).unwrap();

    // Nothing to do while the outputs are current.
    assert!(vault.check_outputs().unwrap().is_empty());

    // The 0-byte token.json of the story: detected by the cheap check and re-rendered.
    fs::File::create(&token_json).unwrap();
    assert_eq!(vault.check_outputs().unwrap(), vec![token_json.clone()]);
    assert_eq!(fs::read(&token_json).unwrap(), good);

    // Deleted or corrupted: re-rendered by reconcile (and reported).
    fs::remove_file(&env).unwrap();
    fs::write(&token_json, b"{\"access_token\": \"stale\"}").unwrap();
    let report = vault.reconcile().unwrap();
    assert_eq!(report.outputs, vec![token_json.clone(), env.clone()]);
    assert_eq!(fs::read(&token_json).unwrap(), good);
    assert!(env.exists());

    // And at start-up.
    drop(vault);
    fs::remove_file(&token_json).unwrap();
    let (_, report) = Vault::open(cfg).unwrap();
    assert_eq!(report.outputs, vec![token_json.clone()]);
    assert_eq!(fs::read(&token_json).unwrap(), good);
}

#[test]
fn outputs_follow_the_repaired_newest_generation() {
    let d = two_generations();
    let mut cfg = d.config();
    cfg.outputs = with_outputs(&d);
    fs::File::create(slot(&d.primary, "yt", 2)).unwrap();
    let (_, report) = Vault::open(cfg.clone()).unwrap();
    assert_eq!(report.repairs.len(), 1);
    let v: serde_json::Value =
        serde_json::from_slice(&fs::read(&cfg.outputs[0].path).unwrap()).unwrap();
    assert_eq!(v["generation"], 2);
    assert_eq!(v["refresh_token"], "1//refresh-2");
}
