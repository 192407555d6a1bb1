//! Re-authorization by device code (RFC 8628) against oidc-provider's device flow: the
//! daemon starts it, posts the code as the challenge (event stream, alert channel), a
//! scripted "phone" enters the code on the provider's pages, the daemon's polls get the
//! tokens and the credential is ok — no loopback listener anywhere.

use super::harness::{oidc_credential, TestAgent, Webhook};
use crate::require;
use crate::util;
use crate::util::oidc::{OidcOptions, OidcProvider};
use std::collections::BTreeMap;
use std::time::Duration;
use tether::protocol::{Challenge, CredentialState, Event};

/// The owner on a phone: opens the page with the code filled in and submits every form
/// the provider shows (enter code, confirm) with the cookies it sets, following redirects
/// through the (non-interactive) login and consent. Returns the last page.
async fn phone_enters_code(page: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut jar: BTreeMap<String, String> = BTreeMap::new();
    let mut url = url::Url::parse(page).unwrap();
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..20 {
        let cookie = jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = match form.take() {
            Some(f) => http.post(url.clone()).form(&f),
            None => http.get(url.clone()),
        };
        let resp = req.header("cookie", cookie).send().await.unwrap();
        for v in resp.headers().get_all("set-cookie") {
            let pair = v.to_str().unwrap().split(';').next().unwrap_or_default();
            if let Some((k, val)) = pair.split_once('=') {
                jar.insert(k.trim().to_string(), val.to_string());
            }
        }
        if resp.status().is_redirection() {
            let loc = resp.headers()["location"].to_str().unwrap().to_string();
            url = url.join(&loc).unwrap();
            continue;
        }
        let body = resp.text().await.unwrap();
        let Some(start) = body.find("<form") else {
            return body;
        };
        let html = &body[start..];
        let action = attr(html, "action").unwrap_or_else(|| url.path().to_string());
        url = url.join(&action).unwrap();
        let mut fields = Vec::new();
        for input in html.split("<input").skip(1) {
            if let (Some(n), Some(v)) = (attr(input, "name"), attr(input, "value")) {
                fields.push((n, v));
            }
        }
        form = Some(fields);
    }
    panic!("the device pages did not end within 20 steps");
}

fn attr(html: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let i = html.split('>').next()?.find(&key)? + key.len();
    let rest = &html[i..];
    Some(rest[..rest.find('"')?].to_string())
}

#[tokio::test]
async fn the_daemon_reauthorizes_by_device_code_with_no_loopback_listener() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let hook = Webhook::start();
    let base = oidc.issuer().as_str().trim_end_matches('/').to_string();
    let body = format!(
        "{}device_authorization_url = \"{base}/device/auth\"\n[alerts]\n[[alerts.channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        oidc_credential("github", &oidc, ""),
        hook.url
    );
    let a = TestAgent::start("", &body).await;
    let mut events = a.events().await;
    let h: tether::protocol::CredentialHealth = a
        .post_json("/v1/credentials/github/device-reauth", None)
        .await;
    assert_eq!(h.state, CredentialState::Dead);
    let Some(Challenge::DeviceCode {
        verification_uri,
        user_code,
        verification_uri_complete,
        ..
    }) = h.challenge.map(|c| c.challenge)
    else {
        panic!("no device code challenge");
    };
    assert_eq!(verification_uri, format!("{base}/device"));
    // The companion hears of it on its stream; the owner's phone through the alert.
    let seen = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            if let Event::StateChanged { credential, .. } = events.next().await {
                if credential.challenge.is_some() {
                    return credential;
                }
            }
        }
    })
    .await
    .expect("the challenge reaches the event stream within a second");
    assert_eq!(seen.last_error.unwrap().code, "human_needed");
    let alert = hook
        .wait_for(
            &[&verification_uri, "\"code_waiting\":true"],
            Duration::from_secs(5),
        )
        .await;
    assert!(
        !alert.contains(&user_code),
        "the webhook never carries the code: {alert}"
    );
    // A second request while it runs shows the same code.
    let again: tether::protocol::CredentialHealth = a
        .post_json("/v1/credentials/github/device-reauth", None)
        .await;
    assert_eq!(again.challenge.unwrap().revision, 1);

    let page = phone_enters_code(&verification_uri_complete.expect("a complete URI")).await;
    assert!(
        page.contains("Sign-in Success") || page.contains("success"),
        "{page}"
    );
    let ok = a
        .wait_state("github", CredentialState::Ok, Duration::from_secs(20))
        .await;
    assert!(ok.challenge.is_none(), "{ok:?}");
    assert!(ok.generation >= 1);
    let (status, token) = a.access_token("github").await;
    assert_eq!(status, 200, "{token}");
    hook.wait_for(
        &["\"kind\":\"recovered\"", "github"],
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test]
async fn device_reauth_needs_a_device_authorization_endpoint() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let a = TestAgent::start("", &oidc_credential("github", &oidc, "")).await;
    let r = a
        .req(
            reqwest::Method::POST,
            "/v1/credentials/github/device-reauth",
            Some(&a.device),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("device_authorization_url"),
        "{v}"
    );
}

/// Polls health until `name` shows a device-code challenge; returns its code and page.
async fn wait_device_code(a: &TestAgent, name: &str, timeout: Duration) -> (String, String) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let c = a.cred(name).await;
        if let Some(Challenge::DeviceCode {
            user_code,
            verification_uri_complete,
            ..
        }) = c.challenge.map(|p| p.challenge)
        {
            return (
                user_code,
                verification_uri_complete.expect("a complete URI"),
            );
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no device code on {name} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_grant_with_reauth_device_starts_the_sign_in_by_itself_and_a_restart_keeps_the_code()
{
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let hook = Webhook::start();
    let base = oidc.issuer().as_str().trim_end_matches('/').to_string();
    // The device authorization endpoint comes from the issuer's discovery document.
    let body = format!(
        "{}[alerts]\n[[alerts.channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        oidc_credential(
            "github",
            &oidc,
            &format!("issuer = \"{base}\"\nreauth = \"device\"")
        ),
        hook.url
    );
    let a = TestAgent::start("", &body).await;
    let first = a.bootstrap("github", &oidc).await;
    assert_eq!(first.state, CredentialState::Ok, "{first:?}");
    assert!(first.challenge.is_none());

    // The provider revokes the grant; the next check finds it dead and the daemon starts
    // the device sign-in by itself: nobody asked for it.
    assert!(oidc.revoke_all().await >= 1);
    let _: tether::protocol::CredentialHealth =
        a.post_json("/v1/credentials/github/check", None).await;
    let (code, page) = wait_device_code(&a, "github", Duration::from_secs(5)).await;
    assert!(
        page.starts_with(&format!("{base}/device")),
        "the discovered endpoint's page: {page}"
    );
    // The alert channel says a code is waiting and where, without the code.
    let alert = hook
        .wait_for(
            &["\"code_waiting\":true", "tether challenge"],
            Duration::from_secs(5),
        )
        .await;
    assert!(
        !alert.contains(&code),
        "the webhook never carries the code: {alert}"
    );
    let file = a.dir.path().join("state/device-flow/github.json");
    assert!(file.exists(), "the sign-in in progress is on disk");

    // A restart while the owner is typing the code: the same code is shown again and
    // polled for.
    let a = a.restart().await;
    let (again, page_again) = wait_device_code(&a, "github", Duration::from_secs(5)).await;
    assert_eq!(again, code, "the restarted daemon resumes the same sign-in");
    assert_eq!(page_again, page);

    let done = phone_enters_code(&page).await;
    assert!(
        done.contains("Sign-in Success") || done.contains("success"),
        "{done}"
    );
    let ok = a
        .wait_state("github", CredentialState::Ok, Duration::from_secs(20))
        .await;
    assert!(ok.challenge.is_none(), "{ok:?}");
    assert!(
        ok.generation > first.generation,
        "a new generation is stored"
    );
    let (status, token) = a.access_token("github").await;
    assert_eq!(status, 200, "{token}");
    assert!(!file.exists(), "the finished sign-in is forgotten");
}

#[tokio::test]
async fn reauth_device_without_a_device_endpoint_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}[[credentials]]\nname = \"x\"\nprovider = \"x\"\nclient_id = \"id\"\nreauth = \"device\"\n",
        super::harness::config_head(dir.path(), "")
    );
    let cfg = tether::agent::config::parse_str(&text).expect("the file itself is valid");
    let e = match tether::agent::Daemon::build(cfg, tether::oauth::http_client()).await {
        Ok(_) => panic!("a device re-auth without an endpoint must be refused"),
        Err(e) => tether::report::chain(&e),
    };
    assert!(e.contains("device_authorization_url"), "{e}");
    assert!(e.contains("reauth = \"device\""), "{e}");
}

/// The real `tether agent serve` process killed with SIGKILL while it polls for the code
/// the owner is typing: the sign-in in progress is on disk whole, the restarted process
/// shows the same code and polls for it, and the owner's late "yes" lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_daemon_mid_device_sign_in_keeps_the_code_and_the_late_yes_lands() {
    use super::restart::{bootstrap_running, free_port, spawn};
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let base = oidc.issuer().as_str().trim_end_matches('/').to_string();
    let dir = tempfile::tempdir().unwrap();
    // A fixed port: the restarted process is found where the first one was.
    let mut text = super::harness::config_head(dir.path(), "")
        .replace("127.0.0.1:0", &format!("127.0.0.1:{}", free_port()));
    text.push_str(&oidc_credential(
        "github",
        &oidc,
        &format!("issuer = \"{base}\"\nreauth = \"device\""),
    ));
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, text).unwrap();
    let store = tether::agent::access::auth::AuthStore::open(&dir.path().join("state")).unwrap();
    let (_, device) = store
        .create_token(tether::agent::access::auth::Role::Device, "test")
        .unwrap();
    let device = device.secret().to_string();
    let (_, agent) = store
        .create_token(tether::agent::access::auth::Role::Agent, "agent")
        .unwrap();

    let mut d = spawn(&config);
    bootstrap_running(&d, &device, "github", &oidc).await;
    let first = d.health(&device).await.credentials[0].clone();
    assert_eq!(first.state, CredentialState::Ok, "{first:?}");
    assert!(oidc.revoke_all().await >= 1);
    let r = d
        .req(
            reqwest::Method::POST,
            "/v1/credentials/github/check",
            &device,
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let code_of = |h: &tether::protocol::HealthReport| {
        h.credentials[0]
            .challenge
            .as_ref()
            .and_then(|p| match &p.challenge {
                Challenge::DeviceCode {
                    user_code,
                    verification_uri_complete,
                    ..
                } => Some((user_code.clone(), verification_uri_complete.clone())),
                _ => None,
            })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (code, page) = loop {
        if let Some(c) = code_of(&d.health(&device).await) {
            break c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no device code after the grant died"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let page = page.expect("a complete URI");

    // The owner is typing the code; the daemon is polling: the provider has answered one
    // of its polls with authorization_pending. SIGKILL: no shutdown path runs.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let c = oidc.counters().await;
        if c.last_grant_errors
            .iter()
            .any(|e| e.error == "authorization_pending")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon never polled for the code: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    let flows = dir.path().join("state/device-flow");
    let file = flows.join("github.json");
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("the sign-in is on disk"))
            .expect("and whole");
    assert!(kept.to_string().contains(&code), "{kept}");
    let strays: Vec<_> = std::fs::read_dir(&flows)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "github.json")
        .collect();
    assert!(
        strays.is_empty(),
        "nothing half-written is left: {strays:?}"
    );

    // The owner finishes on the phone while the daemon is down; it comes back after.
    let done = phone_enters_code(&page).await;
    assert!(
        done.contains("Sign-in Success") || done.contains("success"),
        "{done}"
    );
    let d = spawn(&config);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let ok = loop {
        let h = d.health(&device).await;
        let c = h.credentials[0].clone();
        if c.state == CredentialState::Ok {
            break c;
        }
        if let Some((again, _)) = code_of(&h) {
            assert_eq!(
                again, code,
                "the restarted process resumes the same sign-in"
            );
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the late yes did not land: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(ok.challenge.is_none(), "{ok:?}");
    assert!(
        ok.generation > first.generation,
        "a new generation is stored"
    );
    let r = d
        .req(
            reqwest::Method::GET,
            "/v1/credentials/github/access-token",
            agent.secret(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert!(!file.exists(), "the finished sign-in is forgotten");
}

/// `[alerts]` with a webhook (`hook`, which never carries a code) and an ntfy topic served
/// by `phone` (the owner's phone push, which does).
fn hook_and_phone(hook: &Webhook, phone: &Webhook) -> String {
    let server = phone.url.trim_end_matches("/hook");
    format!(
        "[alerts]\n[[alerts.channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n[[alerts.channels]]\nname = \"phone\"\nkind = \"ntfy\"\nserver = \"{server}\"\ntopic = \"tether-studio\"\n",
        hook.url
    )
}

/// Webhook alerts that say a device code is waiting (without the code).
fn code_alerts(hook: &Webhook) -> usize {
    hook.bodies()
        .iter()
        .filter(|b| b.contains("\"code_waiting\":true"))
        .count()
}

/// Waits (5 s at most) until the webhook has had `n` code-waiting alerts.
async fn wait_code_alerts(hook: &Webhook, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while code_alerts(hook) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than {n} code alerts on the webhook: {:#?}",
            hook.bodies()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Bodies (of either receiver) that carry `code`.
fn alerts_with(hook: &Webhook, code: &str) -> usize {
    hook.bodies().iter().filter(|b| b.contains(code)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_that_expires_unused_is_replaced_and_the_new_code_reaches_the_phone_once() {
    // Found against a second authorization server: the replacement code was posted as a
    // revision of the open challenge, so no alert carried it and the owner's phone kept
    // the dead code. A restart while the new code is open must not send it again.
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions {
        device_code_ttl_secs: 12,
        ..Default::default()
    });
    let (hook, phone) = (Webhook::start(), Webhook::start());
    let base = oidc.issuer().as_str().trim_end_matches('/').to_string();
    let body = format!(
        "{}{}",
        oidc_credential(
            "github",
            &oidc,
            &format!("issuer = \"{base}\"\nreauth = \"device\"")
        ),
        hook_and_phone(&hook, &phone)
    );
    let a = TestAgent::start("", &body).await;
    a.bootstrap("github", &oidc).await;
    assert!(oidc.revoke_all().await >= 1);
    let _: tether::protocol::CredentialHealth =
        a.post_json("/v1/credentials/github/check", None).await;
    let (first, _) = wait_device_code(&a, "github", Duration::from_secs(5)).await;
    let drawn = |p: &tether::protocol::PostedChallenge| (p.since, p.revision);
    let first_drawn = drawn(&a.cred("github").await.challenge.expect("open"));
    phone.wait_for(&[&first], Duration::from_secs(5)).await;
    hook.wait_for(&["\"code_waiting\":true"], Duration::from_secs(5))
        .await;

    // Nobody types it: it expires, and the next code replaces it on every channel.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let second = loop {
        let (code, _) = wait_device_code(&a, "github", Duration::from_secs(5)).await;
        if code != first {
            break code;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expired code was never replaced"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let push = phone.wait_for(&[&second], Duration::from_secs(5)).await;
    assert!(push.contains("Tether's own sign-in for github"), "{push}");
    // The tray, `tether watch` and `tether challenge` redraw (and the desktop notifies)
    // on a new (since, revision): the new code must not look like the one it replaces.
    let second_drawn = drawn(&a.cred("github").await.challenge.expect("open"));
    assert_ne!(
        second_drawn, first_drawn,
        "the replacement looks like the old code"
    );
    // The webhook, which never carries a code, says a new one is waiting.
    wait_code_alerts(&hook, 2).await;
    assert_eq!(
        alerts_with(&phone, &first),
        1,
        "the first code went out once"
    );

    // A restart while the new code is open: shown again, not sent again.
    let a = a.restart().await;
    let (resumed, _) = wait_device_code(&a, "github", Duration::from_secs(5)).await;
    assert_eq!(
        resumed, second,
        "the restarted daemon resumes the open code"
    );
    // The resumed post has been made (the code is in health, the positive signal); its
    // alert would have been handed to the sender at that moment, which delivers on
    // loopback in milliseconds. The pause stays: nothing later on these channels says the
    // sender is done, and a second push must not come within it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        alerts_with(&phone, &second),
        1,
        "no second push for a code already sent: {:#?}",
        phone.bodies()
    );
    assert_eq!(code_alerts(&hook), 2, "{:#?}", hook.bodies());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sign_in_ended_a_new_device_reauth_sends_its_new_code() {
    // A sign-in that ended without tokens (declined, or its code expired: both post the
    // daemon's "start again" word through the same path) followed by a new
    // `device-reauth` from the tray: the new code replaces the word on every channel.
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions {
        device_code_ttl_secs: 6,
        ..Default::default()
    });
    let (hook, phone) = (Webhook::start(), Webhook::start());
    let base = oidc.issuer().as_str().trim_end_matches('/').to_string();
    let body = format!(
        "{}device_authorization_url = \"{base}/device/auth\"\n{}",
        oidc_credential("github", &oidc, ""),
        hook_and_phone(&hook, &phone)
    );
    let a = TestAgent::start("", &body).await;
    let _: tether::protocol::CredentialHealth = a
        .post_json("/v1/credentials/github/device-reauth", None)
        .await;
    let (first, _) = wait_device_code(&a, "github", Duration::from_secs(5)).await;
    phone.wait_for(&[&first], Duration::from_secs(5)).await;
    // Nobody types it; the sign-in ends and the owner is told to start again.
    hook.wait_for(&["start the device sign-in again"], Duration::from_secs(30))
        .await;
    // A new sign-in: its code is news on every channel.
    let _: tether::protocol::CredentialHealth = a
        .post_json("/v1/credentials/github/device-reauth", None)
        .await;
    let (second, _) = wait_device_code(&a, "github", Duration::from_secs(5)).await;
    assert_ne!(second, first);
    let push = phone.wait_for(&[&second], Duration::from_secs(5)).await;
    assert!(push.contains("Tether's own sign-in for github"), "{push}");
    // And the webhook says a new code is waiting (without it): two code alerts in all.
    wait_code_alerts(&hook, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_sign_in_with_pending_polls_and_a_slow_down_logs_nothing_failed_or_dead() {
    use super::restart::{free_port, spawn_logging};
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions {
        slow_down_at: 2,
        ..Default::default()
    });
    let base = oidc.issuer().as_str().trim_end_matches('/').to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut text = super::harness::config_head(dir.path(), "")
        .replace("127.0.0.1:0", &format!("127.0.0.1:{}", free_port()));
    text.push_str(&format!(
        "{}device_authorization_url = \"{base}/device/auth\"\n",
        oidc_credential("github", &oidc, "")
    ));
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, text).unwrap();
    let store = tether::agent::access::auth::AuthStore::open(&dir.path().join("state")).unwrap();
    let (_, device) = store
        .create_token(tether::agent::access::auth::Role::Device, "test")
        .unwrap();
    let device = device.secret().to_string();
    let d = spawn_logging(&config, "info");
    // The sign-in's log: everything from the request on. The start-up notes come first
    // (the last is the warning that no alert channel is configured, which talks about
    // "dead credentials"): wait for it, so it is not counted as part of the sign-in.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !d
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("no alert channels configured"))
    {
        assert!(tokio::time::Instant::now() < deadline, "no start-up notes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let from = d.log.lock().unwrap().len();
    let r = d
        .req(
            reqwest::Method::POST,
            "/v1/credentials/github/device-reauth",
            &device,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = match d.health(&device).await.credentials[0]
        .challenge
        .as_ref()
        .map(|p| p.challenge.clone())
    {
        Some(Challenge::DeviceCode {
            verification_uri_complete: Some(p),
            ..
        }) => p,
        other => panic!("no device code: {other:?}"),
    };
    // Two pending polls (the second answered slow_down), then the owner approves.
    let said = |needle: &str| d.log.lock().unwrap().iter().any(|l| l.contains(needle));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !said("polling every 10 s") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no slow_down seen: {:#?}",
            d.log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    phone_enters_code(&page).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !said("re-authorized by device code") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sign-in did not finish: {:#?}",
            d.log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = d.log.lock().unwrap()[from..].to_vec();
    println!("{}", log.join("\n"));
    // The credential's own state line ("unchecked -> dead (human_needed: ...)") is the
    // truth while the owner has a code to type; every other line must not alarm.
    let bad: Vec<&String> = log
        .iter()
        .filter(|l| !l.contains(" -> "))
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains("failed") || l.contains("dead")
        })
        .collect();
    assert!(bad.is_empty(), "lines that alarm for nothing: {bad:#?}");
    assert_eq!(
        log.iter().filter(|l| l.contains("polling every")).count(),
        1,
        "the interval is said once, when it changes"
    );
}
