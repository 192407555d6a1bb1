//! End-to-end flows against the real oidc-provider on 127.0.0.1: authorization code + PKCE
//! through the loopback listener, refresh with and without rotation, server-side revocation,
//! wrong state, declined consent, discovery and probes.

use crate::require;
use crate::util::oidc::{self, browser_get, OidcOptions, OidcProvider};
use std::time::Duration;
use tether::oauth::{
    exchange, probe, refresh, AuthorizationRequest, CallbackOutcome, ClientCredentials, ErrorClass,
    ListenerError, LoopbackListener, ProbeOutcome, TokenSet,
};
use tether::provider::{discover, Provider};
use tether::secret::AuthorizationCode;

const WAIT: Duration = Duration::from_secs(30);

fn start(opts: OidcOptions) -> Option<OidcProvider> {
    if !oidc::available() {
        return None;
    }
    Some(OidcProvider::start(opts))
}

/// Runs the whole flow as the daemon + companion would, and checks the page the browser
/// finally shows.
pub async fn authorize(
    oidc: &OidcProvider,
    provider: &Provider,
    client: &ClientCredentials,
) -> TokenSet {
    let (pending, auth_url) = AuthorizationRequest::new(provider, client, &[]).unwrap();
    let listener = LoopbackListener::bind(&provider.requirement(), pending.state.clone()).unwrap();
    let redirect_uri = listener.redirect_uri();
    let browser_url = auth_url.with_redirect_uri(&redirect_uri);
    let waiting = tokio::task::spawn_blocking(move || listener.wait(WAIT));

    let callback = oidc.consent(&browser_url).await;
    assert!(callback.as_str().starts_with(&redirect_uri), "{callback}");
    let browser = tokio::spawn(async move { browser_get(&callback).await });

    let pending_callback = waiting
        .await
        .unwrap()
        .expect("the listener accepts the callback");
    assert_eq!(pending_callback.state(), pending.state);
    let http = tether::oauth::http_client();
    let tokens = exchange(
        &http,
        provider,
        client,
        pending_callback.code().clone(),
        pending.verifier,
        pending_callback.redirect_uri(),
    )
    .await
    .expect("exchange");
    pending_callback.respond(CallbackOutcome::Success {
        title: "Done: test credential is working again".into(),
        detail: "You can close this tab.".into(),
    });
    let (status, page) = browser.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        page.contains("Done: test credential is working again"),
        "{page}"
    );
    tokens
}

#[tokio::test]
async fn authorization_code_with_pkce_through_the_listener() {
    require!(oidc::available(), oidc::MISSING);
    let oidc = start(OidcOptions::default()).unwrap();
    let provider = oidc.provider();
    let tokens = authorize(&oidc, &provider, &oidc.client()).await;
    assert!(!tokens.access_token.secret().is_empty());
    assert!(
        tokens.refresh_token.is_some(),
        "offline access gives a refresh token"
    );
    assert_eq!(tokens.token_type, "Bearer");
    let expires = tokens.expires_at.expect("expires_in is sent");
    let left = expires - chrono::Utc::now();
    assert!(left > chrono::Duration::seconds(3500) && left <= chrono::Duration::seconds(3600));
    assert!(
        !tokens.extras.contains_key("id_token"),
        "credentials stay out of extras"
    );
    let c = oidc.counters().await;
    assert_eq!(c.code_grants, 1);
    assert_eq!(c.grant_errors, 0);
}

#[tokio::test]
async fn confidential_clients_authenticate_with_basic_and_post() {
    require!(oidc::available(), oidc::MISSING);
    let oidc = start(OidcOptions::default()).unwrap();
    for (which, auth) in [
        ("basic", tether::provider::ClientAuth::Basic),
        ("post", tether::provider::ClientAuth::Post),
    ] {
        let mut provider = oidc.provider();
        provider.client_auth = auth;
        let client = oidc.confidential_client(which);
        let tokens = authorize(&oidc, &provider, &client).await;
        let http = tether::oauth::http_client();
        refresh(
            &http,
            &provider,
            &client,
            tokens.refresh_token.as_ref().unwrap(),
        )
        .await
        .unwrap_or_else(|e| panic!("{which}: {e}"));
    }
    assert_eq!(oidc.counters().await.refresh_grants, 2);
}

#[tokio::test]
async fn refresh_without_rotation_keeps_the_refresh_token() {
    require!(oidc::available(), oidc::MISSING);
    let oidc = start(OidcOptions::default()).unwrap();
    let provider = oidc.provider();
    let client = oidc.client();
    let tokens = authorize(&oidc, &provider, &client).await;
    let rt = tokens.refresh_token.unwrap();
    let http = tether::oauth::http_client();
    let first = refresh(&http, &provider, &client, &rt).await.unwrap();
    let second = refresh(&http, &provider, &client, &rt).await.unwrap();
    assert!(!first.rotated && !second.rotated);
    assert_eq!(second.refresh_token.unwrap().secret(), rt.secret());
    assert_ne!(first.access_token.secret(), tokens.access_token.secret());
    assert_eq!(oidc.refresh_count().await, 2);
}

#[tokio::test]
async fn rotation_returns_a_new_refresh_token_and_the_old_one_is_dead() {
    require!(oidc::available(), oidc::MISSING);
    let oidc = start(OidcOptions {
        rotate_refresh_tokens: true,
        ..Default::default()
    })
    .unwrap();
    let provider = oidc.provider();
    let client = oidc.client();
    let tokens = authorize(&oidc, &provider, &client).await;
    let old = tokens.refresh_token.unwrap();
    let http = tether::oauth::http_client();
    let rotated = refresh(&http, &provider, &client, &old).await.unwrap();
    assert!(rotated.rotated);
    let new = rotated.refresh_token.unwrap();
    assert_ne!(new.secret(), old.secret());

    let err = refresh(&http, &provider, &client, &old).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Dead, "{err}");
    assert_eq!(err.info.code, "invalid_grant");
    let c = oidc.counters().await;
    assert_eq!(c.refresh_grants, 1);
    assert!(c
        .last_grant_errors
        .iter()
        .any(|e| e.detail.as_deref() == Some("refresh token already used")));
    // oidc-provider revokes the whole grant on reuse: the new token died with it.
    let err = refresh(&http, &provider, &client, &new).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Dead, "{err}");
}

#[tokio::test]
async fn server_side_revocation_is_dead_and_probes_say_gone() {
    require!(oidc::available(), oidc::MISSING);
    let oidc = start(OidcOptions::default()).unwrap();
    let provider = oidc.provider();
    let userinfo = oidc.provider_with_userinfo_probe();
    let client = oidc.client();
    let tokens = authorize(&oidc, &provider, &client).await;
    let http = tether::oauth::http_client();
    assert_eq!(
        probe(&http, &provider, &client, &tokens.access_token).await,
        ProbeOutcome::Alive
    );
    assert_eq!(
        probe(&http, &userinfo, &client, &tokens.access_token).await,
        ProbeOutcome::Alive
    );

    oidc.revoke_grant_for(tokens.refresh_token.as_ref().unwrap())
        .await;

    match probe(&http, &provider, &client, &tokens.access_token).await {
        ProbeOutcome::Gone(info) => assert_eq!(info.code, "inactive"),
        other => panic!("introspection after revocation: {other:?}"),
    }
    match probe(&http, &userinfo, &client, &tokens.access_token).await {
        ProbeOutcome::Gone(info) => assert_eq!(info.code, "invalid_token"),
        other => panic!("userinfo after revocation: {other:?}"),
    }
    let err = refresh(
        &http,
        &provider,
        &client,
        tokens.refresh_token.as_ref().unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class, ErrorClass::Dead, "{err}");
    assert!(err.to_string().contains("re-authorize"), "{err}");
    let c = oidc.counters().await;
    assert_eq!(c.introspections, 2);
    assert_eq!(c.userinfo, 2);
}

#[tokio::test]
async fn a_wrong_state_is_refused_and_the_right_callback_still_completes() {
    require!(oidc::available(), oidc::MISSING);
    let oidc = start(OidcOptions::default()).unwrap();
    let provider = oidc.provider();
    let client = oidc.client();
    let (pending, auth_url) = AuthorizationRequest::new(&provider, &client, &[]).unwrap();
    let listener = LoopbackListener::bind(&provider.requirement(), pending.state.clone()).unwrap();
    let redirect_uri = listener.redirect_uri();
    let waiting = tokio::task::spawn_blocking(move || listener.wait(WAIT));
    let callback = oidc
        .consent(&auth_url.with_redirect_uri(&redirect_uri))
        .await;

    // An attacker's (or a stale tab's) callback: same code, another state.
    let mut forged = callback.clone();
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                "forged-state".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let (status, page) = browser_get(&forged).await;
    assert_eq!(status, 400);
    assert!(page.contains("not the one Tether is waiting for"), "{page}");
    assert!(
        !waiting.is_finished(),
        "the listener keeps waiting after a wrong state"
    );

    let browser = tokio::spawn(async move { browser_get(&callback).await });
    let pending_callback = waiting.await.unwrap().unwrap();
    let http = tether::oauth::http_client();
    let (cb, responder) = pending_callback.into_parts();
    exchange(
        &http,
        &provider,
        &client,
        cb.code,
        pending.verifier,
        &cb.redirect_uri,
    )
    .await
    .unwrap();
    responder.respond(CallbackOutcome::Success {
        title: "Done".into(),
        detail: "ok".into(),
    });
    assert_eq!(browser.await.unwrap().0, 200);
}

#[tokio::test]
async fn declined_consent_is_reported_as_declined() {
    require!(oidc::available(), oidc::MISSING);
    let oidc = start(OidcOptions {
        decline_consent: true,
        ..Default::default()
    })
    .unwrap();
    let provider = oidc.provider();
    let (pending, auth_url) = AuthorizationRequest::new(&provider, &oidc.client(), &[]).unwrap();
    let listener = LoopbackListener::bind(&provider.requirement(), pending.state.clone()).unwrap();
    let redirect_uri = listener.redirect_uri();
    let waiting = tokio::task::spawn_blocking(move || listener.wait(WAIT));
    let callback = oidc
        .consent(&auth_url.with_redirect_uri(&redirect_uri))
        .await;
    assert!(callback
        .query_pairs()
        .any(|(k, v)| k == "error" && v == "access_denied"));
    let (status, page) = browser_get(&callback).await;
    assert_eq!(status, 400);
    assert!(page.contains("declined"), "{page}");
    let err = waiting.await.unwrap().unwrap_err();
    assert!(matches!(err, ListenerError::Declined), "{err:?}");
}

#[tokio::test]
async fn a_code_is_single_use_and_needs_its_verifier() {
    require!(oidc::available(), oidc::MISSING);
    let oidc = start(OidcOptions::default()).unwrap();
    let provider = oidc.provider();
    let client = oidc.client();
    let http = tether::oauth::http_client();

    // Wrong verifier (from another request): the server refuses the code.
    let (pending, auth_url) = AuthorizationRequest::new(&provider, &client, &[]).unwrap();
    let (other, _) = AuthorizationRequest::new(&provider, &client, &[]).unwrap();
    let redirect_uri = "http://127.0.0.1:9/callback";
    let callback = oidc
        .consent(&auth_url.with_redirect_uri(redirect_uri))
        .await;
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| AuthorizationCode::new(v.into_owned()))
        .unwrap();
    let err = exchange(
        &http,
        &provider,
        &client,
        code.clone(),
        other.verifier,
        redirect_uri,
    )
    .await
    .unwrap_err();
    assert_eq!(err.class, ErrorClass::Dead, "{err}");
    // The right verifier redeems it once.
    exchange(
        &http,
        &provider,
        &client,
        code.clone(),
        pending.verifier,
        redirect_uri,
    )
    .await
    .expect("the code with its own verifier");
    // A replay of the used code is refused. (A verifier is consumed by `exchange`, so the
    // replay needs a fresh one: the type system already stops reuse of the first.)
    let (again, _) = AuthorizationRequest::new(&provider, &client, &[]).unwrap();
    let err = exchange(
        &http,
        &provider,
        &client,
        code,
        again.verifier,
        redirect_uri,
    )
    .await
    .unwrap_err();
    assert_eq!(err.class, ErrorClass::Dead, "{err}");
}

#[tokio::test]
async fn discovery_finds_endpoints_and_the_introspection_probe() {
    require!(oidc::available(), oidc::MISSING);
    let oidc = start(OidcOptions::default()).unwrap();
    let http = tether::oauth::http_client();
    let discovered = discover(&http, &oidc.issuer()).await.unwrap();
    let expected = oidc.provider();
    assert_eq!(discovered.auth_url, expected.auth_url);
    assert_eq!(discovered.token_url, expected.token_url);
    assert_eq!(discovered.revoke_url, expected.revoke_url);
    assert_eq!(discovered.probe, expected.probe);
    assert_eq!(discovered.pkce, tether::provider::PkceMode::S256);
    // The discovered provider runs the whole flow.
    let tokens = authorize(&oidc, &discovered, &oidc.client()).await;
    assert!(tokens.refresh_token.is_some());

    let wrong = url::Url::parse(&format!("{}other", oidc.issuer())).unwrap();
    assert!(discover(&http, &wrong).await.is_err());
}

/// The whole flow in a real browser: headless Chromium follows the consent redirects to
/// the loopback listener and shows the page the listener renders once the exchange is done.
#[tokio::test]
async fn a_real_headless_chromium_completes_the_flow() {
    require!(oidc::available(), oidc::MISSING);
    let chromium = ["chromium", "chromium-browser"].into_iter().find(|b| {
        std::process::Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    require!(
        chromium.is_some(),
        "chromium (apt install chromium) for the real-browser consent test"
    );
    let oidc = start(OidcOptions::default()).unwrap();
    let provider = oidc.provider();
    let client = oidc.client();
    let (pending, auth_url) = AuthorizationRequest::new(&provider, &client, &[]).unwrap();
    let listener = LoopbackListener::bind(&provider.requirement(), pending.state.clone()).unwrap();
    let redirect_uri = listener.redirect_uri();
    let browser_url = auth_url.with_redirect_uri(&redirect_uri);
    let waiting = tokio::task::spawn_blocking(move || listener.wait(Duration::from_secs(90)));

    let profile = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(chromium.unwrap());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg("--dump-dom")
    .arg(browser_url.as_str())
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let browser = tokio::task::spawn_blocking(move || cmd.output());

    let pending_callback = waiting
        .await
        .unwrap()
        .expect("chromium reached the listener");
    let http = tether::oauth::http_client();
    let (cb, responder) = pending_callback.into_parts();
    let tokens = exchange(
        &http,
        &provider,
        &client,
        cb.code,
        pending.verifier,
        &cb.redirect_uri,
    )
    .await
    .unwrap();
    assert!(tokens.refresh_token.is_some());
    responder.respond(CallbackOutcome::Success {
        title: "Done: chromium · test is working again".into(),
        detail: "You can close this tab.".into(),
    });
    let out = browser.await.unwrap().expect("chromium ran");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("Done: chromium · test is working again"),
        "chromium showed:\n{dom}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
