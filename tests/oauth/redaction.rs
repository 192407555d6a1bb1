//! No token, code, verifier or client secret in any log line (tracing output captured at
//! TRACE, every target) or in any `Debug` / `Display` output.

use super::canned::{Answer, Canned};
use crate::require;
use crate::util::oidc::{self, browser_get, OidcOptions, OidcProvider};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether::oauth::{
    exchange, probe, refresh, AuthorizationRequest, CallbackOutcome, ClientCredentials,
    LoopbackListener,
};
use tether::secret::{ClientSecret, RefreshToken};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn dispatch(&self) -> tracing::Dispatch {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::Dispatch::new(subscriber)
    }
}

fn assert_free_of(haystack: &str, secrets: &[(&str, &str)]) {
    for (what, s) in secrets {
        assert!(!s.is_empty());
        assert!(!haystack.contains(s), "the {what} leaked into:\n{haystack}");
    }
}

#[tokio::test]
async fn a_whole_flow_logs_no_secret() {
    require!(oidc::available(), oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions {
        rotate_refresh_tokens: true,
        ..Default::default()
    });
    let capture = Capture::default();
    let dispatch = capture.dispatch();
    let _guard = tracing::dispatcher::set_default(&dispatch);
    // Callsite interest is cached process-wide: a callsite first hit by a test on another
    // thread while no capturing dispatcher existed can stay cached as uninterested, and
    // this capture would miss its line (seen once in CI). Recompute with ours in place.
    tracing::callsite::rebuild_interest_cache();

    let provider = oidc.provider();
    let client = oidc.confidential_client("basic");
    let http = tether::oauth::http_client();
    let (pending, auth_url) = AuthorizationRequest::new(&provider, &client, &[]).unwrap();
    let verifier = pending.verifier.secret().to_owned();
    let listener = LoopbackListener::bind(&provider.requirement(), pending.state.clone()).unwrap();
    let redirect_uri = listener.redirect_uri();
    let listener_dispatch = dispatch.clone();
    let waiting = tokio::task::spawn_blocking(move || {
        tracing::dispatcher::with_default(&listener_dispatch, || {
            listener.wait(Duration::from_secs(30))
        })
    });
    let callback = oidc
        .consent(&auth_url.with_redirect_uri(&redirect_uri))
        .await;
    let browser = tokio::spawn(async move { browser_get(&callback).await });
    let cb = waiting.await.unwrap().unwrap();
    let code = cb.code().secret().to_owned();
    let tokens = exchange(
        &http,
        &provider,
        &client,
        cb.code().clone(),
        pending.verifier,
        cb.redirect_uri(),
    )
    .await
    .unwrap();
    cb.respond(CallbackOutcome::Success {
        title: "Done".into(),
        detail: String::new(),
    });
    browser.await.unwrap();
    let old_rt = tokens.refresh_token.clone().unwrap();
    let new = refresh(&http, &provider, &client, &old_rt).await.unwrap();
    // Reuse: a dead refresh, with its error path logged.
    refresh(&http, &provider, &client, &old_rt)
        .await
        .unwrap_err();
    probe(&http, &provider, &client, &new.access_token).await;

    let logs = capture.text();
    assert!(
        logs.contains("loopback listener ready"),
        "logging was captured:\n{logs}"
    );
    assert!(logs.contains("token request failed"), "{logs}");
    let secret = client.client_secret.as_ref().unwrap().secret().to_owned();
    assert_free_of(
        &logs,
        &[
            ("authorization code", &code),
            ("PKCE verifier", &verifier),
            ("access token", tokens.access_token.secret()),
            ("refresh token", old_rt.secret()),
            ("rotated access token", new.access_token.secret()),
            (
                "rotated refresh token",
                new.refresh_token.as_ref().unwrap().secret(),
            ),
            ("client secret", &secret),
            ("state", &pending.state),
        ],
    );
}

#[tokio::test]
async fn debug_and_display_redact_every_secret() {
    let canned = Canned::start();
    canned.route(
        "/token",
        Answer::json(200, r#"{"access_token":"AT-SECRET-123456","refresh_token":"RT-SECRET-123456","id_token":"ID-SECRET-123456","expires_in":60,"open_id":"visible"}"#),
    );
    let mut provider = tether::provider::preset("generic").unwrap();
    provider.auth_url = Some(canned.url("/authorize"));
    provider.token_url = Some(canned.url("/token"));
    let client = ClientCredentials::confidential("id", ClientSecret::new("CLIENT-SECRET-123456"));
    let (pending, url) = AuthorizationRequest::new(&provider, &client, &[]).unwrap();
    let verifier = pending.verifier.secret().to_owned();
    let pending_dbg = format!("{pending:?}");
    assert_free_of(&pending_dbg, &[("verifier", &verifier)]);
    assert!(
        !url.as_str().contains(&verifier),
        "only the challenge is in the URL"
    );
    assert!(url.as_str().contains(&format!(
        "code_challenge={}",
        pending.verifier.s256_challenge()
    )));

    let http = tether::oauth::http_client();
    let set = exchange(
        &http,
        &provider,
        &client,
        tether::secret::AuthorizationCode::new("CODE-SECRET-123456"),
        pending.verifier,
        "http://127.0.0.1:1/callback",
    )
    .await
    .unwrap();
    let shown = format!("{set:?} {client:?}");
    assert_free_of(
        &shown,
        &[
            ("access token", "AT-SECRET-123456"),
            ("refresh token", "RT-SECRET-123456"),
            ("id token", "ID-SECRET-123456"),
            ("client secret", "CLIENT-SECRET-123456"),
        ],
    );
    assert!(!set.extras.contains_key("id_token"));
    assert_eq!(set.extras["open_id"], "visible");

    // A provider that echoes the refresh token in its error description.
    canned.route(
        "/token",
        Answer::json(
            400,
            r#"{"error":"invalid_grant","error_description":"token RT-ECHOED-123456 is revoked"}"#,
        ),
    );
    let err = refresh(
        &http,
        &provider,
        &client,
        &RefreshToken::new("RT-ECHOED-123456"),
    )
    .await
    .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert_free_of(&shown, &[("echoed refresh token", "RT-ECHOED-123456")]);
    assert!(shown.contains("[redacted]"));
}

#[tokio::test]
async fn a_token_endpoint_echoing_secrets_in_the_code_or_across_the_cut_leaks_none() {
    let canned = Canned::start();
    let mut p = tether::provider::preset("generic").unwrap();
    p.apply(&tether::provider::ProviderOverrides {
        auth_url: Some(canned.url("/authorize").to_string()),
        token_url: Some(canned.url("/token").to_string()),
        ..Default::default()
    })
    .unwrap();
    let rt = "1//refresh-token-echoed-0123456789";
    let secret = "client-secret-echoed-0123456789";
    let client = ClientCredentials {
        client_id: "id".into(),
        client_secret: Some(ClientSecret::new(secret)),
    };
    // The refresh token starts 10 characters before the 300-character cut of the
    // description, and the client secret is the error code.
    let pad = "x".repeat(290);
    canned.route(
        "/token",
        Answer::json(
            400,
            &format!(r#"{{"error":"{secret}","error_description":"{pad}{rt}"}}"#),
        ),
    );
    let err = refresh(
        &tether::oauth::http_client(),
        &p,
        &client,
        &RefreshToken::new(rt),
    )
    .await
    .unwrap_err();
    let text = format!("{} | {err} | {err:?}", err.info.code);
    assert!(text.contains("[redacted]"), "{text}");
    assert_free_of(
        &text,
        &[("refresh token", &rt[..9]), ("client secret", &secret[..9])],
    );
}
