//! End-to-end flows against the real oidc-provider: the rotation race, remote bootstrap,
//! death with alerts and recovery, and fast death detection by probes.

use super::harness::{oidc_credential, smtp_available, Smtp, TestAgent, Webhook};
use crate::require;
use crate::util;
use crate::util::oidc::{OidcOptions, OidcProvider};
use reqwest::Method;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tether::oauth::{CallbackOutcome, LoopbackListener};
use tether::protocol::{CredentialHealth, CredentialState, Event, ReauthStart};

/// Checks an access token at the provider's userinfo endpoint.
async fn token_works(oidc: &OidcProvider, token: &str) -> bool {
    tether::oauth::http_client()
        .get(oidc.issuer().join("/me").unwrap())
        .bearer_auth(token)
        .send()
        .await
        .map(|r| r.status().is_success())
        .unwrap_or(false)
}

#[tokio::test]
async fn rotation_race_shares_one_refresh() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions {
        rotate_refresh_tokens: true,
        access_token_ttl_secs: 4,
        ..Default::default()
    });
    // Only the broker refreshes (no refresh ahead, no keep-fresh), so the 50 requests
    // below are what meets the expiry.
    let extra = "keep_fresh = false\nrefresh_ahead = \"0s\"\nrefresh_interval = \"1h\"";
    let a = TestAgent::start("", &oidc_credential("x", &oidc, extra)).await;
    a.bootstrap("x", &oidc).await;
    let (status, first) = a.access_token("x").await;
    assert_eq!(status, 200, "{first}");
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(first["expires_at"].clone()).unwrap();
    let before = oidc.refresh_count().await;
    // Wait for the moment the access token expires.
    let wait =
        (expires - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(20);
    tokio::time::sleep(wait).await;
    let replies = futures_util::future::join_all((0..50).map(|_| a.access_token("x"))).await;
    let mut tokens = HashSet::new();
    for (status, body) in &replies {
        assert_eq!(*status, 200, "{body}");
        tokens.insert(body["access_token"].as_str().unwrap().to_string());
    }
    assert!(
        !tokens.contains(first["access_token"].as_str().unwrap()),
        "the expired token was handed out"
    );
    for t in &tokens {
        assert!(
            token_works(&oidc, t).await,
            "a handed-out token does not work"
        );
    }
    assert_eq!(
        oidc.refresh_count().await,
        before + 1,
        "the provider saw exactly one refresh"
    );
    assert_eq!(tokens.len(), 1);
    assert_eq!(a.cred("x").await.state, CredentialState::Ok);
    // The grant still refreshes afterwards (the rotated token was stored, not spent twice).
    let checked: CredentialHealth = a.post_json("/v1/credentials/x/check", None).await;
    assert_eq!(checked.state, CredentialState::Ok, "{checked:?}");
    assert_eq!(oidc.refresh_count().await, before + 2);
    assert_eq!(oidc.counters().await.grants_revoked, 0);
}

#[tokio::test]
async fn remote_bootstrap_keeps_secrets_on_the_daemon() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let a = TestAgent::start("", &oidc_credential("yt", &oidc, "")).await;

    // A session whose callback carries a wrong state is refused, and is spent.
    let s1: ReauthStart = a.post_json("/v1/credentials/yt/reauth", None).await;
    let complete = |session: &str, body: serde_json::Value| {
        a.req(
            Method::POST,
            &format!("/v1/reauth/{session}/complete"),
            Some(&a.device),
        )
        .json(&body)
        .send()
    };
    let r = complete(
        &s1.session,
        serde_json::json!({"code": "x", "state": "not-the-state", "redirect_uri": "http://127.0.0.1:5000/callback"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["code"],
        "state_mismatch"
    );

    // The real flow: session from the daemon, loopback listener, consent, completion.
    let raw = a
        .req(Method::POST, "/v1/credentials/yt/reauth", Some(&a.device))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !raw.contains("verifier") && !raw.contains("redirect_uri"),
        "{raw}"
    );
    let start: ReauthStart = serde_json::from_str(&raw).unwrap();
    assert!(
        start.authorize_url.contains("code_challenge="),
        "{}",
        start.authorize_url
    );
    assert!(start.expires_at > chrono::Utc::now() + chrono::Duration::minutes(9));
    let listener =
        LoopbackListener::bind(&start.redirect, start.state.clone()).expect("bind listener");
    let redirect_uri = listener.redirect_uri();
    let mut url = url::Url::parse(&start.authorize_url).unwrap();
    url.query_pairs_mut()
        .append_pair("redirect_uri", &redirect_uri);
    let waiter = tokio::task::spawn_blocking(move || listener.wait(Duration::from_secs(30)));
    let callback = oidc.consent(&url).await;
    let browser = tokio::spawn(async move { util::oidc::browser_get(&callback).await });
    let pending = waiter.await.unwrap().expect("one valid callback");
    let body = serde_json::json!({
        "code": pending.code().secret(),
        "state": pending.state(),
        "redirect_uri": redirect_uri,
    });
    let r = complete(&start.session, body.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        !text.contains("refresh_token") && !text.contains("access_token"),
        "{text}"
    );
    let health: CredentialHealth = serde_json::from_str(&text).unwrap();
    assert_eq!(health.state, CredentialState::Ok);
    assert_eq!(health.generation, 1);
    pending.respond(CallbackOutcome::Success {
        title: "Done".into(),
        detail: "studio · yt is working again".into(),
    });
    let (status, page) = browser.await.unwrap();
    assert_eq!(status, 200, "{page}");

    // Replay: refused, and nothing changed.
    let r = complete(&start.session, body).await.unwrap();
    assert_eq!(r.status(), 410);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["code"],
        "session_expired"
    );
    assert_eq!(a.cred("yt").await.generation, 1);
    // The daemon holds a working grant: the agent gets a token, a refresh test works.
    let (status, tok) = a.access_token("yt").await;
    assert_eq!(status, 200);
    assert!(token_works(&oidc, tok["access_token"].as_str().unwrap()).await);
    let checked: CredentialHealth = a.post_json("/v1/credentials/yt/check", None).await;
    assert_eq!(checked.state, CredentialState::Ok);
    assert_eq!(checked.generation, 2);

    // A completion the provider refuses (a made-up code) reports the provider's classified
    // error and leaves the stored generation alone.
    let s3: ReauthStart = a.post_json("/v1/credentials/yt/reauth", None).await;
    let r = complete(
        &s3.session,
        serde_json::json!({"code": "made-up", "state": s3.state, "redirect_uri": "http://127.0.0.1:5000/callback"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 502);
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(err["code"], "provider_error");
    assert!(
        err["message"].as_str().unwrap().contains("invalid_grant"),
        "{err}"
    );
    let after = a.cred("yt").await;
    assert_eq!((after.state, after.generation), (CredentialState::Ok, 2));
    assert_eq!(a.access_token("yt").await.0, 200);
}

#[tokio::test]
async fn expired_sessions_are_refused() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let a = TestAgent::start("session_ttl = \"1s\"", &oidc_credential("yt", &oidc, "")).await;
    let start: ReauthStart = a.post_json("/v1/credentials/yt/reauth", None).await;
    let redirect_uri = "http://127.0.0.1:9/callback";
    let mut url = url::Url::parse(&start.authorize_url).unwrap();
    url.query_pairs_mut()
        .append_pair("redirect_uri", redirect_uri);
    let callback = oidc.consent(&url).await;
    let q: HashMap<String, String> = callback.query_pairs().into_owned().collect();
    let left = (start.expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    // Letting the session expire is the test.
    tokio::time::sleep(left + Duration::from_millis(100)).await;
    let r = a
        .req(Method::POST, &format!("/v1/reauth/{}/complete", start.session), Some(&a.device))
        .json(&serde_json::json!({"code": q["code"], "state": q["state"], "redirect_uri": redirect_uri}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    assert_eq!(
        oidc.counters().await.code_grants,
        0,
        "the code was never exchanged"
    );
    assert_eq!(a.cred("yt").await.generation, 0);
}

#[tokio::test]
async fn death_is_detected_alerted_blocked_and_recovered() {
    require!(util::oidc::available(), util::oidc::MISSING);
    require!(
        smtp_available(),
        "python3 with aiosmtpd (pip install aiosmtpd)"
    );
    let oidc = OidcProvider::start(OidcOptions {
        rotate_refresh_tokens: true,
        ..Default::default()
    });
    let hook = Webhook::start();
    let smtp = Smtp::start();
    let alerts = format!(
        r#"
[alerts]
reminder_interval = "1h"
[[alerts.channels]]
name = "hook"
kind = "webhook"
url = "{}"
[[alerts.channels]]
name = "mail"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {}
tls = "none"
from = "Tether <tether@studio.test>"
to = ["owner@studio.test"]
"#,
        hook.url, smtp.port
    );
    let body = format!(
        "{}{alerts}",
        oidc_credential("youtube", &oidc, "refresh_interval = \"1h\"")
    );
    let a = TestAgent::start("", &body).await;
    a.bootstrap("youtube", &oidc).await;
    let mut events = a.events().await;

    // The provider revokes the grant; one check finds it.
    assert_eq!(oidc.revoke_all().await, 1);
    let checked: CredentialHealth = a.post_json("/v1/credentials/youtube/check", None).await;
    assert_eq!(checked.state, CredentialState::Dead, "{checked:?}");
    assert_eq!(checked.last_error.as_ref().unwrap().code, "invalid_grant");
    match events
        .wait_for("youtube", CredentialState::Dead, Duration::from_secs(10))
        .await
    {
        Event::StateChanged { previous, .. } => assert_eq!(previous, CredentialState::Ok),
        other => panic!("{other:?}"),
    }
    // The broker refuses with a JSON error that says what to do, and counts.
    for _ in 0..3 {
        let (status, body) = a.access_token("youtube").await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["code"], "credential_dead");
        assert!(
            body["hint"]
                .as_str()
                .unwrap()
                .contains("tether reauth studio/youtube"),
            "{body}"
        );
    }
    assert_eq!(a.cred("youtube").await.blocked_requests, 3);
    // Both channels got the alert naming agent, credential, error and the fix.
    let hooked = hook
        .wait_for(
            &[
                "studio",
                "youtube",
                "invalid_grant",
                "tether reauth studio/youtube",
            ],
            Duration::from_secs(30),
        )
        .await;
    assert!(!hooked.contains("refresh_token\":\""), "{hooked}");
    smtp.wait_for(
        &[
            "owner@studio.test",
            "youtube",
            "tether reauth studio/youtube",
        ],
        Duration::from_secs(30),
    )
    .await;
    let channels = a.health().await.alerts;
    assert_eq!(channels.len(), 2);

    // Re-auth brings it back, with a recovery alert.
    let h = a.bootstrap("youtube", &oidc).await;
    assert_eq!(h.state, CredentialState::Ok);
    assert_eq!(h.blocked_requests, 0);
    events
        .wait_for("youtube", CredentialState::Ok, Duration::from_secs(10))
        .await;
    assert_eq!(a.access_token("youtube").await.0, 200);
    hook.wait_for(&["youtube", "recovered"], Duration::from_secs(30))
        .await;
    smtp.wait_for(&["youtube", "working again"], Duration::from_secs(30))
        .await;
}

#[tokio::test]
async fn probes_detect_death_fast_without_refreshing() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions {
        rotate_refresh_tokens: true,
        ..Default::default()
    });
    let a = TestAgent::start(
        "",
        &oidc_credential(
            "yt",
            &oidc,
            "probe_interval = \"15s\"\nrefresh_interval = \"6h\"",
        ),
    )
    .await;
    a.bootstrap("yt", &oidc).await;
    let c = a.cred("yt").await;
    let cadence = c.cadence.expect("cadence");
    assert_eq!(cadence.probe_interval_secs, Some(15));
    assert!(cadence.worst_case_detection_secs < 60, "{cadence:?}");
    // While alive: probes run, refreshes do not.
    let refreshes = oidc.refresh_count().await;
    let probes = oidc.counters().await.introspections;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while oidc.counters().await.introspections < probes + 2 {
        assert!(tokio::time::Instant::now() < deadline, "no probes ran");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        oidc.refresh_count().await,
        refreshes,
        "no refresh between probes while alive"
    );
    let c = a.cred("yt").await;
    assert_eq!(
        c.last_probe.as_ref().map(|p| p.result.as_str()),
        Some("alive")
    );

    // Revoked server-side: dead within one probe interval, after one confirming refresh test.
    let mut events = a.events().await;
    let errors_before = oidc.counters().await.grant_errors;
    oidc.revoke_all().await;
    let revoked_at = tokio::time::Instant::now();
    let dead = a
        .wait_state("yt", CredentialState::Dead, Duration::from_secs(30))
        .await;
    // One probe interval with its +10 % jitter, plus the confirming refresh test.
    assert!(
        revoked_at.elapsed() <= Duration::from_millis(16_500 + 2_500),
        "took {:?}",
        revoked_at.elapsed()
    );
    events
        .wait_for("yt", CredentialState::Dead, Duration::from_secs(5))
        .await;
    let probe = dead.last_probe.expect("last probe");
    assert!(probe.result.contains("confirmed"), "{probe:?}");
    let counters = oidc.counters().await;
    assert_eq!(
        counters.grant_errors,
        errors_before + 1,
        "exactly one confirming refresh test"
    );
    assert_eq!(counters.refresh_grants, refreshes);
}

#[tokio::test]
async fn a_known_refresh_token_end_inside_the_window_is_expiring() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let hook = Webhook::start();
    // Provider from OIDC discovery; the refresh token is known to last 7 days.
    let body = format!(
        r#"
[[credentials]]
name = "tiktok"
provider = "generic"
issuer = "{issuer}"
client_id = "{client}"
scopes = ["openid", "offline_access"]
warning_window = "14d"
[credentials.overrides]
refresh_token_lifetime_days = 7

[alerts]
[[alerts.channels]]
name = "hook"
kind = "webhook"
url = "{hook}"
"#,
        issuer = oidc.issuer().as_str().trim_end_matches('/'),
        client = oidc.client_id(),
        hook = hook.url,
    );
    let a = TestAgent::start("", &body).await;
    let h = a.bootstrap("tiktok", &oidc).await;
    assert_eq!(h.state, CredentialState::Expiring, "{h:?}");
    let end = h.refresh_expires_at.expect("known end");
    let days = (end - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!((6.9..=7.0).contains(&days), "{days}");
    // Discovery found the introspection endpoint, so the fast probe applies.
    assert!(h.cadence.unwrap().probe_interval_secs.is_some());
    hook.wait_for(&["tiktok", "expiring"], Duration::from_secs(30))
        .await;
    // An expiring credential still hands out tokens.
    assert_eq!(a.access_token("tiktok").await.0, 200);
}

#[tokio::test]
async fn reminders_repeat_while_dead() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let hook = Webhook::start();
    let body = format!(
        "{}\n[alerts]\nreminder_interval = \"2s\"\n[[alerts.channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        oidc_credential("yt", &oidc, ""),
        hook.url
    );
    let a = TestAgent::start("", &body).await;
    a.bootstrap("yt", &oidc).await;
    oidc.revoke_all().await;
    let checked: CredentialHealth = a.post_json("/v1/credentials/yt/check", None).await;
    assert_eq!(checked.state, CredentialState::Dead);
    hook.wait_for(&["yt", "dead"], Duration::from_secs(20))
        .await;
    hook.wait_for(&["yt", "reminder"], Duration::from_secs(20))
        .await;
    let reminders = |b: &Vec<String>| b.iter().filter(|b| b.contains("reminder")).count();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while reminders(&hook.bodies()) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only one reminder: {:?}",
            hook.bodies()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn pasted_tokens_are_verified_before_they_are_stored() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    // A paste-kind credential whose cheap check is the fixture's userinfo endpoint; an
    // OAuth credential next to it supplies a real token to paste (not GitHub-shaped, so
    // the credential takes any token of the conservative alphabet).
    let pat = format!(
        "\n[[credentials]]\nname = \"pat\"\nprovider = \"github-pat\"\n[credentials.overrides]\nprobe_url = \"{}\"\nprobe_method = \"user_info\"\npaste_format = \"opaque\"\n",
        oidc.issuer().join("/me").unwrap()
    );
    let body = format!("{}{pat}", oidc_credential("src", &oidc, ""));
    let a = TestAgent::start("", &body).await;
    a.bootstrap("src", &oidc).await;
    let real = a.access_token("src").await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        a.cred("pat").await.reauth,
        tether::protocol::ReauthKind::Paste
    );

    let put = |secret: &str| {
        a.req(Method::PUT, "/v1/credentials/pat/secret", Some(&a.device))
            .json(&serde_json::json!({ "secret": secret }))
            .send()
    };
    // A token the provider refuses is not stored.
    let r = put("not-a-token").await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["code"],
        "provider_error"
    );
    assert_eq!(a.cred("pat").await.generation, 0);
    // A working one is stored and handed out.
    let r = put(&real).await.unwrap();
    assert_eq!(r.status(), 200);
    let h: CredentialHealth = r.json().await.unwrap();
    assert_eq!((h.state, h.generation), (CredentialState::Ok, 1));
    let (status, tok) = a.access_token("pat").await;
    assert_eq!(status, 200);
    assert_eq!(tok["access_token"], real.as_str());
    // Browser re-auth does not apply to it.
    let r = a
        .req(Method::POST, "/v1/credentials/pat/reauth", Some(&a.device))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["code"],
        "wrong_kind"
    );
    // When the provider revokes it, the next check calls it dead.
    oidc.revoke_all().await;
    let checked: CredentialHealth = a.post_json("/v1/credentials/pat/check", None).await;
    assert_eq!(checked.state, CredentialState::Dead, "{checked:?}");
}
