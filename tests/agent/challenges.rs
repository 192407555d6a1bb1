//! "A human is needed": challenges posted by the agent, `session` credentials with their
//! reports and staleness rule, pending work, and the agent's own event stream — against
//! the real daemon over TLS, a webhook receiver and (for token credentials) oidc-provider.

use super::harness::{oidc_credential, EventStream, TestAgent, Webhook};
use crate::require;
use crate::util;
use crate::util::oidc::OidcProvider;
use reqwest::Method;
use std::time::{Duration, Instant};
use tether::protocol::{Challenge, CredentialHealth, CredentialState, Event};

/// The config of a session credential `whatsapp` with a webhook channel.
fn session_body(hook: &Webhook, extra: &str) -> String {
    format!(
        r#"
[[credentials]]
name = "whatsapp"
kind = "session"
{extra}
[alerts]
reminder_interval = "1h"
[[alerts.channels]]
name = "hook"
kind = "webhook"
url = "{}"
"#,
        hook.url
    )
}

/// POST (or DELETE) with the agent token; status and JSON body.
pub(crate) async fn agent_call(
    a: &TestAgent,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    agent_call_once(a, method, path, body).await
}

/// [`agent_call`], waiting out the daemon's rate limit as a polite agent does.
async fn agent_call_polite(
    a: &TestAgent,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    for _ in 0..3 {
        let r = agent_call_once(a, method.clone(), path, body.clone()).await;
        if r.0 != 429 {
            return r;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    agent_call_once(a, method, path, body).await
}

async fn agent_call_once(
    a: &TestAgent,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut r = a.req(method, path, Some(&a.agent));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.expect("request to the daemon");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// Like [`agent_call`], and the call must succeed with the credential's health.
async fn agent_ok(
    a: &TestAgent,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> CredentialHealth {
    let (status, v) = agent_call_polite(a, method, path, body).await;
    assert_eq!(status, 200, "{path}: {v}");
    serde_json::from_value(v).expect("credential health")
}

/// The next state-change event of `name` that satisfies `pred`, within `timeout`.
async fn next_change(
    events: &mut EventStream,
    name: &str,
    timeout: Duration,
    pred: impl Fn(&CredentialHealth) -> bool,
) -> CredentialHealth {
    tokio::time::timeout(timeout, async {
        loop {
            if let Event::StateChanged { credential, .. } = events.next().await {
                if credential.name == name && pred(&credential) {
                    return credential;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no matching event for {name} within {timeout:?}"))
}

fn qr_payload(c: &CredentialHealth) -> Option<&str> {
    match c.challenge.as_ref().map(|p| &p.challenge) {
        Some(Challenge::Qr { payload, .. }) => Some(payload),
        _ => None,
    }
}

/// The agent's own event stream (agent token), for one credential.
async fn agent_events(a: &TestAgent, credential: &str) -> EventStream {
    let resp = a
        .req(
            Method::GET,
            &format!("/v1/events?credential={credential}"),
            Some(&a.agent),
        )
        .send()
        .await
        .expect("events request");
    assert_eq!(resp.status(), 200);
    EventStream::from_response(resp)
}

#[tokio::test]
async fn a_session_agent_posts_changing_qr_codes_and_resolves() {
    let hook = Webhook::start();
    let a = TestAgent::start("", &session_body(&hook, "")).await;
    let h = a.cred("whatsapp").await;
    assert!(h.session, "{h:?}");
    assert_eq!(h.state, CredentialState::Unchecked);
    assert_eq!(h.cadence.as_ref().unwrap().mode, "agent_reports");

    let ok = agent_ok(
        &a,
        Method::POST,
        "/v1/credentials/whatsapp/report",
        Some(serde_json::json!({"ok": true})),
    )
    .await;
    assert_eq!(ok.state, CredentialState::Ok);

    let mut device = a.events().await;
    let mut mine = agent_events(&a, "whatsapp").await;
    // The agent is logged out: three QR codes, each replacing the last.
    for (i, payload) in ["2@first,qr", "2@second,qr", "2@third,qr"]
        .iter()
        .enumerate()
    {
        let posted = Instant::now();
        let expires = chrono::Utc::now() + chrono::Duration::seconds(20);
        let h = agent_ok(
            &a,
            Method::POST,
            "/v1/credentials/whatsapp/challenge",
            Some(serde_json::json!({"kind": "qr", "payload": payload, "expires_at": expires})),
        )
        .await;
        assert_eq!(h.state, CredentialState::Dead);
        // What the companion sees: the new code, within a second of the post.
        let seen = next_change(&mut device, "whatsapp", Duration::from_secs(1), |c| {
            qr_payload(c) == Some(payload)
        })
        .await;
        println!(
            "QR {} reached the event stream in {:?}",
            i + 1,
            posted.elapsed()
        );
        assert_eq!(seen.state, CredentialState::Dead);
        let error = seen.last_error.as_ref().expect("an error");
        assert_eq!(error.code, "human_needed");
        assert!(error.description.contains("scan the QR code"), "{error:?}");
        let c = seen.challenge.as_ref().unwrap();
        assert_eq!(c.revision, i as u64 + 1);
    }
    // One alert for the outage, naming what is needed; re-posts do not alert again.
    let body = hook
        .wait_for(
            &["\"kind\":\"dead\"", "scan the QR code"],
            Duration::from_secs(5),
        )
        .await;
    assert!(body.contains("tether challenge studio/whatsapp"), "{body}");

    // Work waited meanwhile; then the phone scanned it.
    let oldest = "2026-03-01T09:02:00Z";
    agent_ok(
        &a,
        Method::POST,
        "/v1/credentials/whatsapp/report",
        Some(serde_json::json!({"ok": false, "pending": 3, "oldest": oldest, "what": "messages"})),
    )
    .await;
    let h = a.cred("whatsapp").await;
    let pending = h.pending.as_ref().expect("pending work in health");
    assert_eq!(pending.count, 3);
    assert_eq!(pending.what.as_deref(), Some("messages"));
    assert_eq!(
        h.last_error.unwrap().code,
        "human_needed",
        "a challenge stays open"
    );

    agent_ok(&a, Method::POST, "/v1/credentials/whatsapp/resolved", None).await;
    let back = next_change(&mut device, "whatsapp", Duration::from_secs(1), |c| {
        c.state == CredentialState::Ok
    })
    .await;
    assert!(back.challenge.is_none(), "{back:?}");
    // The agent's own stream says so, with its pending work; devices never see it.
    let ev = tokio::time::timeout(Duration::from_secs(1), mine.next())
        .await
        .expect("recovered on the agent's stream within a second");
    match ev {
        Event::Recovered {
            credential,
            pending,
            ..
        } => {
            assert_eq!(credential, "whatsapp");
            assert_eq!(pending.unwrap().count, 3);
        }
        other => panic!("expected recovered, got {other:?}"),
    }
    hook.wait_for(
        &["\"kind\":\"recovered\"", "whatsapp"],
        Duration::from_secs(5),
    )
    .await;
    let dead_alerts = hook
        .bodies()
        .iter()
        .filter(|b| b.contains("\"kind\":\"dead\""))
        .count();
    assert_eq!(dead_alerts, 1, "re-posted QR codes must not alert again");
}

#[tokio::test]
async fn a_session_that_stops_reporting_goes_dead_and_comes_back() {
    let hook = Webhook::start();
    let a = TestAgent::start("", &session_body(&hook, "stale_after = \"1s\"")).await;
    agent_ok(
        &a,
        Method::POST,
        "/v1/credentials/whatsapp/report",
        Some(serde_json::json!({"ok": true})),
    )
    .await;
    let dead = a
        .wait_state("whatsapp", CredentialState::Dead, Duration::from_secs(10))
        .await;
    let e = dead.last_error.unwrap();
    assert_eq!(e.code, "session_stale");
    assert!(e.description.contains("has not reported"), "{e:?}");
    hook.wait_for(
        &["\"kind\":\"dead\"", "session_stale"],
        Duration::from_secs(5),
    )
    .await;
    let h = agent_ok(
        &a,
        Method::POST,
        "/v1/credentials/whatsapp/report",
        Some(serde_json::json!({"ok": true})),
    )
    .await;
    assert_eq!(h.state, CredentialState::Ok);
    // And it goes stale again once the agent is silent.
    a.wait_state("whatsapp", CredentialState::Dead, Duration::from_secs(10))
        .await;
}

#[tokio::test]
async fn a_broken_session_report_is_dead_with_the_agents_words() {
    let hook = Webhook::start();
    let a = TestAgent::start("", &session_body(&hook, "")).await;
    let h = agent_ok(
        &a,
        Method::POST,
        "/v1/credentials/whatsapp/report",
        Some(serde_json::json!({"ok": false, "detail": "logged out by the phone"})),
    )
    .await;
    assert_eq!(h.state, CredentialState::Dead);
    let e = h.last_error.unwrap();
    assert_eq!(e.code, "session_down");
    assert_eq!(e.description, "logged out by the phone");
    // A session credential has no token to hand out, and no browser re-authorization.
    let (status, body) = a.access_token("whatsapp").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "wrong_kind");
    assert!(body["message"].as_str().unwrap().contains("challenge"));
    let r = a
        .req(
            Method::POST,
            "/v1/credentials/whatsapp/reauth",
            Some(&a.device),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn challenge_routes_refuse_what_they_cannot_use() {
    let hook = Webhook::start();
    let a = TestAgent::start("", &session_body(&hook, "")).await;
    let path = "/v1/credentials/whatsapp/challenge";
    let cases = [
        serde_json::json!({"kind": "qr", "payload": ""}),
        serde_json::json!({"kind": "qr", "payload": "x".repeat(3000)}),
        serde_json::json!({"kind": "url", "url": "javascript:alert(1)"}),
        serde_json::json!({"kind": "device_code", "verification_uri": "https://id.example/device"}),
        serde_json::json!({"kind": "fax", "number": "1"}),
        serde_json::json!({"kind": "text", "message": "hi", "extra": true}),
    ];
    for body in cases {
        let (status, v) = agent_call(&a, Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body} -> {v}");
    }
    // Only the agent posts challenges; a device token is refused.
    let r = a
        .req(Method::POST, path, Some(&a.device))
        .json(&serde_json::json!({"kind": "text", "message": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (status, _) = agent_call(
        &a,
        Method::POST,
        "/v1/credentials/nothere/challenge",
        Some(serde_json::json!({"kind": "text", "message": "hi"})),
    )
    .await;
    assert_eq!(status, 404);
    // The agent's stream is for configured credentials only.
    let r = a
        .req(Method::GET, "/v1/events?credential=nothere", Some(&a.agent))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(a.cred("whatsapp").await.state, CredentialState::Unchecked);
}

#[tokio::test]
async fn a_challenge_on_a_token_credential_holds_until_the_agent_resolves_it() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let hook = Webhook::start();
    let body = format!(
        "{}\n[alerts]\n[[alerts.channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        oidc_credential("github", &oidc, "agent_challenges = true"),
        hook.url
    );
    let a = TestAgent::start("", &body).await;
    assert_eq!(
        a.bootstrap("github", &oidc).await.state,
        CredentialState::Ok
    );
    let h = agent_ok(&a, Method::DELETE, "/v1/credentials/github/challenge", None).await;
    assert_eq!(
        h.state,
        CredentialState::Ok,
        "resolving nothing changes nothing"
    );

    let h = agent_ok(
        &a,
        Method::POST,
        "/v1/credentials/github/challenge",
        Some(serde_json::json!({
            "kind": "device_code",
            "verification_uri": "https://github.com/login/device",
            "user_code": "WDJB-MJHT"
        })),
    )
    .await;
    assert_eq!(h.state, CredentialState::Dead);
    // The webhook says a code is waiting and for which page, never the code.
    let body = hook
        .wait_for(
            &["\"code_waiting\":true", "https://github.com/login/device"],
            Duration::from_secs(5),
        )
        .await;
    assert!(body.contains("needs you"), "{body}");
    assert!(
        !body.contains("WDJB-MJHT"),
        "the webhook never carries a code: {body}"
    );
    // A refresh that works does not clear it: only the agent knows its session.
    let forced: CredentialHealth = a.post_json("/v1/credentials/github/check", None).await;
    assert_eq!(forced.state, CredentialState::Dead, "{forced:?}");
    assert_eq!(forced.last_error.unwrap().code, "human_needed");

    // Pending work reported with `rejected` is shown too.
    let (status, _) = agent_call(
        &a,
        Method::POST,
        "/v1/credentials/github/rejected",
        Some(serde_json::json!({"status": 401, "pending": 2, "what": "issues"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(a.cred("github").await.pending.unwrap().count, 2);

    let h = agent_ok(&a, Method::DELETE, "/v1/credentials/github/challenge", None).await;
    assert_eq!(
        h.state,
        CredentialState::Ok,
        "a refresh test confirmed the token: {h:?}"
    );
    assert!(h.challenge.is_none());
}

#[tokio::test]
async fn a_consent_that_grants_fewer_scopes_is_degraded_naming_the_missing_one() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let body = oidc_credential("youtube", &oidc, "").replace(
        r#"scopes = ["openid", "offline_access"]"#,
        r#"scopes = ["openid", "offline_access", "email"]"#,
    );
    let a = TestAgent::start("", &body).await;
    // The owner unticks `email` on the consent page.
    oidc.set_dropped_scopes(&["email"]).await;
    let h = a.bootstrap("youtube", &oidc).await;
    assert_eq!(h.state, CredentialState::Degraded, "{h:?}");
    let e = h.last_error.unwrap();
    assert_eq!(e.code, "missing_scope");
    assert_eq!(
        e.description,
        "missing scope email: re-authorize and leave every box ticked"
    );
    // A refresh of the same grant says the same; a consent with every box ticked fixes it.
    let forced: CredentialHealth = a.post_json("/v1/credentials/youtube/check", None).await;
    assert_eq!(forced.state, CredentialState::Degraded, "{forced:?}");
    oidc.set_dropped_scopes(&[]).await;
    let h = a.bootstrap("youtube", &oidc).await;
    assert_eq!(h.state, CredentialState::Ok, "{h:?}");
}

/// Re-authorizes `name` through the daemon's routes as account `login` (the fixture's
/// `login_hint`); returns the completion's status and body.
async fn reauth_as(
    a: &TestAgent,
    oidc: &OidcProvider,
    name: &str,
    login: &str,
    new_account: bool,
) -> (u16, serde_json::Value) {
    let start: tether::protocol::ReauthStart = a
        .post_json(&format!("/v1/credentials/{name}/reauth"), None)
        .await;
    let redirect_uri = "http://127.0.0.1:9/callback";
    let mut url = url::Url::parse(&start.authorize_url).unwrap();
    url.query_pairs_mut()
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("login_hint", login)
        .append_pair("prompt", "login");
    let callback = oidc.consent(&url).await;
    let q: std::collections::HashMap<String, String> =
        callback.query_pairs().into_owned().collect();
    let mut body =
        serde_json::json!({"code": q["code"], "state": q["state"], "redirect_uri": redirect_uri});
    if new_account {
        body["new_account"] = serde_json::Value::Bool(true);
    }
    let r = a
        .req(
            Method::POST,
            &format!("/v1/reauth/{}/complete", start.session),
            Some(&a.device),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_reauthorization_as_another_account_is_refused_and_changes_nothing() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let a = TestAgent::start("", &oidc_credential("youtube", &oidc, "")).await;
    let (status, first) = reauth_as(&a, &oidc, "youtube", "brand-channel", false).await;
    assert_eq!(status, 200, "{first}");
    let before = a.cred("youtube").await;
    assert_eq!(before.account.as_deref(), Some("brand-channel"));
    let (_, token_before) = a.access_token("youtube").await;

    let (status, refused) = reauth_as(&a, &oidc, "youtube", "alice", false).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["code"], "wrong_account");
    let msg = refused["message"].as_str().unwrap();
    assert!(
        msg.contains("this is alice")
            && msg.contains("belongs to brand-channel")
            && msg.contains("--new-account"),
        "{msg}"
    );
    let after = a.cred("youtube").await;
    assert_eq!(
        after.generation, before.generation,
        "nothing stored changes"
    );
    assert_eq!(after.account.as_deref(), Some("brand-channel"));
    assert_eq!(a.access_token("youtube").await.1, token_before);

    // The owner means it: --new-account.
    let (status, replaced) = reauth_as(&a, &oidc, "youtube", "alice", true).await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["account"], "alice");
}

/// The next `recovered` or `scopes_missing` on the agent's own stream, within `timeout`.
async fn next_agent_news(events: &mut EventStream, timeout: Duration) -> Event {
    tokio::time::timeout(timeout, async {
        loop {
            let ev = events.next().await;
            if matches!(ev, Event::Recovered { .. } | Event::ScopesMissing { .. }) {
                return ev;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no recovered/scopes_missing within {timeout:?}"))
}

/// A `youtube` credential that needs `openid`, `offline_access` and `email`, authorized
/// once and then found dead after oidc-provider revoked its grant.
pub(crate) async fn dead_youtube_that_needs_email(oidc: &OidcProvider) -> TestAgent {
    let body = oidc_credential("youtube", oidc, "").replace(
        r#"scopes = ["openid", "offline_access"]"#,
        r#"scopes = ["openid", "offline_access", "email"]"#,
    );
    let a = TestAgent::start("", &body).await;
    assert_eq!(
        a.bootstrap("youtube", oidc).await.state,
        CredentialState::Ok
    );
    oidc.revoke_all().await;
    let dead: CredentialHealth = a.post_json("/v1/credentials/youtube/check", None).await;
    assert_eq!(dead.state, CredentialState::Dead, "{dead:?}");
    a
}

#[tokio::test]
async fn a_reauthorization_that_lacks_a_scope_tells_the_agent_which_and_a_full_one_recovers() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let a = dead_youtube_that_needs_email(&oidc).await;
    // The agent waits on its own stream.
    let mut agent = agent_events(&a, "youtube").await;

    // The owner re-authorizes but unticks `email`: not a recovery, and the agent hears why.
    oidc.set_dropped_scopes(&["email"]).await;
    let h = a.bootstrap("youtube", &oidc).await;
    assert_eq!(h.state, CredentialState::Degraded, "{h:?}");
    match next_agent_news(&mut agent, Duration::from_secs(2)).await {
        Event::ScopesMissing {
            credential,
            missing,
            description,
            ..
        } => {
            assert_eq!(credential, "youtube");
            assert_eq!(missing, vec!["email".to_string()]);
            assert_eq!(
                description,
                "missing scope email: re-authorize and leave every box ticked"
            );
        }
        other => panic!("a degraded re-authorization is no recovery: {other:?}"),
    }

    // With every box ticked it works: now the agent hears `recovered`.
    oidc.set_dropped_scopes(&[]).await;
    assert_eq!(
        a.bootstrap("youtube", &oidc).await.state,
        CredentialState::Ok
    );
    match next_agent_news(&mut agent, Duration::from_secs(2)).await {
        Event::Recovered { credential, .. } => assert_eq!(credential, "youtube"),
        other => panic!("expected recovered, got {other:?}"),
    }
}
