//! `tether vault` commands, run as the real binary.

use super::{gens, Dirs};
use crate::util::tether_bin;
use std::process::{Command, Output};

fn vault_cmd(d: &Dirs, args: &[&str]) -> Output {
    let mut cmd = Command::new(tether_bin());
    cmd.env_clear()
        .arg("vault")
        .args(args)
        .arg("--primary")
        .arg(&d.primary);
    for b in &d.backups {
        cmd.arg("--backup").arg(b);
    }
    cmd.output().expect("run tether")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn import_status_history_rollback_reconcile() {
    let d = Dirs::new(1);
    let file = d.tmp.path().join("token.json");
    std::fs::write(
        &file,
        r#"{"type":"authorized_user","client_id":"cid","client_secret":"cs","refresh_token":"1//RT-SECRET-one","token":"ya29.AT-SECRET","expiry":"2030-01-01T00:00:00Z","scopes":["s"]}"#,
    )
    .unwrap();
    let out = vault_cmd(&d, &["import", "youtube", "--from", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("generation 1"), "{}", text(&out));
    std::fs::write(
        &file,
        r#"{"access_token":"at2","refresh_token":"1//RT-SECRET-two","expires_in":3600}"#,
    )
    .unwrap();
    let out = vault_cmd(
        &d,
        &[
            "import",
            "youtube",
            "--from",
            file.to_str().unwrap(),
            "--provider",
            "google",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));

    let out = vault_cmd(&d, &["status"]);
    let s = text(&out);
    assert!(out.status.success(), "{s}");
    assert!(s.contains("youtube") && s.contains("generation 2"), "{s}");
    assert!(s.contains("ok      "), "{s}");
    assert!(!s.contains("SECRET"), "status printed a secret: {s}");

    let out = vault_cmd(&d, &["history", "youtube"]);
    let s = text(&out);
    assert!(out.status.success(), "{s}");
    assert!(s.lines().count() == 3, "{s}");
    assert!(!s.contains("SECRET"), "{s}");

    let out = vault_cmd(&d, &["rollback", "youtube", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("stored again as generation 3"),
        "{}",
        text(&out)
    );
    let (vault, _) = d.open();
    let r = vault.get("youtube").unwrap().unwrap();
    assert_eq!(r.refresh_token.unwrap().secret(), "1//RT-SECRET-one");
    drop(vault);

    // Damage the primary, then let the command repair it.
    std::fs::File::create(super::slot(&d.primary, "youtube", 3)).unwrap();
    let out = vault_cmd(&d, &["reconcile"]);
    let s = text(&out);
    assert!(out.status.success(), "{s}");
    assert!(
        s.contains("repaired credential youtube in primary") && s.contains("empty"),
        "{s}"
    );
    let out = vault_cmd(&d, &["reconcile"]);
    assert!(text(&out).contains("nothing to repair"), "{}", text(&out));
    assert_eq!(gens(&d.primary, "youtube"), vec![1, 2, 3]);
}

#[test]
fn bad_input_gets_a_clear_error_and_exit_code() {
    let d = Dirs::new(0);
    let file = d.tmp.path().join("token.json");
    std::fs::write(&file, b"not json SECRET").unwrap();
    let out = vault_cmd(&d, &["import", "yt", "--from", file.to_str().unwrap()]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(1), "{s}");
    assert!(
        s.contains("not a JSON file") && s.contains(file.to_str().unwrap()),
        "{s}"
    );
    assert!(!s.contains("SECRET"), "{s}");

    let out = vault_cmd(&d, &["import", "../etc", "--from", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("invalid credential name \"../etc\""),
        "{}",
        text(&out)
    );

    let out = vault_cmd(&d, &["history", "nothing"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("credential nothing is not in the vault"),
        "{}",
        text(&out)
    );
}

#[test]
fn every_command_has_help() {
    for sub in ["status", "reconcile", "history", "rollback", "import"] {
        let out = Command::new(tether_bin())
            .args(["vault", sub, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{sub}");
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(
            s.contains("--primary") && s.contains("--backup"),
            "{sub}: {s}"
        );
    }
}

#[test]
fn config_flag_uses_the_daemons_locations_and_renders_its_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out_file = root.join("agent-out/token.json");
    std::fs::write(root.join("secret"), "cs-from-file\n").unwrap();
    let cfg = root.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"name = "studio"
listen = "127.0.0.1:0"
state_dir = "{root}/state"
backup_dirs = ["{root}/backup"]
[[credentials]]
name = "youtube"
provider = "google"
client_id = "cid.apps.googleusercontent.com"
client_secret_file = "{root}/secret"
[[credentials.outputs]]
path = "{out}"
format = "authorized_user"
"#,
            root = root.display(),
            out = out_file.display()
        ),
    )
    .unwrap();
    let token = root.join("import.json");
    std::fs::write(
        &token,
        r#"{"access_token":"at","refresh_token":"1//RT-SECRET","expires_in":3600}"#,
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(tether_bin())
            .env_clear()
            .arg("vault")
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .output()
            .expect("run tether")
    };
    let out = run(&[
        "import",
        "youtube",
        "--from",
        token.to_str().unwrap(),
        "--provider",
        "google",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // The same generation is in the daemon's primary (state/vault) and its backup.
    assert_eq!(gens(&root.join("state/vault"), "youtube"), vec![1]);
    assert_eq!(gens(&root.join("backup"), "youtube"), vec![1]);
    // The agent's output was rendered with the client from the agent config.
    let rendered: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(rendered["client_id"], "cid.apps.googleusercontent.com");
    assert_eq!(rendered["client_secret"], "cs-from-file");
    assert_eq!(rendered["refresh_token"], "1//RT-SECRET");
    let out = run(&["status"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("youtube"), "{}", text(&out));
    assert!(
        !text(&out).contains("RT-SECRET"),
        "status never prints a secret: {}",
        text(&out)
    );
}
