//! Vault trouble reaches the owner: the daemon's primary location sits on a small tmpfs
//! that fills up. `tether status` exits non-zero and names it, the desktop gets one
//! notification (on a real session bus with dunst), the webhook gets a vault-trouble
//! alert, and all three hear the recovery when space returns.

use super::support::{bus_name_owned, have, next_matching, session_bus, tether, Daemon, Proc};
use crate::agent::harness::Webhook;
use crate::require;
use crate::vault::Tmpfs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tether::companion::notice::NoticeKind;
use tether::companion::notifier::DesktopNotifier;
use tether::companion::pair::PairOptions;
use tether::companion::secrets::Backend;
use tether::companion::watcher::{WatchEvent, WatchTiming};
use tether::companion::Companion;

const WAIT: Duration = Duration::from_secs(45);

/// `tether status --json` for the companion in `config`: exit code and the JSON.
fn status(config: &Path) -> (i32, serde_json::Value, String) {
    let json = tether(config, &[("TETHER_SECRETS", "file")])
        .args(["status", "--json"])
        .output()
        .expect("run tether status");
    let text = tether(config, &[("TETHER_SECRETS", "file")])
        .arg("status")
        .output()
        .expect("run tether status");
    (
        json.status.code().unwrap_or(-1),
        serde_json::from_slice(&json.stdout).expect("status --json is JSON"),
        String::from_utf8_lossy(&text.stdout).into_owned(),
    )
}

/// Writes zeros into `path` until the filesystem is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_primary_reaches_status_the_desktop_and_the_webhook_and_so_does_recovery() {
    require!(
        session_bus(),
        "a D-Bus session bus (run the suite inside dbus-run-session)"
    );
    require!(
        bus_name_owned("org.freedesktop.Notifications") && have("dbus-monitor"),
        "dunst running on the session bus, with dbus-monitor"
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let primary = state.join("vault");
    let mount = Tmpfs::mount(&primary, "256k");
    require!(
        mount.is_some(),
        "mounting a tmpfs needs root (mount -t tmpfs)"
    );
    // Unmounted on drop, also when an assertion fails.
    let mount = mount.expect("checked by require!");
    let _desktop = crate::util::desktop_session().await;

    let hook = Webhook::start();
    let body = format!(
        r#"vault_check_interval = "1s"
[[credentials]]
name = "bot"
provider = "telegram"

[alerts]
[[alerts.channels]]
name = "hook"
kind = "webhook"
url = "{}"
"#,
        hook.url
    );
    let daemon = Daemon::start_in(dir, &body, None).await;
    let home = tempfile::tempdir().unwrap();
    let companion = Companion::open(home.path(), Backend::File);
    companion
        .pair(&daemon.pairing_code(), &PairOptions::default(), &mut |_| {
            false
        })
        .await
        .expect("pairing works");
    let (code, json, _) = status(home.path());
    assert_eq!(code, 0, "healthy before the disk fills: {json:#}");
    assert_eq!(json["agents"][0]["vault"]["state"], "ok", "{json:#}");

    let mut monitor = std::process::Command::new("dbus-monitor");
    monitor.args([
        "--session",
        "interface='org.freedesktop.Notifications'",
        "type='method_return'",
    ]);
    let monitor = Proc::spawn(monitor, "dbus-monitor");
    monitor
        .wait_line(false, Duration::from_secs(10), |l| {
            l.contains("member=NameLost")
        })
        .await;
    let desktop = DesktopNotifier::new().expect("dunst answers GetCapabilities");
    let mut timing = WatchTiming::from_config(&companion.config().unwrap());
    timing.poll = Duration::from_secs(2);
    let mut watcher = companion
        .watch_with(timing, Arc::new(desktop), None)
        .unwrap();
    next_matching(&mut watcher, WAIT, "the first health report", |e| {
        matches!(e, WatchEvent::Vault { .. })
    })
    .await;

    // The disk fills up.
    let filler = mount.path.join("filler");
    fill(&filler);
    let WatchEvent::Notified { notice } = next_matching(
        &mut watcher,
        WAIT,
        "the vault-trouble notice",
        |e| matches!(e, WatchEvent::Notified { notice } if notice.kind == NoticeKind::VaultTrouble),
    )
    .await
    else {
        unreachable!()
    };
    let expected = format!("studio: primary {} is full", primary.display());
    assert_eq!(notice.summary, expected);
    assert_eq!(notice.body, "the credential is stored in 1 of 2 places");
    let call = monitor
        .wait_line(false, Duration::from_secs(10), |l| {
            l.contains("member=Notify")
        })
        .await;
    assert!(call.contains("method call"), "{call}");
    let text = monitor.stdout();
    assert!(
        text.contains(&format!("string \"{expected}\"")),
        "summary in the Notify call:\n{text}"
    );

    let (code, json, text) = status(home.path());
    assert_eq!(code, 2, "vault trouble needs attention: {json:#}");
    assert_eq!(json["ok"], false);
    assert_eq!(json["agents"][0]["vault"]["state"], "degraded", "{json:#}");
    assert!(
        text.contains("vault degraded") && text.contains("is full"),
        "{text}"
    );
    let alert = hook
        .wait_for(&["\"kind\":\"vault_trouble\"", "is full"], WAIT)
        .await;
    assert!(alert.contains("1 of 2 places"), "{alert}");

    // One notice per transition: a few more checks change nothing. After the alert came
    // (the positive signal), the pause is what is tested: about three more vault checks
    // (one a second) and no second alert; nothing outside the daemon marks a check.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let trouble_alerts = hook
        .bodies()
        .iter()
        .filter(|b| b.contains("vault_trouble"))
        .count();
    assert_eq!(trouble_alerts, 1, "{:#?}", hook.bodies());

    // Space returns.
    std::fs::remove_file(&filler).unwrap();
    next_matching(&mut watcher, WAIT, "the vault-recovered notice", |e| {
        matches!(e, WatchEvent::Notified { notice } if notice.kind == NoticeKind::VaultRecovered)
    })
    .await;
    hook.wait_for(&["\"kind\":\"vault_recovered\""], WAIT).await;
    let (code, json, _) = status(home.path());
    assert_eq!(code, 0, "healthy again: {json:#}");
    assert_eq!(json["agents"][0]["vault"]["state"], "ok");
    // No duplicate notice of the earlier trouble came with the recovery.
    watcher.shutdown().await;
    drop(daemon);
    drop(mount);
}
