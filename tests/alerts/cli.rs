//! `tether agent alerts test [CHANNEL]`: the real command sends a labelled test alert
//! through every channel of an agent.toml to the real receivers, and reports each result.

use super::{aiosmtpd_available, http_channels_toml, Receiver, SmtpSink, BOT_TOKEN};
use crate::util;
use std::path::{Path, PathBuf};

/// An agent.toml in `dir` with `[alerts]` holding `channels` (an alerts-section body).
fn agent_toml(dir: &Path, channels: &str) -> PathBuf {
    let body = channels.replace("[[channels]]", "[[alerts.channels]]");
    let (head, rest) = match body.find("[[alerts.channels]]") {
        Some(i) => body.split_at(i),
        None => (body.as_str(), ""),
    };
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"studio\"\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n[alerts]\n{head}\n{rest}",
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

async fn alerts_test(config: &Path, channel: Option<&str>) -> (Option<i32>, String, String) {
    let mut cmd = tokio::process::Command::new(util::tether_bin());
    cmd.args(["agent", "alerts", "test"]);
    if let Some(c) = channel {
        cmd.arg(c);
    }
    let out = cmd
        .arg("--config")
        .arg(config)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .await
        .expect("run tether");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_labelled_test_alert_goes_through_every_channel() {
    crate::require!(
        aiosmtpd_available(),
        "python3 with aiosmtpd (pip install aiosmtpd)"
    );
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let outdir = dir.path().join("mail");
    std::fs::create_dir(&outdir).unwrap();
    let sink = SmtpSink::start(&outdir, &[]).await;
    let channels = format!(
        "{}\n[[channels]]\nname = \"mail\"\nkind = \"email\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\ntls = \"none\"\nfrom = \"tether@example.org\"\nto = [\"owner@example.org\"]\n",
        http_channels_toml(&rx, dir.path()),
        sink.port
    );
    let config = agent_toml(dir.path(), &channels);
    let (code, out, err) = alerts_test(&config, None).await;
    assert_eq!(code, Some(0), "{out}{err}");
    for line in [
        "ops-chat (webhook): delivered",
        "phone (ntfy): delivered",
        "owner-telegram (telegram): delivered",
        "mail (email): delivered",
    ] {
        assert!(out.contains(line), "{line:?} not in {out}");
    }

    let hook = rx.seen("/hooks/T0/SECRETPATH");
    assert_eq!(hook.len(), 1);
    let json = hook[0].json();
    assert_eq!(json["kind"], "test");
    let text = json["text"].as_str().unwrap();
    assert!(
        text.contains("TEST alert from studio (nothing is wrong)"),
        "{text}"
    );
    let push = rx.seen("/tether-studio");
    assert_eq!(push.len(), 1);
    assert!(push[0].header("title").contains("TEST alert"));
    assert_eq!(push[0].header("priority"), "low");
    let tg = rx.seen(&format!("/tg/bot{BOT_TOKEN}/sendMessage"));
    assert_eq!(tg.len(), 1);
    assert!(tg[0].json()["text"]
        .as_str()
        .unwrap()
        .contains("TEST ALERT, nothing is wrong"));
    let mail = sink.messages();
    assert_eq!(mail.len(), 1);
    assert!(
        mail[0].contains("Subject: tether: TEST alert from studio"),
        "{}",
        mail[0]
    );
    assert!(mail[0].contains("nothing is wrong"), "{}", mail[0]);
    // The secrets the command read never reach its output.
    assert!(!out.contains(BOT_TOKEN) && !err.contains(BOT_TOKEN));
}

#[tokio::test]
async fn each_failing_channel_is_reported_and_one_channel_can_be_tested_alone() {
    let rx = Receiver::start().await;
    // Two answers: the first try and the command's one retry.
    rx.answer("/broken", 2, 500, "upstream exploded");
    let dir = tempfile::tempdir().unwrap();
    let config = agent_toml(
        dir.path(),
        &format!(
            "[[channels]]\nname = \"broken\"\nkind = \"webhook\"\nurl = \"{}\"\n[[channels]]\nname = \"good\"\nkind = \"webhook\"\nurl = \"{}\"\n",
            rx.url("/broken"),
            rx.url("/good")
        ),
    );
    let (code, out, _) = alerts_test(&config, None).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("broken (webhook): FAILED after 2 attempts"),
        "{out}"
    );
    assert!(out.contains("500"), "{out}");
    assert!(out.contains("good (webhook): delivered"), "{out}");
    assert!(out.contains("1 of 2 channel(s) failed"), "{out}");
    assert_eq!(rx.seen("/broken").len(), 2);
    assert_eq!(rx.seen("/good").len(), 1);

    let (code, out, _) = alerts_test(&config, Some("good")).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("broken"), "{out}");
    assert_eq!(rx.seen("/good").len(), 2);
    assert_eq!(rx.seen("/broken").len(), 2);

    let (code, _, err) = alerts_test(&config, Some("pager")).await;
    assert_ne!(code, Some(0));
    assert!(
        err.contains("no alert channel pager (it has: broken, good)"),
        "{err}"
    );

    let empty = tempfile::tempdir().unwrap();
    let config = agent_toml(empty.path(), "");
    let (code, _, err) = alerts_test(&config, None).await;
    assert_ne!(code, Some(0));
    assert!(
        err.contains("has no alert channels; add an [[alerts.channels]]"),
        "{err}"
    );
}
