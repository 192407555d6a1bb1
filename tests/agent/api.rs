//! The HTTP API's guard rails: pairing, token roles, bodies, names, SSE.

use super::harness::{oidc_credential, seed, TestAgent};
use crate::require;
use crate::util;
use reqwest::Method;
use std::time::Duration;
use tether::agent::access::auth::{AuthStore, PAIRING_TTL, PAIR_FAILURES_ALLOWED};
use tether::protocol::{CredentialState, Event, PairResponse};
use tether::secret::{AccessToken, RefreshToken};
use tether::vault::Record;

/// A credential whose provider is unreachable (connection refused on port 9), seeded with
/// a token: enough for every route without an authorization server.
const UNREACHABLE: &str = r#"
[[credentials]]
name = "youtube"
provider = "generic"
client_id = "cid"
refresh_interval = "1h"
[credentials.overrides]
auth_url = "http://127.0.0.1:9/auth"
token_url = "http://127.0.0.1:9/token"
"#;

async fn agent_with_token() -> TestAgent {
    let dir = tempfile::tempdir().unwrap();
    TestAgent::start_in(dir, "", UNREACHABLE, |d| {
        let mut r = Record::new("youtube", "generic");
        r.access_token = Some(AccessToken::new("at-seeded"));
        r.refresh_token = Some(RefreshToken::new("rt-seeded"));
        r.expires_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
        seed(d, r);
    })
    .await
}

async fn error_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.expect("error bodies are JSON");
    (
        status,
        body["code"].as_str().expect("error has a code").to_string(),
    )
}

async fn pair(a: &TestAgent, secret: &str) -> reqwest::Response {
    a.req(Method::POST, "/v1/pair", None)
        .json(&serde_json::json!({"secret": secret, "device_name": "laptop"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn pairing_is_single_use_expires_and_is_rate_limited() {
    let a = agent_with_token().await;
    let store = AuthStore::open(&a.dir.path().join("state")).unwrap();

    // A good secret pairs once; the device token then works and only its hash is stored.
    let (secret, _) = store.create_pairing(PAIRING_TTL).unwrap();
    let resp = pair(&a, secret.secret()).await;
    assert_eq!(resp.status(), 200);
    let paired: PairResponse = resp.json().await.unwrap();
    assert_eq!(paired.agent, "studio");
    let health = a
        .req(
            Method::GET,
            "/v1/health",
            Some(paired.device_token.secret()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let devices = std::fs::read_to_string(a.dir.path().join("state/devices.json")).unwrap();
    assert!(!devices.contains(paired.device_token.secret()));
    assert!(!std::fs::read_dir(a.dir.path().join("state/pairing"))
        .unwrap()
        .any(|_| true));

    // Replay: refused.
    assert_eq!(
        error_code(pair(&a, secret.secret()).await).await,
        (401, "unauthorized".into())
    );
    // Expired: refused.
    let (expired, _) = store.create_pairing(Duration::ZERO).unwrap();
    assert_eq!(
        error_code(pair(&a, expired.secret()).await).await,
        (401, "unauthorized".into())
    );
    // Wrong secrets until the limit.
    for _ in 2..PAIR_FAILURES_ALLOWED {
        assert_eq!(
            error_code(pair(&a, "wrong-secret").await).await,
            (401, "unauthorized".into())
        );
    }
    // Rate-limited now, even with a valid secret.
    let (valid, _) = store.create_pairing(PAIRING_TTL).unwrap();
    assert_eq!(
        error_code(pair(&a, valid.secret()).await).await,
        (429, "rate_limited".into())
    );

    // Revoking the device ends it at once.
    assert!(store.revoke(&paired.device_id).unwrap());
    let resp = a
        .req(
            Method::GET,
            "/v1/health",
            Some(paired.device_token.secret()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (401, "unauthorized".into()));
}

#[tokio::test]
async fn every_route_checks_token_and_role() {
    let a = agent_with_token().await;
    let body = serde_json::json!({"code": "c", "state": "s", "redirect_uri": "http://127.0.0.1:1/callback"});
    let device_routes: Vec<(Method, &str, Option<serde_json::Value>)> = vec![
        (Method::GET, "/v1/health", None),
        (Method::GET, "/metrics", None),
        (Method::POST, "/v1/credentials/youtube/reauth", None),
        (Method::POST, "/v1/reauth/abc/complete", Some(body)),
        (
            Method::PUT,
            "/v1/credentials/youtube/secret",
            Some(serde_json::json!({"secret": "x"})),
        ),
        (Method::POST, "/v1/credentials/youtube/check", None),
    ];
    // `/v1/events` takes both roles (the agent's stream carries only its `recovered`
    // events): it is checked for the two refusals below.
    let agent_routes = vec![
        (Method::GET, "/v1/credentials/youtube/access-token", None),
        (
            Method::POST,
            "/v1/credentials/youtube/challenge",
            Some(serde_json::json!({"kind": "text", "message": "hi"})),
        ),
        (Method::DELETE, "/v1/credentials/youtube/challenge", None),
        (Method::POST, "/v1/credentials/youtube/resolved", None),
        (
            Method::POST,
            "/v1/credentials/youtube/report",
            Some(serde_json::json!({"ok": true})),
        ),
    ];
    for token in [None, Some("tth_device_not-a-real-token")] {
        let r = a
            .req(Method::GET, "/v1/events", token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(r).await,
            (401, "unauthorized".into()),
            "events {token:?}"
        );
    }
    for (routes, right, other) in [
        (&device_routes, &a.device, &a.agent),
        (&agent_routes, &a.agent, &a.device),
    ] {
        for (m, path, body) in routes.iter() {
            let send = |token: Option<&str>| {
                let mut r = a.req(m.clone(), path, token);
                if let Some(b) = body {
                    r = r.json(b);
                }
                r.send()
            };
            let none = send(None).await.unwrap();
            assert_eq!(
                error_code(none).await,
                (401, "unauthorized".into()),
                "{m} {path} without token"
            );
            let wrong = send(Some("tth_device_not-a-real-token")).await.unwrap();
            assert_eq!(
                error_code(wrong).await,
                (401, "unauthorized".into()),
                "{m} {path} wrong token"
            );
            let other = send(Some(other)).await.unwrap();
            assert_eq!(
                error_code(other).await,
                (403, "forbidden".into()),
                "{m} {path} other role"
            );
            let right = send(Some(right)).await.unwrap();
            let status = right.status().as_u16();
            if status == 403 {
                // The role may use the route; the credential's config may still say no
                // (an OAuth credential without agent_challenges), and says so distinctly.
                let (_, code) = error_code(right).await;
                assert_eq!(code, "not_allowed", "{m} {path} with the right token");
            } else {
                assert_ne!(status, 401, "{m} {path} with the right token");
            }
        }
    }
    // Only /healthz is open, and it says nothing.
    let h = a.req(Method::GET, "/healthz", None).send().await.unwrap();
    assert_eq!(h.status(), 200);
    assert_eq!(h.text().await.unwrap().trim(), "ok");
    // The seeded token is served to the agent.
    let (status, body) = a.access_token("youtube").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["access_token"], "at-seeded");
    // Metrics count the requests.
    let m = a
        .req(Method::GET, "/metrics", Some(&a.device))
        .send()
        .await
        .unwrap();
    let text = m.text().await.unwrap();
    assert!(
        text.contains("tether_credential_state{credential=\"youtube\""),
        "{text}"
    );
    assert!(
        text.contains("tether_http_requests_total{route=\"/v1/health\",status=\"401\"}"),
        "{text}"
    );
    assert!(
        text.contains(
            "tether_access_token_requests_total{credential=\"youtube\",outcome=\"served\"} 2"
        ),
        "{text}"
    );
    // Graceful stop: serve returns Ok.
    a.stop().await.expect("serve ends cleanly");
}

#[tokio::test]
async fn bodies_are_capped_strict_and_errors_are_json() {
    let a = agent_with_token().await;
    let big = format!(
        "{{\"code\":\"{}\",\"state\":\"s\",\"redirect_uri\":\"x\"}}",
        "a".repeat(tether::protocol::MAX_BODY_BYTES)
    );
    let send = |path: &str, m: Method, body: String| {
        a.req(m, path, Some(&a.device))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = send("/v1/reauth/abc/complete", Method::POST, big)
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (413, "payload_too_large".into()));
    let r = send("/v1/reauth/abc/complete", Method::POST, "{not json".into())
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (400, "bad_request".into()));
    let r = send(
        "/v1/reauth/abc/complete",
        Method::POST,
        r#"{"code":"c","state":"s","redirect_uri":"x","extra":1}"#.into(),
    )
    .await
    .unwrap();
    let (status, _) = (r.status().as_u16(), ());
    let text = r.text().await.unwrap();
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("unknown field"), "{text}");
    let r = send(
        "/v1/credentials/youtube/secret",
        Method::PUT,
        r#"{"secret":"x","more":true}"#.into(),
    )
    .await
    .unwrap();
    assert_eq!(error_code(r).await, (400, "bad_request".into()));
    let r = a
        .req(Method::POST, "/v1/pair", None)
        .json(&serde_json::json!({"secret": "s", "device_name": "d", "admin": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (400, "bad_request".into()));
    // Pasting a token into an OAuth credential is refused and changes nothing.
    let r = send(
        "/v1/credentials/youtube/secret",
        Method::PUT,
        r#"{"secret":"x"}"#.into(),
    )
    .await
    .unwrap();
    assert_eq!(error_code(r).await, (409, "wrong_kind".into()));
    assert_eq!(
        a.access_token("youtube").await.1["access_token"],
        "at-seeded"
    );
    // Unknown session.
    let r = send(
        "/v1/reauth/nosuchsession/complete",
        Method::POST,
        r#"{"code":"c","state":"s","redirect_uri":"http://127.0.0.1:5/callback"}"#.into(),
    )
    .await
    .unwrap();
    assert_eq!(error_code(r).await, (410, "session_expired".into()));
    // Unknown route: JSON 404.
    let r = a
        .req(Method::GET, "/v1/nothing", Some(&a.device))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (404, "not_found".into()));
}

#[tokio::test]
async fn unknown_credentials_and_path_tricks_are_refused() {
    let a = agent_with_token().await;
    let (status, body) = a.access_token("nope").await;
    assert_eq!((status, body["code"].as_str().unwrap()), (404, "not_found"));
    for name in [
        "..%2F..%2Fetc%2Fpasswd",
        "..",
        "YouTube",
        "you%00tube",
        "-x",
        "a%20b",
        &"a".repeat(65),
    ] {
        let r = a
            .req(
                Method::GET,
                &format!("/v1/credentials/{name}/access-token"),
                Some(&a.agent),
            )
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(matches!(status, 400 | 404), "{name}: {status}");
        let body: serde_json::Value = r.json().await.expect("JSON error");
        assert!(body["code"].is_string(), "{name}: {body}");
        let r = a
            .req(
                Method::POST,
                &format!("/v1/credentials/{name}/check"),
                Some(&a.device),
            )
            .send()
            .await
            .unwrap();
        assert!(matches!(r.status().as_u16(), 400 | 404), "{name}");
    }
    let r = a
        .req(
            Method::GET,
            "/v1/credentials/..%2Fyoutube/access-token",
            Some(&a.agent),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (400, "bad_request".into()));
}

#[tokio::test]
async fn a_transient_failure_is_degraded_never_dead() {
    let a = agent_with_token().await;
    let c = a
        .wait_state(
            "youtube",
            CredentialState::Degraded,
            Duration::from_secs(20),
        )
        .await;
    let err = c.last_error.expect("degraded has an error");
    assert!(!err.description.contains("rt-seeded"), "{err:?}");
    assert_eq!(
        a.health().await.protocol,
        tether::protocol::PROTOCOL_VERSION
    );
    // Still degraded after a manual check, and the cached token is still served.
    let checked: tether::protocol::CredentialHealth =
        a.post_json("/v1/credentials/youtube/check", None).await;
    assert_eq!(checked.state, CredentialState::Degraded);
    assert_eq!(a.access_token("youtube").await.0, 200);
    let cadence = checked.cadence.expect("cadence");
    assert_eq!(cadence.probe_interval_secs, None);
    assert_eq!(cadence.refresh_interval_secs, 3600);
}

#[tokio::test]
async fn sse_delivers_a_state_change() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = util::oidc::OidcProvider::start(Default::default());
    let a = TestAgent::start("", &oidc_credential("main", &oidc, "")).await;
    let mut events = a.events().await;
    a.bootstrap("main", &oidc).await;
    match events
        .wait_for("main", CredentialState::Ok, Duration::from_secs(10))
        .await
    {
        Event::StateChanged {
            agent, credential, ..
        } => {
            assert_eq!(agent, "studio");
            assert_eq!(credential.generation, 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    // An open event stream does not hold up a graceful stop.
    a.stop()
        .await
        .expect("serve ends cleanly with an open event stream");
    assert!(events_closed(events).await);
}

async fn events_closed(mut events: super::harness::EventStream) -> bool {
    tokio::time::timeout(Duration::from_secs(10), events.closed())
        .await
        .is_ok()
}

#[tokio::test]
async fn plain_http_only_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let head = super::harness::config_head(dir.path(), "[tls]\nenabled = false");
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, &head).unwrap();
    let cfg = tether::agent::config::parse(&path).unwrap();
    let daemon = tether::agent::Daemon::build(cfg.clone(), tether::oauth::http_client())
        .await
        .unwrap();
    assert!(daemon.tls().is_none());
    // No certificate is made when TLS is off.
    assert!(!dir
        .path()
        .join("state")
        .join(tether::agent::access::tls::IDENTITY_FILE)
        .exists());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serve = tokio::spawn(tether::agent::serve(listener, daemon.clone(), async move {
        let _ = rx.await;
    }));
    let r = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::get(format!("http://{addr}/v1/health"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    tx.send(()).unwrap();
    serve.await.unwrap().unwrap();

    // The same config on a non-loopback address is refused, by the config and by serve.
    let text = head.replace("127.0.0.1:0", "0.0.0.0:0");
    let err = tether::agent::config::parse_str(&text).unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
    let public = std::net::UdpSocket::bind("0.0.0.0:0")
        .ok()
        .and_then(|s| s.connect("192.0.2.1:9").ok().map(|_| s))
        .and_then(|s| s.local_addr().ok())
        .map(|a| a.ip())
        .filter(|ip| !ip.is_loopback());
    if let Some(ip) = public {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let err = tether::agent::serve(listener, daemon, std::future::pending())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("plain HTTP"), "{err}");
    }
}
