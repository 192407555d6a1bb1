//! End-to-end with real processes: `tether agent serve` (HTTPS) + oidc-provider +
//! `tether pair`, `watch`, `reauth --no-browser` (this test plays the browser with a
//! cookie-keeping HTTP client), `status --json`, `unpair`.

use super::support::{oidc_credential, pair_file, tether, Daemon, Proc};
use crate::require;
use crate::util::oidc::{self, OidcOptions, OidcProvider};
use std::time::Duration;

/// Runs `tether reauth studio/youtube --no-browser` and completes the consent as the browser.
async fn reauth_as_browser(config: &std::path::Path, oidc: &OidcProvider) {
    let run = super::support::cli_reauth(config, oidc, None, &[]).await;
    let (status, page) = &run.tab;
    assert_eq!(*status, 200, "{page}");
    assert!(
        page.contains("studio · youtube is working again"),
        "the tab shows the daemon's answer: {page}"
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("studio · youtube: ok"),
        "{}",
        run.stdout
    );
}

async fn status_json(config: &std::path::Path) -> (i32, serde_json::Value) {
    let out = tether(config, &[("TETHER_SECRETS", "file")])
        .args(["status", "--json"])
        .output()
        .expect("run tether status");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status --json is JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_watch_revoke_reauth_status() {
    require!(oidc::available(), oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions::default());
    let daemon = Daemon::start(&oidc_credential(
        "youtube",
        &oidc,
        "probe_interval = \"15s\"",
    ))
    .await;
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("tether");

    // Pair.
    let out = tether(&config, &[("TETHER_SECRETS", "file")])
        .args(["pair", &daemon.pairing_code()])
        .output()
        .expect("run tether pair");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pair: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("paired with agent studio"), "{text}");
    assert!(text.contains("certificate pinned: sha256"), "{text}");
    assert!(
        text.contains("youtube ("),
        "shows what it paired with: {text}"
    );

    // The credential has never been authorized: bring it up through the companion.
    reauth_as_browser(&config, &oidc).await;
    let (code, json) = status_json(&config).await;
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["agents"][0]["credentials"][0]["state"], "ok", "{json}");

    // Watch, then revoke the grant at the provider.
    let mut cmd = tether(&config, &[("TETHER_SECRETS", "file")]);
    cmd.arg("watch");
    let watch = Proc::spawn(cmd, "tether watch");
    watch
        .wait_line(false, Duration::from_secs(30), |l| {
            l.contains("studio · youtube: ok")
        })
        .await;
    assert!(oidc.revoke_all().await >= 1);
    // One check interval is 15 s (probe); allow for the confirming refresh and the stream.
    let death = watch
        .wait_line(false, Duration::from_secs(15 + 15), |l| {
            l.contains("studio · youtube") && l.contains("tether reauth studio/youtube")
        })
        .await;
    assert!(
        death.contains("dead since") || death.contains("refused since"),
        "{death}"
    );
    let (code, json) = status_json(&config).await;
    assert_eq!(code, 2, "status exits non-zero while dead: {json}");
    assert_eq!(
        json["agents"][0]["credentials"][0]["state"], "dead",
        "{json}"
    );

    // One-click re-auth (the browser is this test), and the watcher sees the recovery.
    reauth_as_browser(&config, &oidc).await;
    watch
        .wait_line(false, Duration::from_secs(30), |l| {
            l.contains("studio · youtube: working again")
        })
        .await;
    let (code, json) = status_json(&config).await;
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["ok"], true);
    assert_eq!(json["agents"][0]["credentials"][0]["state"], "ok", "{json}");
    let dead_lines = watch
        .stdout()
        .lines()
        .filter(|l| l.contains("tether reauth studio/youtube"))
        .count();
    assert_eq!(
        dead_lines,
        1,
        "one death, one notification:\n{}",
        watch.stdout()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_again_needs_confirmation_and_unpair_forgets() {
    let daemon = Daemon::start("").await;
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("tether");
    let pair = |code: String, yes: bool| {
        let mut cmd = tether(&config, &[("TETHER_SECRETS", "file")]);
        cmd.args(["pair", &code]);
        if yes {
            cmd.arg("--yes");
        }
        cmd.output().expect("run tether pair")
    };
    assert!(pair(daemon.pairing_code(), false).status.success());
    let before = std::fs::read_to_string(config.join("companion.toml")).unwrap();

    // Stdin is not a terminal and there is no --yes: refuse, change nothing.
    let out = pair(daemon.pairing_code(), false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("already paired") && err.contains("--yes"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(config.join("companion.toml")).unwrap(),
        before
    );

    let out = pair(daemon.pairing_code(), true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("replaced the earlier pairing studio"));
    let after = std::fs::read_to_string(config.join("companion.toml")).unwrap();
    assert_ne!(after, before, "a new device id was recorded");
    assert_eq!(after.matches("[[agent]]").count(), 1);

    // A used code is refused by the daemon with a clear error.
    let code = daemon.pairing_code();
    assert!(pair(code.clone(), true).status.success());
    let out = pair(code, true);
    assert!(!out.status.success());

    // Revoke this device on the agent: status says so, and how to fix it.
    let cfg = tether::companion::config::Config::load(&config.join("companion.toml")).unwrap();
    let id = cfg.agents[0].device_id.clone().expect("device id");
    daemon.agent_cmd(&["revoke", &id]);
    let (code, json) = status_json(&config).await;
    assert_eq!(code, 2);
    assert_eq!(json["agents"][0]["contact"], "unauthorized", "{json}");
    assert!(
        json["agents"][0]["error"]
            .as_str()
            .unwrap()
            .contains("tether pair"),
        "{json}"
    );

    let out = tether(&config, &[("TETHER_SECRETS", "file")])
        .args(["unpair", "studio"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let tokens = std::fs::read_to_string(config.join("device-tokens.toml")).unwrap_or_default();
    assert!(!tokens.contains("studio"), "the token is gone: {tokens}");
    let (code, json) = status_json(&config).await;
    assert_eq!((code, json["agents"].as_array().unwrap().len()), (0, 0));
    let out = tether(&config, &[])
        .args(["unpair", "studio"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no paired agent named `studio`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_the_config_file_and_line_when_it_is_broken() {
    let home = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        home.path().join("companion.toml"),
        "poll_interval_secs = 60\n[[agent]]\nname = 5\n",
    )
    .unwrap();
    let out = tether(home.path(), &[]).arg("status").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("companion.toml") && err.contains("line 3"),
        "{err}"
    );
}

/// The causes of an `error:` line, split where the CLI joins them.
fn causes(stderr: &str) -> Vec<String> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("an error line: {stderr}"));
    line.trim_start_matches("error: ")
        .split(": ")
        .map(str::to_owned)
        .collect()
}

/// Every cause of the chain is printed once: no part repeats another, nor is one part
/// contained in an earlier one (a message that formats its own source and also returns it).
fn assert_each_cause_once(stderr: &str) {
    let parts = causes(stderr);
    for (i, p) in parts.iter().enumerate() {
        for q in &parts[..i] {
            assert!(
                !q.contains(p.as_str()),
                "cause `{p}` is printed twice in: {stderr}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_companion_error_prints_each_cause_once() {
    let daemon = Daemon::start("").await;
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("tether");
    pair_file(&config, &daemon.pairing_code());
    // `tether reauth` fails before any browser: exit 1, the agent named, each cause once.
    let refused = || {
        let out = tether(&config, &[("TETHER_SECRETS", "file")])
            .args(["reauth", "studio/youtube", "--no-browser", "--timeout", "5"])
            .output()
            .expect("run tether reauth");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("studio"), "the error names the agent: {err}");
        assert_each_cause_once(&err);
        err
    };

    // A certificate that is not the paired one: the TLS layer's causes, each once.
    let path = config.join("companion.toml");
    let paired = std::fs::read_to_string(&path).unwrap();
    let fingerprint = paired
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or_else(|| panic!("a pinned fingerprint: {paired}"))
        .to_owned();
    let wrong: String = fingerprint
        .chars()
        .map(|c| if c.is_ascii_hexdigit() { '0' } else { c })
        .collect();
    std::fs::write(&path, paired.replace(&fingerprint, &wrong)).unwrap();
    let err = refused();
    assert!(
        err.contains("pair again"),
        "the error says how to fix it: {err}"
    );

    // The daemon gone: the connection's causes, each once.
    std::fs::write(&path, &paired).unwrap();
    drop(daemon);
    let err = refused();
    assert!(
        err.contains("tether agent serve"),
        "the error says what to check: {err}"
    );
}

#[test]
fn the_cause_check_catches_a_repeated_cause() {
    // The check above must be able to fail: a message that repeats its source.
    let twice = "error: cannot reach agent studio: connection refused: connection refused\n";
    let inside = "error: cannot reach agent studio (connection refused): connection refused\n";
    for stderr in [twice, inside] {
        assert!(std::panic::catch_unwind(|| assert_each_cause_once(stderr)).is_err());
    }
    assert_each_cause_once("error: cannot reach agent studio: connection refused\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paste_of_another_bot_is_refused_naming_the_fix_and_new_account_replaces_it() {
    use crate::agent::identity::{two_bots, BOT_A, BOT_B};
    use std::io::Write as _;
    let (_telegram, body) = two_bots();
    let daemon = Daemon::start(&body).await;
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("tether");
    pair_file(&config, &daemon.pairing_code());
    // `tether paste` with the token on standard input, as a script would run it.
    let paste = |secret: &str, extra: &[&str]| {
        let mut child = tether(&config, &[("TETHER_SECRETS", "file")])
            .args(["paste", "studio/telegram"])
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{secret}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = paste(BOT_A, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("new token accepted"), "{stdout}");

    let (code, _, stderr) = paste(BOT_B, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("this is @other_bot (bot id 987654321)")
            && stderr.contains("belongs to @studio_bot (bot id 123456789)")
            && stderr.contains("tether paste studio/telegram --new-account"),
        "the refusal names both bots and the paste fix: {stderr}"
    );
    assert!(
        !stderr.contains("tether reauth"),
        "a pasted token is not re-authorized: {stderr}"
    );
    let (_, status) = status_json(&config).await;
    let status = status.to_string();
    assert!(
        status.contains("@studio_bot (bot id 123456789)") && !status.contains("@other_bot"),
        "the credential still belongs to the first bot: {status}"
    );

    let (code, stdout, stderr) = paste(BOT_B, &["--new-account"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("new token accepted"), "{stdout}");
    let (_, status) = status_json(&config).await;
    let status = status.to_string();
    assert!(
        status.contains("@other_bot (bot id 987654321)"),
        "replaced on purpose: {status}"
    );
}
