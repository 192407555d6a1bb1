//! The `tether agent` commands against a running daemon: init, pair (link and QR),
//! token create, devices, revoke.

use super::harness::TestAgent;
use crate::util;
use reqwest::Method;
use std::process::Command;
use tether::protocol::{PairResponse, PairingCode};

fn tether(args: &[&str], config: &std::path::Path) -> (bool, String, String) {
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

#[test]
fn init_writes_an_example_that_parses_and_does_not_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("etc/agent.toml");
    let (ok, _, err) = tether(&["agent", "init"], &path);
    assert!(ok, "{err}");
    let cfg = tether::agent::config::parse(&path).expect("the example parses");
    assert_eq!(cfg.credentials[0].provider, "google");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("client_secret_env"), "{text}");
    let (ok, _, err) = tether(&["agent", "init"], &path);
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
}

#[tokio::test]
async fn pair_token_devices_and_revoke_work_while_the_daemon_runs() {
    let a = TestAgent::start("", "").await;
    let config = a.config_path();
    let (ok, out, err) = tether(&["agent", "pair"], &config);
    assert!(ok, "{err}");
    let link = out
        .lines()
        .find(|l| l.starts_with("tether://pair?"))
        .expect("a pairing link");
    assert!(
        out.contains('█') || out.contains('▀') || out.contains('▄'),
        "no QR code:\n{out}"
    );
    let code = PairingCode::parse(link).unwrap();
    assert_eq!(
        code.fingerprint.as_ref(),
        Some(&a.daemon.tls().unwrap().fingerprint)
    );
    // The same host and certificate words the tray's pair dialog shows for the link.
    let shown = tether::companion::pair_link::preview(link).unwrap();
    assert!(
        out.contains(&format!(
            "daemon {} · certificate {}",
            shown.host, shown.certificate
        )),
        "{out}"
    );
    let paired: PairResponse = a
        .req(Method::POST, "/v1/pair", None)
        .json(&serde_json::json!({"secret": code.secret.secret(), "device_name": "laptop"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let device = paired.device_token.secret().to_string();
    assert_eq!(
        a.req(Method::GET, "/v1/health", Some(&device))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let (ok, token, err) = tether(&["agent", "token", "create", "uploader"], &config);
    assert!(ok, "{err}");
    let token = token.trim().to_string();
    // An agent token reads access tokens and nothing else.
    let r = a
        .req(
            Method::GET,
            "/v1/credentials/none/access-token",
            Some(&token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        a.req(Method::GET, "/v1/health", Some(&token))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    // `tether agent token get` prints a token for shell scripts; without the env var it
    // says what to set.
    let get = |token: Option<String>| {
        let (config, url) = (config.clone(), a.base.clone());
        // The daemon runs on this test's runtime: run the blocking command elsewhere.
        tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(util::tether_bin());
            cmd.args(["agent", "token", "get", "none", "--url", &url, "--config"])
                .arg(&config)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default());
            if let Some(t) = token {
                cmd.env("TETHER_AGENT_TOKEN", t);
            }
            cmd.output().unwrap()
        })
    };
    let out = get(None).await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TETHER_AGENT_TOKEN"));
    let out = get(Some(token.clone())).await.unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("credential none is not configured"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (ok, list, err) = tether(&["agent", "devices", "--json"], &config);
    assert!(ok, "{err}");
    let list: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap();
    assert!(list
        .iter()
        .any(|d| d["id"] == paired.device_id.as_str() && d["role"] == "device"));
    assert!(list
        .iter()
        .any(|d| d["name"] == "uploader" && d["role"] == "agent"));
    assert!(!serde_json::to_string(&list).unwrap().contains(&device));

    let (ok, _, err) = tether(&["agent", "revoke", &paired.device_id], &config);
    assert!(ok, "{err}");
    assert_eq!(
        a.req(Method::GET, "/v1/health", Some(&device))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let (ok, _, err) = tether(&["agent", "revoke", "nosuchid"], &config);
    assert!(!ok);
    assert!(err.contains("tether agent devices"), "{err}");
}

#[tokio::test]
async fn token_get_prints_a_fresh_access_token() {
    let dir = tempfile::tempdir().unwrap();
    let a = TestAgent::start_in(
        dir,
        "",
        "[[credentials]]\nname = \"bot\"\nprovider = \"generic\"\nclient_id = \"c\"\nrefresh_interval = \"1h\"\n[credentials.overrides]\nauth_url = \"http://127.0.0.1:9/a\"\ntoken_url = \"http://127.0.0.1:9/t\"\n",
        |d| {
            let mut r = tether::vault::Record::new("bot", "generic");
            r.access_token = Some(tether::secret::AccessToken::new("at-for-scripts"));
            r.refresh_token = Some(tether::secret::RefreshToken::new("rt"));
            r.expires_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
            super::harness::seed(d, r);
        },
    )
    .await;
    let out = tokio::task::spawn_blocking({
        let config = a.config_path();
        let url = a.base.clone();
        let token = a.agent.clone();
        move || {
            Command::new(util::tether_bin())
                .args(["agent", "token", "get", "bot", "--url", &url, "--config"])
                .arg(&config)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("TETHER_AGENT_TOKEN", token)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "at-for-scripts"
    );
}

#[tokio::test]
async fn token_get_pins_an_upper_case_https_url_and_sends_no_token_over_http_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let a = TestAgent::start_in(
        dir,
        "",
        "[[credentials]]\nname = \"bot\"\nprovider = \"generic\"\nclient_id = \"c\"\nrefresh_interval = \"1h\"\n[credentials.overrides]\nauth_url = \"http://127.0.0.1:9/a\"\ntoken_url = \"http://127.0.0.1:9/t\"\n",
        |d| {
            let mut r = tether::vault::Record::new("bot", "generic");
            r.access_token = Some(tether::secret::AccessToken::new("at-for-scripts"));
            r.refresh_token = Some(tether::secret::RefreshToken::new("rt"));
            r.expires_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
            super::harness::seed(d, r);
        },
    )
    .await;
    let run = |url: String| {
        let config = a.config_path();
        let token = a.agent.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(util::tether_bin())
                .args(["agent", "token", "get", "bot", "--url", &url, "--config"])
                .arg(&config)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("TETHER_AGENT_TOKEN", token)
                .output()
                .unwrap()
        })
    };
    // `HTTPS://` is https: the daemon's self-signed certificate is accepted through the pin
    // (without it, the certificate would be refused as untrusted).
    let upper = a.base.replacen("https://", "HTTPS://", 1);
    let out = run(upper).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "at-for-scripts"
    );

    // Plain http to a host that is not loopback by the rule (0.0.0.0 reaches this
    // machine, so nothing leaves it): refused before any connection.
    let sniffer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = sniffer.local_addr().unwrap().port();
    let connected = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = connected.clone();
    std::thread::spawn(move || {
        if sniffer.accept().is_ok() {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    for scheme in ["http", "HTTP"] {
        let out = run(format!("{scheme}://0.0.0.0:{port}")).await.unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains("plain http"), "{err}");
    }
    assert!(
        !connected.load(std::sync::atomic::Ordering::SeqCst),
        "the agent token was sent over plain http"
    );
}
