//! Desktop notifications on a real session bus with dunst: the Notify call carries the
//! summary, body and "Re-authorize" action, and invoking the action (dunstctl) starts the
//! watcher's re-authorization, which this test completes as the browser.

use super::support::{
    bus_name_owned, have, next_matching, oidc_credential, session_bus, wait_all, Daemon, Proc,
    Wanted,
};
use crate::require;
use crate::util::oidc::{self, OidcOptions, OidcProvider};
use std::sync::Arc;
use std::time::Duration;
use tether::companion::notice::NoticeKind;
use tether::companion::notifier::DesktopNotifier;
use tether::companion::pair::PairOptions;
use tether::companion::reauth::{Opener, ReauthOptions, ReauthProgress};
use tether::companion::secrets::Backend;
use tether::companion::watcher::{WatchEvent, WatchTiming};
use tether::companion::Companion;
use tether::protocol::CredentialState;

/// How long each step may take.
const WAIT: Duration = Duration::from_secs(45);

/// Plays the browser: walks the provider's consent and delivers the loopback callback.
struct ConsentingBrowser {
    oidc: Arc<OidcProvider>,
    opened: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Opener for ConsentingBrowser {
    fn open(&self, url: &str) -> Result<(), tether::companion::reauth::OpenError> {
        let _ = self.opened.send(url.to_string());
        let oidc = self.oidc.clone();
        let url = url::Url::parse(url).map_err(tether::companion::reauth::OpenError::new)?;
        // Called from inside the re-auth future, so a runtime is current.
        tokio::spawn(async move {
            let callback = oidc.consent(&url).await;
            let (status, page) = oidc::browser_get(&callback).await;
            assert_eq!(status, 200, "{page}");
        });
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_credential_notification_and_its_reauthorize_action() {
    require!(
        session_bus(),
        "a D-Bus session bus (run the suite inside dbus-run-session)"
    );
    require!(
        bus_name_owned("org.freedesktop.Notifications") && have("dunstctl") && have("dbus-monitor"),
        "dunst running on the session bus, with dunstctl and dbus-monitor"
    );
    require!(oidc::available(), oidc::MISSING);
    let _desktop = crate::util::desktop_session().await;
    let oidc = Arc::new(OidcProvider::start(OidcOptions::default()));
    let daemon = Daemon::start(&oidc_credential(
        "youtube",
        &oidc,
        "probe_interval = \"15s\"",
    ))
    .await;
    let home = tempfile::tempdir().unwrap();
    let companion = Companion::open(home.path(), Backend::File);
    companion
        .pair(&daemon.pairing_code(), &PairOptions::default(), &mut |_| {
            false
        })
        .await
        .expect("pairing works");
    let (opened_tx, mut opened) = tokio::sync::mpsc::unbounded_channel();
    let browser = Arc::new(ConsentingBrowser {
        oidc: oidc.clone(),
        opened: opened_tx,
    });
    // First authorization through the library call the tray uses.
    let health = companion
        .reauth(
            "studio",
            "youtube",
            browser.as_ref(),
            ReauthOptions::default(),
            &|_| {},
        )
        .await
        .expect("first authorization");
    assert_eq!(health.state, CredentialState::Ok);
    opened.recv().await.expect("the browser was opened");

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
    assert!(
        desktop.supports_actions(),
        "dunst advertises the actions capability"
    );
    let cfg = companion.config().unwrap();
    let mut timing = WatchTiming::from_config(&cfg);
    timing.poll = Duration::from_secs(2);
    let mut watcher = companion
        .watch_with(timing, Arc::new(desktop), Some(browser.clone()))
        .unwrap();
    next_matching(&mut watcher, WAIT, "youtube ok", |e| {
        matches!(e, WatchEvent::Credential { credential, .. } if credential.state == CredentialState::Ok)
    })
    .await;

    // The provider revokes the grant; the daemon notices on its next check.
    assert!(oidc.revoke_all().await >= 1);
    let check = companion
        .client("studio")
        .unwrap()
        .check_now("youtube")
        .await
        .expect("check now");
    assert_eq!(check.state, CredentialState::Dead);
    let WatchEvent::Notified { notice } =
        next_matching(&mut watcher, WAIT, "the dead notice", |e| {
            matches!(e, WatchEvent::Notified { .. })
        })
        .await
    else {
        unreachable!()
    };
    assert_eq!(notice.kind, NoticeKind::Dead);

    // What went over the bus.
    let call = monitor
        .wait_line(false, Duration::from_secs(10), |l| {
            l.contains("member=Notify")
        })
        .await;
    assert!(call.contains("method call"), "{call}");
    let text = monitor.stdout();
    let after = &text[text.find("member=Notify").unwrap()..];
    assert!(
        after.contains(&format!("string \"{}\"", notice.summary)),
        "summary in the Notify call:\n{after}"
    );
    assert!(
        notice.summary.starts_with("studio · youtube: "),
        "{}",
        notice.summary
    );
    assert!(
        after.contains(&format!("string \"{}\"", notice.body)),
        "body in the Notify call:\n{after}"
    );
    assert!(notice.body.contains("since") && notice.body.contains("tether reauth studio/youtube"));
    assert!(
        after.contains("string \"reauth\"") && after.contains("string \"Re-authorize\""),
        "the Re-authorize action in the Notify call:\n{after}"
    );

    // Click it in dunst: the watcher starts the re-authorization, the browser consents.
    let out = std::process::Command::new("dunstctl")
        .args(["action", "0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dunstctl action: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    next_matching(&mut watcher, WAIT, "the click", |e| {
        matches!(e, WatchEvent::ReauthRequested { agent, credential } if agent == "studio" && credential == "youtube")
    })
    .await;
    let url = tokio::time::timeout(Duration::from_secs(30), opened.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(url.contains("redirect_uri=http%3A%2F%2F127.0.0.1"), "{url}");
    let done: Wanted = ("re-auth done", &|e| {
        matches!(
            e,
            WatchEvent::Reauth {
                progress: ReauthProgress::Done { .. },
                ..
            }
        )
    });
    let recovered: Wanted = (
        "the recovery notice",
        &|e| matches!(e, WatchEvent::Notified { notice } if notice.kind == NoticeKind::Recovered),
    );
    wait_all(&mut watcher, WAIT, &[done, recovered]).await;
    watcher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_body_reaches_dunst_escaped_for_markup() {
    require!(
        session_bus(),
        "a D-Bus session bus (run the suite inside dbus-run-session)"
    );
    require!(
        bus_name_owned("org.freedesktop.Notifications") && have("dbus-monitor"),
        "dunst running on the session bus, with dbus-monitor"
    );
    let _desktop = crate::util::desktop_session().await;
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
    // An error description from a provider (or an agent's words) with markup in it.
    let notice = tether::companion::notice::Notice {
        kind: NoticeKind::Dead,
        agent: "studio".into(),
        credential: Some("youtube".into()),
        summary: "studio · youtube: dead".into(),
        body: r#"Error: <a href="https://evil.example">accounts.google.com</a> & more"#.into(),
        action: None,
        urgency: tether::companion::notice::Urgency::Normal,
    };
    let (actions, _rx) = tether::companion::notifier::ActionSender::channel();
    tether::companion::notifier::Notifier::notify(&desktop, &notice, &actions)
        .expect("dunst shows it");
    monitor
        .wait_line(false, Duration::from_secs(10), |l| {
            l.contains("member=Notify")
        })
        .await;
    let escaped = "Error: &lt;a href=&quot;https://evil.example&quot;&gt;accounts.google.com&lt;/a&gt; &amp; more";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = monitor.stdout();
        if text.contains(escaped) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "dunst (body-markup) gets the body escaped:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !monitor.stdout().contains("<a href"),
        "{}",
        monitor.stdout()
    );
}
