//! `tether agent add` / `remove` on a real agent.toml: the operator's comments survive,
//! and a refused edit writes nothing.

use crate::util;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

fn tether(args: &[&str], config: &Path) -> (bool, String, String) {
    let out = Command::new(util::tether_bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect("run tether");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh `tether agent init` example in a temp dir.
fn example() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("agent.toml");
    let (ok, _, err) = tether(&["agent", "init"], &path);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&path).expect("read example");
    (dir, path, text)
}

fn comments(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .collect()
}

#[test]
fn add_and_remove_keep_the_operators_comments() {
    let (dir, path, original) = example();
    let secret = dir.path().join("gh-secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let out_file = dir.path().join("out/gh.env");
    let (ok, out, err) = tether(
        &[
            "agent",
            "add",
            "gh",
            "--provider",
            "github",
            "--client-id",
            "Iv1.abc",
            "--client-secret-file",
            secret.to_str().unwrap(),
            "--scope",
            "repo",
            "--scope",
            "read:org",
            "--output",
            &format!("{}:env", out_file.display()),
        ],
        &path,
    );
    assert!(ok, "{err}");
    assert!(out.contains("systemctl reload tether-agent"), "{out}");
    let added = std::fs::read_to_string(&path).unwrap();
    // Every comment of the example is still there, in order, and nothing else moved.
    assert_eq!(
        comments(&added)
            .into_iter()
            .filter(|c| !c.contains("Added by"))
            .collect::<Vec<_>>(),
        comments(&original)
    );
    assert!(added.starts_with(&original[..original.find("[[credentials]]").unwrap()]));
    let cfg = tether::agent::config::parse(&path).expect("the edited config parses");
    let gh = cfg.credential("gh").expect("gh added");
    assert_eq!(gh.provider, "github");
    assert_eq!(gh.client_id.as_deref(), Some("Iv1.abc"));
    assert_eq!(gh.client_secret_file.as_deref(), Some(secret.as_path()));
    assert_eq!(
        gh.scopes.as_deref(),
        Some(&["repo".into(), "read:org".into()][..])
    );
    assert_eq!(gh.outputs[0].path, out_file);
    assert_eq!(gh.outputs[0].access_var.as_deref(), Some("GH_ACCESS_TOKEN"));
    assert!(cfg.credential("youtube").is_some());

    let (ok, _, err) = tether(&["agent", "remove", "youtube"], &path);
    assert!(ok, "{err}");
    let removed = std::fs::read_to_string(&path).unwrap();
    let cfg = tether::agent::config::parse(&path).expect("the edited config parses");
    assert!(cfg.credential("youtube").is_none());
    assert!(cfg.credential("gh").is_some());
    // youtube's own comments left with it; the ones above its header that belong to
    // the [tls] section, and everything after it, stayed.
    for kept in [
        "# names = [\"studio.example\"]",
        "# Extra host names for the certificate.",
        "# name = \"bot\"",
        "# [[alerts.channels]]",
        "# password_file = \"/etc/tether/smtp-password\"",
    ] {
        assert!(removed.contains(kept), "{kept:?} lost:\n{removed}");
    }
    assert!(!removed.contains("youtube.upload"), "{removed}");
    assert!(!removed.contains("# Liveness probe"), "{removed}");

    let (ok, _, err) = tether(&["agent", "remove", "gh"], &path);
    assert!(ok, "{err}");
    let empty = std::fs::read_to_string(&path).unwrap();
    assert!(tether::agent::config::parse(&path)
        .unwrap()
        .credentials
        .is_empty());
    assert!(empty.contains("# [[alerts.channels]]"));
    // Only agent.toml and the editors' lock file; no temp files.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(tether::files::TEMP_PREFIX))
        .collect();
    names.sort();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn a_bad_edit_is_refused_with_a_fix_and_writes_nothing() {
    let (dir, path, original) = example();
    let before = std::fs::metadata(&path).unwrap();
    let missing = dir.path().join("no-such-secret");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "add".into(),
                "YouTube".into(),
                "--provider".into(),
                "google".into(),
                "--client-id".into(),
                "x".into(),
            ],
            "not allowed",
        ),
        (
            vec![
                "add".into(),
                "../etc".into(),
                "--provider".into(),
                "google".into(),
                "--client-id".into(),
                "x".into(),
            ],
            "not allowed",
        ),
        (
            vec![
                "add".into(),
                "mail".into(),
                "--provider".into(),
                "gmail".into(),
                "--client-id".into(),
                "x".into(),
            ],
            "known providers: google",
        ),
        (
            vec![
                "add".into(),
                "yt2".into(),
                "--provider".into(),
                "google".into(),
            ],
            "needs --client-id",
        ),
        (
            vec![
                "add".into(),
                "corp".into(),
                "--provider".into(),
                "generic".into(),
                "--client-id".into(),
                "x".into(),
            ],
            "auth_url",
        ),
        (
            vec![
                "add".into(),
                "youtube".into(),
                "--provider".into(),
                "google".into(),
                "--client-id".into(),
                "x".into(),
            ],
            "tether agent remove youtube",
        ),
        (
            vec![
                "add".into(),
                "yt3".into(),
                "--provider".into(),
                "google".into(),
                "--client-id".into(),
                "x".into(),
                "--client-secret-file".into(),
                missing.display().to_string(),
            ],
            "write the secret into it first",
        ),
        (
            vec![
                "add".into(),
                "yt4".into(),
                "--provider".into(),
                "google".into(),
                "--client-id".into(),
                "x".into(),
                "--output".into(),
                "/srv/token.yaml".into(),
            ],
            "PATH:FORMAT",
        ),
        (vec!["remove".into(), "tiktok".into()], "it has: youtube"),
        (vec!["remove".into(), "Bad Name".into()], "not allowed"),
    ];
    for (args, needle) in cases {
        let mut full = vec!["agent"];
        full.extend(args.iter().map(String::as_str));
        let (ok, _, err) = tether(&full, &path);
        assert!(!ok, "{args:?} was accepted");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
        let after = std::fs::metadata(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            original,
            "{args:?}"
        );
        assert_eq!(after.ino(), before.ino(), "{args:?} replaced the file");
    }
}

#[test]
fn an_edit_keeps_the_files_mode() {
    // agent.toml is root's and readable by the daemon's group (0640) in the package; a
    // 0600 rewrite would lock the daemon out of its own config.
    let (_dir, path, _) = example();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (ok, _, err) = tether(&["agent", "add", "bot", "--provider", "telegram"], &path);
    assert!(ok, "{err}");
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
    assert!(tether::agent::config::parse(&path)
        .unwrap()
        .credential("bot")
        .is_some());
}
