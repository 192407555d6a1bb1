//! Tests of the headless-browser driver (tests/util/browser.rs): a real chromium clicks
//! through the demo provider's consent page and oidc-provider's redirect chain, takes a
//! screenshot, and leaves no process behind.

use crate::require;
use crate::util::browser::{self, Browser};
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tether::demo::provider::{DemoProvider, DEMO_CLIENT_ID};
use tokio::sync::oneshot;

/// Generous: chromium on a loaded 2-core CI machine.
const WAIT: Duration = Duration::from_secs(30);

/// Every query the callback received, in order.
type Hits = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// A loopback redirect target that records each query it receives and renders
/// "Done: demo works", as an app's callback page would.
struct Callback {
    url: String,
    hits: Hits,
    _stop: oneshot::Sender<()>,
}

impl Callback {
    async fn start() -> Callback {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener
            .local_addr()
            .expect("bound listener has an address");
        let hits = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route(
                "/callback",
                get(
                    |State(hits): State<Hits>,
                     Query(q): Query<HashMap<String, String>>| async move {
                        hits.lock().expect("no panic holds this lock").push(q);
                        Html("<!doctype html><title>done</title><h1>Done: demo works</h1>")
                    },
                ),
            )
            .with_state(hits.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Callback {
            url: format!("http://127.0.0.1:{}/callback", addr.port()),
            hits,
            _stop: stop,
        }
    }

    fn hits(&self) -> Vec<HashMap<String, String>> {
        self.hits.lock().expect("no panic holds this lock").clone()
    }
}

fn s256(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

async fn demo_provider() -> (DemoProvider, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let (stop, stopped) = oneshot::channel::<()>();
    let provider = DemoProvider::start(listener, async {
        let _ = stopped.await;
    })
    .expect("start the demo provider");
    (provider, stop)
}

fn demo_authorize_url(
    provider: &DemoProvider,
    callback: &str,
    state: &str,
    verifier: &str,
) -> url::Url {
    let mut url = url::Url::parse(&format!("{}/authorize", provider.base_url()))
        .expect("the demo provider's base URL is a URL");
    url.query_pairs_mut()
        .append_pair("client_id", DEMO_CLIENT_ID)
        .append_pair("redirect_uri", callback)
        .append_pair("state", state)
        .append_pair("code_challenge", &s256(verifier))
        .append_pair("code_challenge_method", "S256")
        .append_pair("scope", "demo.upload");
    url
}

fn query_of(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

#[tokio::test]
async fn allow_on_the_demo_consent_page_lands_on_the_callback_with_a_working_code() {
    require!(browser::available(), browser::MISSING);
    let (provider, _stop) = demo_provider().await;
    let callback = Callback::start().await;
    let verifier = "a-verifier-of-at-least-forty-three-characters-0123456789";
    let authorize = demo_authorize_url(&provider, &callback.url, "state-allow-1", verifier);

    let browser = Browser::start().await;
    browser.navigate(authorize.as_str()).await;
    let consent = browser.page_text().await;
    assert!(
        consent.contains("Allow studio agent"),
        "consent page: {consent}"
    );
    browser.click("#allow").await;

    let landed = browser.wait_for_url_prefix(&callback.url, WAIT).await;
    let text = browser.wait_for_text("Done", WAIT).await;
    assert!(text.contains("Done: demo works"), "callback page: {text}");
    let q = query_of(&landed);
    assert_eq!(q.get("state").map(String::as_str), Some("state-allow-1"));
    assert!(!q.contains_key("error"), "no error on allow: {q:?}");
    let code = q
        .get("code")
        .expect("the callback URL carries a code")
        .clone();
    // The server saw exactly what the browser shows.
    assert_eq!(callback.hits(), vec![q.clone()]);

    // The code the browser carried is a real one: the token endpoint redeems it.
    let reply: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/token", provider.base_url()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", callback.url.as_str()),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("token request to the demo provider")
        .json()
        .await
        .expect("the token endpoint answers JSON");
    assert!(reply["refresh_token"].is_string(), "token reply: {reply}");
}

#[tokio::test]
async fn deny_on_the_demo_consent_page_lands_on_the_callback_with_access_denied() {
    require!(browser::available(), browser::MISSING);
    let (provider, _stop) = demo_provider().await;
    let callback = Callback::start().await;
    let authorize = demo_authorize_url(
        &provider,
        &callback.url,
        "state-deny-2",
        "v".repeat(50).as_str(),
    );

    let browser = Browser::start().await;
    browser.navigate(authorize.as_str()).await;
    browser.click("#deny").await;

    let landed = browser.wait_for_url_prefix(&callback.url, WAIT).await;
    browser.wait_for_text("Done", WAIT).await;
    let q = query_of(&landed);
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("access_denied"),
        "{q:?}"
    );
    assert_eq!(q.get("state").map(String::as_str), Some("state-deny-2"));
    assert!(!q.contains_key("code"), "no code on deny: {q:?}");
    assert_eq!(callback.hits(), vec![q]);
}

#[tokio::test]
async fn screenshot_is_a_png_of_the_page() {
    require!(browser::available(), browser::MISSING);
    let (provider, _stop) = demo_provider().await;
    let callback = Callback::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let browser = Browser::start().await;
    browser
        .navigate(demo_authorize_url(&provider, &callback.url, "s", &"v".repeat(50)).as_str())
        .await;
    let path = dir.path().join("consent.png");
    let bytes = browser.screenshot(&path).await;

    let on_disk = std::fs::read(&path).expect("the screenshot file exists");
    assert_eq!(on_disk, bytes);
    assert_eq!(&on_disk[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&on_disk[12..16], b"IHDR", "first chunk is the header");
    let width = u32::from_be_bytes(on_disk[16..20].try_into().expect("4 bytes"));
    let height = u32::from_be_bytes(on_disk[20..24].try_into().expect("4 bytes"));
    // The viewport of a 1280x900 window, less whatever chrome headless keeps.
    assert!(
        width >= 800 && height >= 400,
        "screenshot is {width}x{height}"
    );
}

#[tokio::test]
async fn fill_types_into_an_input() {
    require!(browser::available(), browser::MISSING);
    let browser = Browser::start().await;
    browser
        .navigate("data:text/html,<input id=name value=old><p id=out></p>")
        .await;
    browser.fill("#name", "typed by chromium").await;
    let value = browser
        .execute(
            "return document.querySelector(arguments[0]).value;",
            vec!["#name".into()],
        )
        .await;
    assert_eq!(value, "typed by chromium");
}

#[tokio::test]
async fn wait_for_text_fails_with_the_page_it_saw() {
    require!(browser::available(), browser::MISSING);
    let browser = Browser::start().await;
    browser.navigate("data:text/html,<p>only this</p>").await;
    let wait = browser.wait_for_text("never shown", Duration::from_millis(300));
    let err = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(wait))
        .await
        .expect_err("waiting for absent text fails");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("only this") && msg.contains("never shown"),
        "{msg}"
    );
}

#[tokio::test]
async fn dropping_the_browser_leaves_no_process_behind() {
    require!(browser::available(), browser::MISSING);
    let browser = Browser::start().await;
    browser.navigate("data:text/html,<p>hello</p>").await;
    let profile = browser.profile_dir().to_path_buf();
    let driver = browser.driver_pid();
    let running = browser::processes_mentioning(&profile);
    assert!(
        running.len() >= 2,
        "chromium runs with the profile: {running:?}"
    );

    drop(browser);

    // Killed processes vanish from /proc (or turn into argument-less zombies) a moment
    // after the signal: poll, do not sleep a fixed time.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = browser::processes_mentioning(&profile);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "processes left behind: {left:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // chromedriver itself was reaped (its command line does not mention the profile).
    assert!(
        !std::path::Path::new(&format!("/proc/{driver}")).exists(),
        "chromedriver {driver} is still there"
    );
    assert!(!profile.exists(), "the profile temp dir is removed");
}

#[tokio::test]
async fn oidc_provider_sign_in_in_the_browser_reaches_the_callback() {
    require!(browser::available(), browser::MISSING);
    require!(crate::util::oidc::available(), crate::util::oidc::MISSING);
    let oidc = crate::util::oidc::OidcProvider::start(Default::default());
    let callback = Callback::start().await;
    let browser = Browser::start().await;

    for (hint, state) in [("tester", "oidc-allow"), ("decline", "oidc-decline")] {
        let mut auth = oidc.issuer().join("/auth").expect("auth endpoint URL");
        auth.query_pairs_mut()
            .append_pair("client_id", &oidc.client_id())
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", &callback.url)
            .append_pair("scope", "openid offline_access")
            .append_pair("prompt", "consent")
            .append_pair("login_hint", hint)
            .append_pair("state", state)
            .append_pair("code_challenge", &s256(&"w".repeat(50)))
            .append_pair("code_challenge_method", "S256");
        // The fixture's login and consent answer with redirects that rely on its
        // interaction cookies, which the browser keeps like any other.
        browser.navigate(auth.as_str()).await;
        let landed = browser.wait_for_url_prefix(&callback.url, WAIT).await;
        browser.wait_for_text("Done", WAIT).await;
        let q = query_of(&landed);
        assert_eq!(q.get("state").map(String::as_str), Some(state), "{q:?}");
        if hint == "decline" {
            assert_eq!(
                q.get("error").map(String::as_str),
                Some("access_denied"),
                "{q:?}"
            );
            assert!(!q.contains_key("code"), "{q:?}");
        } else {
            assert!(q.get("code").is_some_and(|c| !c.is_empty()), "{q:?}");
        }
    }
    assert_eq!(callback.hits().len(), 2);
}
