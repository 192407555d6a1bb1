//! An agent's challenge in the terminal, with real processes: `tether agent serve` with a
//! `kind = "session"` credential, `tether pair`, `tether watch` and `tether challenge`
//! drawing the QR code the agent posts (over pinned HTTPS, with an agent token).

use super::support::{tether, Daemon, Proc};
use std::time::Duration;

const BODY: &str = r#"
[[credentials]]
name = "whatsapp"
kind = "session"
"#;

/// The agent's side: a pinned client and its token.
struct StandIn {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl StandIn {
    async fn post(&self, path: &str, body: Option<serde_json::Value>) -> serde_json::Value {
        for _ in 0..4 {
            let mut r = self
                .http
                .post(format!("{}/v1/credentials/whatsapp/{path}", self.url))
                .bearer_auth(&self.token);
            if let Some(b) = &body {
                r = r.json(b);
            }
            let resp = r.send().await.expect("request to the daemon");
            if resp.status() == 429 {
                // Challenges are posted at most once a second: wait as an agent would.
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            assert!(resp.status().is_success(), "{path}: {}", resp.status());
            return resp.json().await.expect("JSON reply");
        }
        panic!("{path}: still rate-limited after four tries");
    }

    async fn qr(&self, payload: &str) {
        self.post(
            "challenge",
            Some(serde_json::json!({"kind": "qr", "payload": payload})),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_and_challenge_draw_the_qr_code_the_agent_posts() {
    let daemon = Daemon::start(BODY).await;
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("tether");
    let code = daemon.pairing_code();
    let out = tether(&config, &[("TETHER_SECRETS", "file")])
        .args(["pair", &code])
        .output()
        .expect("run tether pair");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fp = tether::protocol::PairingCode::parse(&code)
        .unwrap()
        .fingerprint
        .expect("pinned fingerprint");
    let agent = StandIn {
        http: crate::agent::harness::pinned_client(&fp.to_hex()),
        url: daemon.url.clone(),
        token: daemon
            .agent_cmd(&["token", "create", "standin"])
            .trim()
            .to_string(),
    };
    agent
        .post("report", Some(serde_json::json!({"ok": true})))
        .await;

    // Nothing to show yet.
    let out = tether(&config, &[("TETHER_SECRETS", "file")])
        .args(["challenge", "studio/whatsapp", "--once"])
        .output()
        .expect("run tether challenge");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no open challenge; it is ok"));

    let mut cmd = tether(&config, &[("TETHER_SECRETS", "file")]);
    cmd.arg("watch");
    let watch = Proc::spawn(cmd, "tether watch");
    watch
        .wait_line(false, Duration::from_secs(30), |l| {
            l.contains("studio · whatsapp: ok")
        })
        .await;

    let first = "2@first-code,abc";
    agent.qr(first).await;
    let qr = tether::companion::challenge::qr_terminal(first).unwrap();
    wait_for_text(
        &watch,
        "studio · whatsapp: scan the QR code with your phone",
    )
    .await;
    wait_for_text(&watch, &qr).await;
    // Who asks is said with it: the agent, not Tether.
    wait_for_text(
        &watch,
        "asked by: your agent asks (not Tether) for whatsapp",
    )
    .await;

    // `tether challenge` draws the current code, follows the next one, and ends when the
    // agent says its session works.
    let mut cmd = tether(&config, &[("TETHER_SECRETS", "file")]);
    cmd.args(["challenge", "studio/whatsapp"]);
    let mut follow = Proc::spawn(cmd, "tether challenge");
    wait_for_text(&follow, &qr).await;
    wait_for_text(
        &follow,
        "asked by: your agent asks (not Tether) for whatsapp",
    )
    .await;
    wait_for_text(&follow, "waiting for the agent").await;
    let second = "2@second-code,def";
    agent.qr(second).await;
    let qr2 = tether::companion::challenge::qr_terminal(second).unwrap();
    wait_for_text(&follow, &qr2).await;
    wait_for_text(&watch, &qr2).await;
    // `tether watch` on a terminal (a pseudo-terminal from `script`), to see its
    // countdown redrawn in place.
    let live = super::support::have("script").then(|| {
        let base = tether(&config, &[("TETHER_SECRETS", "file")]);
        let mut cmd = std::process::Command::new("script");
        cmd.env_clear();
        for (k, v) in base.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        cmd.args(["-qfec"])
            .arg(format!("{} watch", crate::util::tether_bin().display()))
            .arg("/dev/null");
        Proc::spawn(cmd, "tether watch on a terminal")
    });
    if let Some(live) = &live {
        wait_for_text(live, &qr2.replace('\n', "\r\n")).await;
    }
    // A code with an end: the countdown is drawn with it, and its expiry is said once
    // the moment it passes (into this pipe, without redraws).
    let third = "2@third-code,ghi";
    // Five seconds: the post may first wait out the one-a-second limit on challenges.
    let ends = chrono::Utc::now() + chrono::Duration::seconds(5);
    agent
        .post(
            "challenge",
            Some(serde_json::json!({"kind": "qr", "payload": third, "expires_at": ends})),
        )
        .await;
    wait_for_text(
        &follow,
        &tether::companion::challenge::qr_terminal(third).unwrap(),
    )
    .await;
    wait_for_text(&follow, "(expires in 0:0").await;
    wait_for_text(&follow, "(expired: the agent posts a new one)").await;
    let out = follow.stdout();
    assert_eq!(
        out.matches("(expired: the agent posts a new one)").count(),
        1,
        "{out}"
    );
    assert!(
        !out.contains('\r'),
        "no terminal redraws into a pipe: {out:?}"
    );
    // `tether watch` says the expiry too: once into its pipe, and on the terminal after
    // a countdown redrawn each second on the bottom line.
    wait_for_text(
        &watch,
        "(studio · whatsapp: expired: the agent posts a new one)",
    )
    .await;
    let out = watch.stdout();
    assert_eq!(
        out.matches("(studio · whatsapp: expired: the agent posts a new one)")
            .count(),
        1,
        "{out}"
    );
    assert!(!out.contains('\r'), "no redraws into a pipe: {out:?}");
    if let Some(live) = &live {
        wait_for_text(
            live,
            "(studio · whatsapp: expired: the agent posts a new one)",
        )
        .await;
        let out = live.stdout();
        let redraws = out
            .matches("\r\x1b[K(studio · whatsapp: expires in 0:0")
            .count();
        assert!(
            redraws >= 2,
            "the countdown is redrawn in place each second ({redraws} times): {out:?}"
        );
        assert_eq!(
            out.matches("\r\x1b[K(studio · whatsapp: expired: the agent posts a new one)")
                .count(),
            1,
            "{out:?}"
        );
    } else {
        crate::util::skipped("its terminal half needs script (util-linux)");
    }
    agent.post("resolved", None).await;
    assert_eq!(follow.wait_exit(Duration::from_secs(10)).await, 0);
    assert!(
        follow
            .stdout()
            .contains("the agent says it works again (ok)"),
        "{}",
        follow.stdout()
    );
    watch
        .wait_line(false, Duration::from_secs(10), |l| {
            l.contains("studio · whatsapp: working again")
        })
        .await;
    // The expiry was said once, counting everything printed since: each program has now
    // printed the resolution that came after it, so a repeated expiry would be there.
    let out = follow.stdout();
    assert_eq!(
        out.matches("(expired: the agent posts a new one)").count(),
        1,
        "{out}"
    );
    let out = watch.stdout();
    assert_eq!(
        out.matches("(studio · whatsapp: expired: the agent posts a new one)")
            .count(),
        1,
        "{out}"
    );
    if let Some(live) = &live {
        wait_for_text(live, "studio · whatsapp: working again").await;
        let out = live.stdout();
        assert_eq!(
            out.matches("\r\x1b[K(studio · whatsapp: expired: the agent posts a new one)")
                .count(),
            1,
            "{out:?}"
        );
    }
}

async fn wait_for_text(p: &Proc, text: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !p.stdout().contains(text) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {text:?} in:\n{}",
            p.stdout()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
