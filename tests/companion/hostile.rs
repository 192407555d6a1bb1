//! The companion against a daemon that lies: a fake daemon on loopback (plain http is
//! allowed there) answers with escape sequences, huge bodies and authorization URLs that
//! would send the owner somewhere else. Nothing reaches the terminal raw, nothing huge is
//! read, and no URL is opened that fails the checks or names another authorization server
//! than the credential's first authorization.

use super::support::{cred, report, tether};
use crate::oauth::canned::{Answer, Canned};
use crate::util::oidc::browser_get;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether::companion::reauth::{Opener, ReauthOptions, ReauthProgress};
use tether::companion::secrets::Backend;
use tether::companion::Companion;
use tether::protocol::{
    CredentialState, ErrorInfo, ReauthStart, RedirectPort, RedirectRequirement,
};
use tether::secret::ApiToken;

/// A companion in a temp dir paired (by config) with the fake daemon as agent `studio`.
fn paired_with(canned: &Canned) -> (tempfile::TempDir, Companion) {
    let dir = tempfile::tempdir().unwrap();
    let base = canned.url("/").as_str().trim_end_matches('/').to_owned();
    std::fs::write(
        dir.path().join("companion.toml"),
        format!("[[agent]]\nname = \"studio\"\nurl = \"{base}\"\n"),
    )
    .unwrap();
    let companion = Companion::open(dir.path(), Backend::File);
    companion
        .secrets()
        .store("studio", &ApiToken::new("device-token-for-the-fake-daemon"))
        .unwrap();
    (dir, companion)
}

#[tokio::test]
async fn status_prints_no_escape_sequence_the_daemon_sends() {
    let canned = Canned::start();
    let mut dead = cred("youtube", CredentialState::Dead, 3);
    dead.last_error = Some(ErrorInfo {
        code: "invalid_grant\u{1b}[2J".into(),
        description: "revoked\u{1b}]0;pwned\u{7}\u{1b}[8mhidden\r\u{202e}".into(),
    });
    let mut r = report(vec![dead]);
    r.version = "0.1.0\u{1b}[31m".into();
    canned.route(
        "/v1/health",
        Answer::json(200, &serde_json::to_string(&r).unwrap()),
    );
    let (dir, _companion) = paired_with(&canned);
    let out = tether(dir.path(), &[("TETHER_SECRETS", "file")])
        .arg("status")
        .output()
        .expect("run tether status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("youtube") && text.contains("revoked"),
        "{text}"
    );
    for bad in ['\u{1b}', '\u{7}', '\r', '\u{202e}'] {
        assert!(
            !text.contains(bad),
            "{bad:?} reached the terminal: {text:?}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains(bad),
            "{bad:?} on stderr"
        );
    }
}

#[tokio::test]
async fn a_huge_reply_is_refused_not_read_whole() {
    let canned = Canned::start();
    let huge = format!("{{\"agent\":\"{}\"}}", "x".repeat(5 * 1024 * 1024));
    canned.route("/v1/health", Answer::json(200, &huge));
    let (_dir, companion) = paired_with(&canned);
    let status = companion.status().await.unwrap();
    let err = status.agents[0].error.clone().unwrap_or_default();
    assert!(err.contains("larger than"), "{err}");
}

/// Opens nothing itself: plays the browser by sending the callback the provider would.
#[derive(Default)]
struct Browser {
    opened: Mutex<Vec<String>>,
}

impl Opener for Browser {
    fn open(&self, url: &str) -> Result<(), tether::companion::reauth::OpenError> {
        self.opened.lock().unwrap().push(url.to_owned());
        let url = url::Url::parse(url).map_err(tether::companion::reauth::OpenError::new)?;
        let redirect = url
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| tether::companion::reauth::OpenError::new("no redirect_uri"))?;
        let state = url
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let callback = url::Url::parse(&format!("{redirect}?code=the-code&state={state}")).unwrap();
        tokio::runtime::Handle::current().spawn(async move { browser_get(&callback).await });
        Ok(())
    }
}

impl Browser {
    fn count(&self) -> usize {
        self.opened.lock().unwrap().len()
    }
}

const STATE: &str = "session-state-0123456789abcdef";

fn start(authorize_url: &str) -> String {
    serde_json::to_string(&ReauthStart {
        session: "s1".into(),
        credential: "youtube".into(),
        authorize_url: authorize_url.into(),
        state: STATE.into(),
        redirect: RedirectRequirement {
            host: "127.0.0.1".into(),
            port: RedirectPort::Any,
            path: "/callback".into(),
        },
        expires_at: chrono::Utc::now() + chrono::Duration::minutes(10),
    })
    .unwrap()
}

fn auth_url(origin: &str, client_id: &str) -> String {
    format!("{origin}/authorize?response_type=code&client_id={client_id}&state={STATE}&code_challenge=abc&code_challenge_method=S256&scope=openid+youtube.upload")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_authorization_server_is_remembered_and_a_change_is_refused_until_accepted() {
    let canned = Canned::start();
    let port = canned.url("/").port().unwrap();
    let first = format!("http://127.0.0.1:{port}");
    let (dir, companion) = paired_with(&canned);
    canned.route(
        "/v1/reauth/s1/complete",
        Answer::json(
            200,
            &serde_json::to_string(&cred("youtube", CredentialState::Ok, 0)).unwrap(),
        ),
    );
    let browser = Browser::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let progress = {
        let seen = seen.clone();
        move |p: ReauthProgress| seen.lock().unwrap().push(p)
    };
    let opts = ReauthOptions {
        timeout: Duration::from_secs(20),
        ..ReauthOptions::default()
    };
    let run =
        |opts: ReauthOptions| companion.reauth("studio", "youtube", &browser, opts, &progress);

    // First authorization: checked, shown, opened, remembered.
    canned.route(
        "/v1/credentials/youtube/reauth",
        Answer::json(200, &start(&auth_url(&first, "cid"))),
    );
    run(opts).await.unwrap();
    assert_eq!(browser.count(), 1);
    let target = seen
        .lock()
        .unwrap()
        .iter()
        .find_map(|p| match p {
            ReauthProgress::Opening { target } => Some(target.clone()),
            _ => None,
        })
        .expect("the provider was shown before the browser opened");
    assert_eq!(target.server.host, format!("127.0.0.1:{port}"));
    assert_eq!(target.scopes, ["openid", "youtube.upload"]);
    let text = std::fs::read_to_string(dir.path().join("companion.toml")).unwrap();
    assert!(text.contains("[agent.authorization.youtube]"), "{text}");
    assert!(text.contains("client_id = \"cid\""), "{text}");

    // Another host, or another client: refused, naming old and new, nothing opened.
    for changed in [
        auth_url(&format!("http://localhost:{port}"), "cid"),
        auth_url(&first, "other-client"),
        auth_url(&first, "cid").replace("/authorize?", "/authorize2?"),
    ] {
        canned.route(
            "/v1/credentials/youtube/reauth",
            Answer::json(200, &start(&changed)),
        );
        let err = run(opts).await.unwrap_err();
        assert_eq!(err.code(), "server_changed", "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("127.0.0.1:{port}/authorize (client cid)")),
            "{msg}"
        );
        assert!(msg.contains("--accept-new-server"), "{msg}");
        assert_eq!(browser.count(), 1, "opened {changed}");
    }

    // The owner accepts the new one: it is opened and becomes the reference.
    canned.route(
        "/v1/credentials/youtube/reauth",
        Answer::json(200, &start(&auth_url(&first, "other-client"))),
    );
    run(ReauthOptions {
        accept_new_server: true,
        ..opts
    })
    .await
    .unwrap();
    assert_eq!(browser.count(), 2);
    run(opts).await.unwrap();
    assert_eq!(browser.count(), 3);
    let text = std::fs::read_to_string(dir.path().join("companion.toml")).unwrap();
    assert!(text.contains("client_id = \"other-client\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_urls_that_fail_the_checks_are_never_opened() {
    let canned = Canned::start();
    let port = canned.url("/").port().unwrap();
    let ok = auth_url(&format!("http://127.0.0.1:{port}"), "cid");
    let (_dir, companion) = paired_with(&canned);
    let browser = Browser::default();
    for (url, why) in [
        // Plain http off loopback (0.0.0.0 is not loopback by the rule).
        (ok.replace("127.0.0.1", "0.0.0.0"), "https"),
        ("javascript:alert(1)".to_string(), "http"),
        (ok.replace(&format!("&state={STATE}"), ""), "state"),
        (ok.replace(STATE, "another-state"), "state"),
        (
            ok.replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "S256",
        ),
        (ok.replace("client_id=cid&", ""), "client"),
    ] {
        canned.route(
            "/v1/credentials/youtube/reauth",
            Answer::json(200, &start(&url)),
        );
        let err = companion
            .reauth(
                "studio",
                "youtube",
                &browser,
                ReauthOptions::default(),
                &|_| {},
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "bad_authorize_url", "{url}: {err}");
        assert!(err.to_string().contains(why), "{url}: {err}");
    }
    assert_eq!(browser.count(), 0);
}

/// A newer daemon may report a state (or a way to re-arm) this companion does not know:
/// the reply still parses, that credential shows as `unknown`, and the rest of the reply
/// (the other credential) is shown as before.
#[tokio::test]
async fn a_newer_daemons_unknown_state_shows_as_unknown_and_the_rest_of_the_reply_is_kept() {
    let canned = Canned::start();
    let r = report(vec![
        cred("youtube", CredentialState::Ok, 0),
        cred("gmail", CredentialState::Ok, 0),
    ]);
    let mut json: serde_json::Value = serde_json::to_value(&r).unwrap();
    json["credentials"][1]["state"] = "quarantined".into();
    json["credentials"][1]["reauth"] = "passkey".into();
    canned.route("/v1/health", Answer::json(200, &json.to_string()));
    let (dir, companion) = paired_with(&canned);

    let status = companion.status().await.unwrap();
    let agent = &status.agents[0];
    assert!(agent.error.is_none(), "the reply parses: {:?}", agent.error);
    let creds = &agent.credentials;
    assert_eq!(creds[0].state, CredentialState::Ok);
    assert_eq!(creds[1].state, CredentialState::Unknown);
    assert_eq!(creds[1].state.to_string(), "unknown");
    assert_eq!(
        tether::companion::tray::state_words(creds[1].state),
        "unknown"
    );

    let out = tether(dir.path(), &[("TETHER_SECRETS", "file")])
        .arg("status")
        .output()
        .expect("run tether status");
    let text = String::from_utf8_lossy(&out.stdout);
    let gmail = text
        .lines()
        .find(|l| l.contains("gmail"))
        .unwrap_or_default();
    assert!(gmail.contains("unknown"), "{text}");
    let youtube = text
        .lines()
        .find(|l| l.contains("youtube"))
        .unwrap_or_default();
    assert!(youtube.contains("ok"), "{text}");
}
