//! Who may ask the owner for what, against the real daemon over HTTPS: an agent token
//! cannot post a challenge on an OAuth credential unless its config says so, cannot
//! replace or resolve the daemon's own device-code sign-in, cannot post a link that shows
//! one host and opens another; every challenge says who asks and which host opens, in
//! health and in the alert; a post/resolve loop costs one refresh per check-now interval
//! and one "flapping" alert, while a real death during it still reaches the owner.

use super::challenges::agent_call;
use super::harness::{oidc_credential, TestAgent, Webhook};
use crate::require;
use crate::util;
use crate::util::oidc::{OidcOptions, OidcProvider};
use reqwest::Method;
use std::time::Duration;
use tether::protocol::{Challenge, ChallengeOrigin, CredentialState};

fn hook_section(hook: &Webhook) -> String {
    format!(
        "\n[alerts]\nreminder_interval = \"1h\"\n[[alerts.channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        hook.url
    )
}

/// The phishing attempt of the issue: a device code for the attacker's own client, shown
/// on the real host.
fn phishing_code() -> serde_json::Value {
    serde_json::json!({
        "kind": "device_code",
        "verification_uri": "https://microsoft.com/devicelogin",
        "user_code": "ATTACKER1"
    })
}

#[tokio::test]
async fn an_agent_cannot_post_a_challenge_on_an_oauth_credential_without_the_setting() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let hook = Webhook::start();
    let body = oidc_credential("outlook", &oidc, "") + &hook_section(&hook);
    let a = TestAgent::start("", &body).await;
    let before = a.bootstrap("outlook", &oidc).await;
    assert_eq!(before.state, CredentialState::Ok);
    for body in [
        phishing_code(),
        serde_json::json!({"kind": "url", "url": "https://login.example/consent"}),
        serde_json::json!({"kind": "text", "message": "please approve"}),
    ] {
        let (status, v) = agent_call(
            &a,
            Method::POST,
            "/v1/credentials/outlook/challenge",
            Some(body),
        )
        .await;
        assert_eq!(status, 403, "{v}");
        assert_eq!(v["code"], "not_allowed", "{v}");
        let msg = v["message"].as_str().unwrap();
        assert!(
            msg.contains("agent_challenges = true") && msg.contains("outlook"),
            "the refusal names the setting and the credential: {msg}"
        );
    }
    let after = a.cred("outlook").await;
    assert_eq!(after.state, CredentialState::Ok);
    assert!(after.challenge.is_none());
    assert_eq!(after.generation, before.generation);
    // The refusals were counted (the positive signal that the requests were read), and
    // no alert went out.
    let metrics = a
        .req(Method::GET, "/metrics", Some(&a.device))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "tether_challenges_refused_total{credential=\"outlook\",reason=\"not_allowed\"} 3"
        ),
        "{metrics}"
    );
    assert!(hook.bodies().is_empty(), "{:?}", hook.bodies());
}

#[tokio::test]
async fn challenge_links_that_could_show_one_host_and_open_another_are_refused() {
    let hook = Webhook::start();
    let body = format!(
        "\n[[credentials]]\nname = \"whatsapp\"\nkind = \"session\"\n{}",
        hook_section(&hook)
    );
    let a = TestAgent::start("", &body).await;
    let path = "/v1/credentials/whatsapp/challenge";
    let cases = [
        (
            serde_json::json!({"kind": "url", "url": "https://accounts.google.com\n.evil.example/"}),
            "control characters",
        ),
        (
            serde_json::json!({"kind": "url", "url": "https://accounts.google.com .evil.example/"}),
            "whitespace",
        ),
        (
            serde_json::json!({"kind": "url", "url": "http://evil.example/consent"}),
            "must use https",
        ),
        (
            serde_json::json!({"kind": "url", "url": "https://accounts.google.com@evil.example/"}),
            "user name or password",
        ),
        (
            serde_json::json!({
                "kind": "device_code",
                "verification_uri": "https://microsoft.com/devicelogin",
                "verification_uri_complete": "https://evil.example/devicelogin?code=X",
                "user_code": "X"
            }),
            "same origin",
        ),
        (
            serde_json::json!({"kind": "url", "url": "javascript:alert(1)"}),
            "https URL",
        ),
    ];
    for (body, rule) in cases {
        // One post a second is the limit: the refusals themselves are not rate-limited
        // (nothing was stored), so no wait is needed between them.
        let (status, v) = agent_call(&a, Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body} -> {v}");
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(msg.contains(rule), "{body}: {msg:?} should name {rule:?}");
    }
    let h = a.cred("whatsapp").await;
    assert!(h.challenge.is_none(), "{h:?}");

    // A good link is stored in its parsed form and carries its origin.
    let (status, v) = agent_call(
        &a,
        Method::POST,
        path,
        Some(serde_json::json!({"kind": "url", "url": "https://Login.Example.COM/consent"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let h = a.cred("whatsapp").await;
    let posted = h.challenge.expect("stored");
    assert_eq!(posted.origin, ChallengeOrigin::Agent);
    assert_eq!(
        posted.challenge,
        Challenge::Url {
            url: "https://login.example.com/consent".into()
        }
    );
    // The alert says who asks and where the page is.
    let alert = hook
        .wait_for(&["your agent asks (not Tether)"], Duration::from_secs(5))
        .await;
    assert!(
        alert.contains("That page is on login.example.com"),
        "{alert}"
    );
    // Posting again at once is rate-limited.
    let (status, v) = agent_call(
        &a,
        Method::POST,
        path,
        Some(serde_json::json!({"kind": "url", "url": "https://login.example.com/other"})),
    )
    .await;
    assert_eq!(status, 429, "{v}");
}

/// The daemon's own device-code challenge on `github`, started by a device.
async fn daemon_device_challenge(a: &TestAgent) -> (String, tether::protocol::PostedChallenge) {
    let r = a
        .req(
            Method::POST,
            "/v1/credentials/github/device-reauth",
            Some(&a.device),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(p) = a.cred("github").await.challenge {
            if let Challenge::DeviceCode { user_code, .. } = &p.challenge {
                return (user_code.clone(), p);
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no device code");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_agent_cannot_replace_or_resolve_the_daemons_own_device_sign_in() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let hook = Webhook::start();
    let base = oidc.issuer().as_str().trim_end_matches('/').to_string();
    // Even with agent challenges allowed on this credential. The device endpoint is an
    // override, the last table oidc_credential writes.
    let body = oidc_credential("github", &oidc, "agent_challenges = true").replacen(
        "probe_method = \"introspection\"\n",
        &format!(
            "probe_method = \"introspection\"\ndevice_authorization_url = \"{base}/device/auth\"\n"
        ),
        1,
    ) + &hook_section(&hook);
    let a = TestAgent::start("", &body).await;
    a.bootstrap("github", &oidc).await;
    let (code, posted) = daemon_device_challenge(&a).await;
    assert_eq!(posted.origin, ChallengeOrigin::Daemon);
    // The alert names Tether as the asker and the provider's host.
    let host = oidc.issuer().host_str().unwrap().to_string();
    let alert = hook
        .wait_for(
            &["\"code_waiting\":true", "Tether's own sign-in for github"],
            Duration::from_secs(5),
        )
        .await;
    assert!(!alert.contains(&code), "the webhook never carries a code");
    assert!(
        alert.contains(&format!("That page is on {host}")),
        "{alert}"
    );

    for (method, path, body) in [
        (
            Method::POST,
            "/v1/credentials/github/challenge",
            Some(phishing_code()),
        ),
        (Method::DELETE, "/v1/credentials/github/challenge", None),
        (Method::POST, "/v1/credentials/github/resolved", None),
    ] {
        let (status, v) = agent_call(&a, method.clone(), path, body).await;
        assert_eq!(status, 403, "{method} {path}: {v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("Tether's own sign-in"),
            "{v}"
        );
    }
    let now = a.cred("github").await.challenge.expect("still open");
    assert_eq!(now, posted, "the daemon's challenge is unchanged");
    assert!(
        !hook.bodies().iter().any(|b| b.contains("ATTACKER1")),
        "the attacker's code reached no channel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_resolve_loop_costs_one_refresh_per_interval_and_one_flapping_alert() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions {
        rotate_refresh_tokens: true,
        ..Default::default()
    });
    let hook = Webhook::start();
    let body = oidc_credential(
        "youtube",
        &oidc,
        "agent_challenges = true\nprobe_interval = \"15s\"",
    ) + &hook_section(&hook);
    let a = TestAgent::start("", &body).await;
    a.bootstrap("youtube", &oidc).await;
    let refreshes0 = oidc.refresh_count().await;
    let secs: u64 = std::env::var("TETHER_FLOOD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let started = tokio::time::Instant::now();
    let (mut posts, mut resolves, mut limited) = (0u32, 0u32, 0u32);
    let mut revoked = false;
    while started.elapsed() < Duration::from_secs(secs) {
        if !revoked && started.elapsed() >= Duration::from_secs(secs / 2) {
            // A real death in the middle of the noise.
            assert!(oidc.revoke_all().await >= 1);
            revoked = true;
        }
        let (s, _) = agent_call(
            &a,
            Method::POST,
            "/v1/credentials/youtube/challenge",
            Some(serde_json::json!({"kind": "text", "message": "approve me"})),
        )
        .await;
        match s {
            200 => posts += 1,
            429 => limited += 1,
            other => panic!("post answered {other}"),
        }
        let (s, _) = agent_call(&a, Method::POST, "/v1/credentials/youtube/resolved", None).await;
        assert_eq!(s, 200);
        resolves += 1;
    }
    let refreshes = oidc.refresh_count().await - refreshes0;
    // The real death reaches the owner, with the provider's cause.
    hook.wait_for(
        &["\"kind\":\"dead\"", "invalid_grant"],
        Duration::from_secs(30),
    )
    .await;
    let bodies = hook.bodies();
    let count = |kind: &str| {
        bodies
            .iter()
            .filter(|b| b.contains(&format!("\"kind\":\"{kind}\"")))
            .count()
    };
    println!(
        "{secs} s of post/resolve: {posts} posts ({limited} rate-limited), {resolves} resolves, {refreshes} refreshes at the provider, alerts: {} dead, {} recovered, {} flapping, {} in all",
        count("dead"),
        count("recovered"),
        count("flapping"),
        bodies.len()
    );
    assert!(posts >= 10, "the loop ran ({posts} posts)");
    // One forced refresh per check-now interval (30 s) at most, plus the checker's own
    // (a probe a 15 s is free; a confirming refresh after the revocation).
    let budget = secs / 30 + 1 + 2;
    assert!(
        refreshes <= budget,
        "{refreshes} refreshes in {secs} s (budget {budget})"
    );
    assert_eq!(count("flapping"), 1, "{bodies:#?}");
    assert!(
        bodies.len() <= 6,
        "a handful of alerts, not hundreds: {}",
        bodies.len()
    );
}
