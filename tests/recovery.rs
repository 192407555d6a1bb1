//! The project's headline: a token dies, the owner knows within a minute, two clicks later
//! the agent works again, and nothing was lost.
//!
//! Real parts throughout: `tether agent serve` over HTTPS with its pinned self-signed
//! certificate, oidc-provider as the provider, the companion's watcher with the desktop
//! notifier on a real D-Bus session with dunst, and Debian's chromium doing the consent.
//! The test prints the time of each step.

use crate::companion::support::{
    bus_name_owned, have, next_matching, oidc_credential, session_bus, tether, wait_all, Daemon,
    Wanted,
};
use crate::require;
use crate::util::browser::{self, Browser};
use crate::util::oidc::{self, OidcOptions, OidcProvider};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether::companion::notice::NoticeKind;
use tether::companion::notifier::DesktopNotifier;
use tether::companion::pair::PairOptions;
use tether::companion::reauth::{Opener, ReauthOptions, ReauthProgress};
use tether::companion::secrets::Backend;
use tether::companion::watcher::{WatchEvent, WatchTiming};
use tether::companion::Companion;
use tether::protocol::{CredentialState, PairingCode};

/// How long each step may take.
const WAIT: Duration = Duration::from_secs(90);

/// Hands the consent URL to the test's real browser.
struct ToBrowser(tokio::sync::mpsc::UnboundedSender<String>);

impl Opener for ToBrowser {
    fn open(&self, url: &str) -> Result<(), tether::companion::reauth::OpenError> {
        self.0
            .send(url.to_string())
            .map_err(tether::companion::reauth::OpenError::new)
    }
}

/// Consents in chromium: the provider's pages redirect to the companion's loopback
/// listener, whose page shows the daemon's real answer.
async fn consent_in_browser(browser: &Browser, url: &str) -> String {
    assert!(url.contains("redirect_uri=http%3A%2F%2F127.0.0.1"), "{url}");
    browser.navigate(url).await;
    browser
        .wait_for_url_prefix("http://127.0.0.1:", Duration::from_secs(30))
        .await;
    browser
        .wait_for_text("working again", Duration::from_secs(30))
        .await
}

/// `tether agent token get youtube` as the user's agent would run it.
fn agent_fetch(agent_token: &str, url: &str, fingerprint: &str, config: &Path) -> (bool, String) {
    let out = tether(
        config.parent().unwrap(),
        &[("TETHER_AGENT_TOKEN", agent_token)],
    )
    .args([
        "agent",
        "token",
        "get",
        "youtube",
        "--url",
        url,
        "--fingerprint",
        fingerprint,
        "--config",
    ])
    .arg(config)
    .output()
    .expect("run tether agent token get");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Newest generation number in a vault location's directory for `name`.
fn newest_generation(location: &Path, name: &str) -> u64 {
    std::fs::read_dir(location.join(name))
        .unwrap_or_else(|e| panic!("read {}: {e}", location.join(name).display()))
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            n.strip_prefix("gen-")?
                .strip_suffix(".json")?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0)
}

struct Steps(Instant, Vec<(String, Duration)>);

impl Steps {
    fn done(&mut self, what: &str, since: Instant) {
        let d = since.elapsed();
        eprintln!("step: {what:<58} {:>8.2} s", d.as_secs_f64());
        self.1.push((what.to_string(), d));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_dies_owner_reauthorizes_in_the_browser_and_nothing_is_lost() {
    require!(
        session_bus(),
        "a D-Bus session bus (run the suite inside dbus-run-session)"
    );
    require!(
        bus_name_owned("org.freedesktop.Notifications") && have("dunstctl"),
        "dunst running on the session bus, with dunstctl"
    );
    require!(oidc::available(), oidc::MISSING);
    require!(browser::available(), browser::MISSING);
    let _desktop = crate::util::desktop_session().await;
    let mut steps = Steps(Instant::now(), Vec::new());

    // The server side: oidc-provider and the daemon with a rendered token file.
    let oidc = Arc::new(OidcProvider::start(OidcOptions::default()));
    let out_dir = tempfile::tempdir().unwrap();
    let token_file = out_dir.path().join("token.json");
    let daemon = Daemon::start(&oidc_credential(
        "youtube",
        &oidc,
        &format!(
            "probe_interval = \"15s\"\noutputs = [{{ path = \"{}\", format = \"authorized_user\" }}]",
            token_file.display()
        ),
    ))
    .await;
    let config = daemon.dir.path().join("agent.toml");
    let code = daemon.pairing_code();
    let fingerprint = PairingCode::parse(&code)
        .unwrap()
        .fingerprint
        .expect("a pinned fingerprint")
        .to_hex();
    let agent_token = daemon
        .agent_cmd(&["token", "create", "uploader"])
        .trim()
        .to_string();

    // The laptop side: the companion, paired, and a real browser.
    let home = tempfile::tempdir().unwrap();
    let companion = Companion::open(home.path(), Backend::File);
    companion
        .pair(&code, &PairOptions::default(), &mut |_| false)
        .await
        .expect("pairing works");
    let browser = Browser::start().await;
    let (open_tx, mut opened) = tokio::sync::mpsc::unbounded_channel();
    let opener = Arc::new(ToBrowser(open_tx));

    // First authorization (what `tether reauth` does on day one), consent in chromium.
    let t = Instant::now();
    let c2 = companion.clone();
    let o2 = opener.clone();
    let first = tokio::spawn(async move {
        c2.reauth(
            "studio",
            "youtube",
            o2.as_ref(),
            ReauthOptions::default(),
            &|_| {},
        )
        .await
    });
    let url = tokio::time::timeout(Duration::from_secs(30), opened.recv())
        .await
        .unwrap()
        .unwrap();
    consent_in_browser(&browser, &url).await;
    let health = first.await.unwrap().expect("first authorization");
    assert_eq!(health.state, CredentialState::Ok);
    steps.done("first authorization (consent in chromium)", t);
    let (ok, token) = agent_fetch(&agent_token, &daemon.url, &fingerprint, &config);
    assert!(ok, "the agent gets an access token: {token}");

    // 1. A cron job wipes the agent's token file to 0 bytes; the daemon restores it.
    let written = std::fs::read(&token_file).expect("the daemon rendered token.json");
    assert!(!written.is_empty());
    std::fs::write(&token_file, b"").unwrap();
    let t = Instant::now();
    let client = companion.client("studio").unwrap();
    client.check_now("youtube").await.expect("check now");
    let restored = loop {
        let b = std::fs::read(&token_file).unwrap_or_default();
        if !b.is_empty() {
            break b;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "token.json was not restored within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let json: serde_json::Value =
        serde_json::from_slice(&restored).expect("restored token.json is JSON");
    assert_eq!(json["type"], "authorized_user");
    assert!(json["refresh_token"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    steps.done("wiped token.json restored from the vault", t);

    // 2. The watcher with the real desktop notifier.
    let desktop = DesktopNotifier::new().expect("dunst answers");
    assert!(desktop.supports_actions());
    let mut timing = WatchTiming::from_config(&companion.config().unwrap());
    timing.poll = Duration::from_secs(60); // events, not polling, must carry the news
    let mut watcher = companion
        .watch_with(timing, Arc::new(desktop), Some(opener.clone()))
        .unwrap();
    next_matching(&mut watcher, WAIT, "youtube ok", |e| {
        matches!(e, WatchEvent::Credential { credential, .. } if credential.state == CredentialState::Ok)
    })
    .await;

    // 3. The provider revokes the grant. Nobody asks: the daemon's probe notices.
    let t_revoke = Instant::now();
    assert!(oidc.revoke_all().await >= 1);
    let notice = match next_matching(
        &mut watcher,
        WAIT,
        "the dead notification",
        |e| matches!(e, WatchEvent::Notified { notice } if notice.kind == NoticeKind::Dead),
    )
    .await
    {
        WatchEvent::Notified { notice } => notice,
        _ => unreachable!(),
    };
    steps.done(
        "revocation at the provider -> desktop notification",
        t_revoke,
    );
    assert!(
        notice.summary.starts_with("studio · youtube"),
        "{}",
        notice.summary
    );
    assert!(
        notice.body.contains("tether reauth studio/youtube"),
        "{}",
        notice.body
    );

    // 4. Meanwhile the agent keeps asking; every request is refused and counted.
    for _ in 0..3 {
        let (ok, text) = agent_fetch(&agent_token, &daemon.url, &fingerprint, &config);
        assert!(!ok, "a dead credential must not hand out tokens: {text}");
        assert!(
            text.contains("tether reauth"),
            "the refusal says what to do: {text}"
        );
    }
    let health = client.health().await.unwrap();
    let yt = health
        .credentials
        .iter()
        .find(|c| c.name == "youtube")
        .unwrap();
    assert_eq!(yt.state, CredentialState::Dead);
    assert_eq!(yt.blocked_requests, 3, "refused requests are reported");
    eprintln!(
        "step: refused agent requests reported by health: {}",
        yt.blocked_requests
    );
    let generation_before = yt.generation;

    // 5. The owner clicks Re-authorize on the notification (dunst invokes the action).
    let t_click = Instant::now();
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
    steps.done("click -> consent page opened", t_click);
    let t = Instant::now();
    let page = consent_in_browser(&browser, &url).await;
    assert!(
        page.contains("studio") && page.contains("youtube"),
        "{page}"
    );
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
        "the recovery notification",
        &|e| matches!(e, WatchEvent::Notified { notice } if notice.kind == NoticeKind::Recovered),
    );
    wait_all(&mut watcher, WAIT, &[done, recovered]).await;
    steps.done(
        "consent in chromium -> confirmed, Done tab, recovery notice",
        t,
    );
    steps.done(
        "click -> credential working again (machine time incl. browser)",
        t_click,
    );
    std::fs::create_dir_all("tests/artifacts").ok();
    browser
        .screenshot(Path::new("tests/artifacts/recovery-done.png"))
        .await;

    // 6. The agent works again, with a token the provider accepts.
    let (ok, token) = agent_fetch(&agent_token, &daemon.url, &fingerprint, &config);
    assert!(ok, "the broker serves a token again: {token}");
    let me = reqwest::Client::new()
        .get(format!(
            "{}/me",
            oidc.issuer().as_str().trim_end_matches('/')
        ))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.status(),
        200,
        "the provider accepts the new access token"
    );

    // 7. Nothing lost: the new generation is in every vault location, and the token file
    //    was re-rendered from it.
    let health = client.health().await.unwrap();
    let yt = health
        .credentials
        .iter()
        .find(|c| c.name == "youtube")
        .unwrap();
    assert_eq!(yt.state, CredentialState::Ok);
    assert!(yt.generation > generation_before);
    let primary = daemon
        .dir
        .path()
        .join("state")
        .join(tether::agent::config::vault::VAULT_DIR);
    let backup = daemon.dir.path().join("backup");
    assert_eq!(newest_generation(&primary, "youtube"), yt.generation);
    assert_eq!(newest_generation(&backup, "youtube"), yt.generation);
    let rendered: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&token_file).unwrap()).unwrap();
    assert_ne!(
        rendered["refresh_token"], json["refresh_token"],
        "token.json holds the new grant"
    );

    steps.done("whole story", steps.0);
    watcher.shutdown().await;
    browser.close().await;
}
