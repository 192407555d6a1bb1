//! Each preset's probe against the provider's documented answers (live and revoked) served
//! on loopback, and paste-token verification.

use super::canned::{Answer, Canned};
use tether::oauth::{
    probe, probe_account, verify_paste, ClientCredentials, ErrorClass, ProbeOutcome,
};
use tether::provider::{preset, ProbeMethod, Provider, ProviderOverrides};
use tether::secret::AccessToken;

const TOKEN: &str = "live-access-token-0123456789";

/// The preset with its probe URL moved to the local server (same path and query).
fn pointed_at(name: &str, canned: &Canned) -> Provider {
    let mut p = preset(name).unwrap();
    let probe = p.probe.as_mut().expect("the preset declares a probe");
    let mut url = canned.url(probe.url.path());
    url.set_query(probe.url.query());
    if probe.method == ProbeMethod::TelegramGetMe {
        url = canned.url("/");
    }
    probe.url = url;
    p
}

/// Runs the preset's probe against `live`, then against `revoked`.
async fn check(
    name: &str,
    path: &str,
    live: Answer,
    revoked: Answer,
    account: Option<&str>,
    gone_code: &str,
) {
    let canned = Canned::start();
    let p = pointed_at(name, &canned);
    let http = tether::oauth::http_client();
    let client = ClientCredentials::public("id");
    let token = AccessToken::new(TOKEN);
    canned.route(path, live);
    let (outcome, label) = probe_account(&http, &p, &client, &token).await;
    assert_eq!(outcome, ProbeOutcome::Alive, "{name} live");
    assert_eq!(
        label.as_ref().map(|a| a.label.as_str()),
        account,
        "{name} account"
    );
    canned.route(path, revoked);
    match probe(&http, &p, &client, &token).await {
        ProbeOutcome::Gone(info) => assert_eq!(info.code, gone_code, "{name}"),
        other => panic!("{name} revoked: {other:?}"),
    }
    canned.route(path, Answer::json(503, "upstream unavailable"));
    assert!(
        matches!(
            probe(&http, &p, &client, &token).await,
            ProbeOutcome::Transient(_)
        ),
        "{name} 503"
    );
    canned.route(path, Answer::json(429, "{}").header("Retry-After", "30"));
    assert!(
        matches!(
            probe(&http, &p, &client, &token).await,
            ProbeOutcome::Transient(_)
        ),
        "{name} 429"
    );

    // Every request carried the token the way the provider expects.
    for s in canned.seen() {
        let in_header = s.header("authorization") == Some(format!("Bearer {TOKEN}").as_str());
        let in_url = s.url.contains(TOKEN);
        let in_form = s.form().get("access_token").map(String::as_str) == Some(TOKEN);
        assert!(
            in_header || in_url || in_form,
            "{name}: token not sent: {s:?}"
        );
    }
}

#[tokio::test]
async fn google_tokeninfo() {
    check(
        "google",
        "/tokeninfo",
        Answer::json(200, r#"{"azp":"1234.apps.googleusercontent.com","aud":"1234.apps.googleusercontent.com","sub":"110169484474386276334","scope":"openid https://www.googleapis.com/auth/userinfo.email","exp":"1767225600","expires_in":"3599","email":"owner@example.com","email_verified":"true","access_type":"offline"}"#),
        Answer::json(400, r#"{"error": "invalid_token", "error_description": "Invalid Value"}"#),
        Some("owner@example.com"),
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn google_tokeninfo_posts_the_token_in_a_form_body_never_in_the_url() {
    let canned = Canned::start();
    canned.route(
        "/tokeninfo",
        Answer::json(200, r#"{"email":"o@example.com"}"#),
    );
    let p = pointed_at("google", &canned);
    let outcome = probe(
        &tether::oauth::http_client(),
        &p,
        &ClientCredentials::public("id"),
        &AccessToken::new(TOKEN),
    )
    .await;
    assert_eq!(outcome, ProbeOutcome::Alive);
    let seen = canned.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert!(
        !seen[0].url.contains(TOKEN),
        "token in the url: {}",
        seen[0].url
    );
    assert_eq!(seen[0].form()["access_token"], TOKEN);
    assert_eq!(
        seen[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn github_user_for_oauth_tokens_and_pats() {
    let live = Answer::json(
        200,
        r#"{"login":"octocat","id":1,"node_id":"MDQ6VXNlcjE=","type":"User","name":"monalisa octocat"}"#,
    );
    let revoked = Answer::json(
        401,
        r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}"#,
    );
    check(
        "github",
        "/user",
        live.clone(),
        revoked.clone(),
        Some("octocat"),
        "http_401",
    )
    .await;
    check(
        "github-pat",
        "/user",
        live,
        revoked,
        Some("octocat"),
        "http_401",
    )
    .await;
}

#[tokio::test]
async fn x_users_me() {
    check(
        "x",
        "/2/users/me",
        Answer::json(
            200,
            r#"{"data":{"id":"2244994945","name":"X Dev","username":"XDevelopers"}}"#,
        ),
        Answer::json(
            401,
            r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#,
        ),
        Some("XDevelopers"),
        "http_401",
    )
    .await;
}

#[tokio::test]
async fn microsoft_graph_me() {
    check(
        "microsoft",
        "/v1.0/me",
        Answer::json(200, r#"{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users/$entity","displayName":"Adele Vance","mail":"AdeleV@contoso.com","userPrincipalName":"AdeleV@contoso.com","id":"87d349ed-44d7-43e1-9a83-5f2406dee5bd"}"#),
        Answer::json(401, r#"{"error":{"code":"InvalidAuthenticationToken","message":"Access token has expired or is not yet valid.","innerError":{"date":"2026-04-01T00:00:00","request-id":"1a2b3c4d","client-request-id":"1a2b3c4d"}}}"#)
            .header("WWW-Authenticate", r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#),
        Some("AdeleV@contoso.com"),
        "InvalidAuthenticationToken",
    )
    .await;
}

#[tokio::test]
async fn spotify_me() {
    check(
        "spotify",
        "/v1/me",
        Answer::json(200, r#"{"display_name":"JM Wizzler","id":"wizzler","type":"user","uri":"spotify:user:wizzler"}"#),
        Answer::json(401, r#"{"error":{"status":401,"message":"Invalid access token"}}"#),
        Some("JM Wizzler"),
        "http_401",
    )
    .await;
}

#[tokio::test]
async fn dropbox_get_current_account() {
    check(
        "dropbox",
        "/2/users/get_current_account",
        Answer::json(200, r#"{"account_id":"dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc","name":{"given_name":"Franz","surname":"Ferdinand","familiar_name":"Franz","display_name":"Franz Ferdinand (Personal)","abbreviated_name":"FF"},"email":"franz@dropbox.com","email_verified":true}"#),
        Answer::json(401, r#"{"error_summary": "invalid_access_token/...", "error": {".tag": "invalid_access_token"}}"#),
        Some("franz@dropbox.com"),
        "invalid_access_token",
    )
    .await;
    // The RPC call is a POST with a JSON null body.
    let canned = Canned::start();
    canned.route("/2/users/get_current_account", Answer::json(200, "{}"));
    let p = pointed_at("dropbox", &canned);
    probe(
        &tether::oauth::http_client(),
        &p,
        &ClientCredentials::public("id"),
        &AccessToken::new(TOKEN),
    )
    .await;
    let seen = canned.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].body.as_str()),
        ("POST", "null")
    );
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn slack_auth_test() {
    for code in ["invalid_auth", "token_revoked"] {
        check(
            "slack",
            "/api/auth.test",
            Answer::json(200, r#"{"ok":true,"url":"https://subarachnoid.slack.com/","team":"Subarachnoid Workspace","user":"grace","team_id":"T12345678","user_id":"W12345678"}"#),
            Answer::json(200, &format!(r#"{{"ok":false,"error":"{code}"}}"#)),
            Some("grace"),
            code,
        )
        .await;
    }
}

#[tokio::test]
async fn tiktok_user_info() {
    check(
        "tiktok",
        "/v2/user/info/",
        Answer::json(200, r#"{"data":{"user":{"open_id":"723f24d7-e717-40f8-a2b6-cb8464cd23b4","display_name":"Tik Toker"}},"error":{"code":"ok","message":"","log_id":"20220829194722CBE87ED59D524E727021"}}"#),
        Answer::json(401, r#"{"data":{},"error":{"code":"access_token_invalid","message":"The access token is invalid or not found in the request.","log_id":"20220829194722CBE87ED59D524E727021"}}"#),
        Some("Tik Toker"),
        "access_token_invalid",
    )
    .await;
}

/// A token shaped like a real Telegram bot token.
const BOT: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

#[tokio::test]
async fn telegram_get_me_and_paste_verification() {
    let path = format!("/bot{TOKEN}/getMe");
    let bot_path = format!("/bot{BOT}/getMe");
    check(
        "telegram",
        &path,
        Answer::json(200, r#"{"ok":true,"result":{"id":123456789,"is_bot":true,"first_name":"Studio Alerts","username":"studio_alerts_bot","can_join_groups":true}}"#),
        Answer::json(401, r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#),
        Some("@studio_alerts_bot (bot id 123456789)"),
        "http_401",
    )
    .await;

    let canned = Canned::start();
    let p = pointed_at("telegram", &canned);
    let http = tether::oauth::http_client();
    canned.route(
        &bot_path,
        Answer::json(
            200,
            r#"{"ok":true,"result":{"id":1,"is_bot":true,"first_name":"B","username":"b_bot"}}"#,
        ),
    );
    let account = verify_paste(&http, &p, &AccessToken::new(BOT))
        .await
        .unwrap();
    let account = account.unwrap();
    assert_eq!(
        (account.id.as_str(), account.label.as_str()),
        ("1", "@b_bot (bot id 1)")
    );
    canned.route(
        &bot_path,
        Answer::json(
            401,
            r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
        ),
    );
    let err = verify_paste(&http, &p, &AccessToken::new(BOT))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Dead);
    assert!(!err.to_string().contains(BOT), "{err}");
    let err = verify_paste(&http, &p, &AccessToken::new("has space"))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Misconfigured);
}

#[tokio::test]
async fn generic_takes_a_configured_probe() {
    let canned = Canned::start();
    let mut p = preset("generic").unwrap();
    let http = tether::oauth::http_client();
    let client = ClientCredentials::public("id");
    let token = AccessToken::new(TOKEN);
    assert_eq!(
        probe(&http, &p, &client, &token).await,
        ProbeOutcome::Unsupported
    );
    p.apply(&ProviderOverrides {
        probe_url: Some(canned.url("/me").to_string()),
        ..Default::default()
    })
    .unwrap();
    canned.route("/me", Answer::json(200, r#"{"sub":"u1"}"#));
    assert_eq!(probe(&http, &p, &client, &token).await, ProbeOutcome::Alive);
    canned.route(
        "/me",
        Answer::json(401, "").header(
            "WWW-Authenticate",
            r#"Bearer error="invalid_token", error_description="The access token expired""#,
        ),
    );
    match probe(&http, &p, &client, &token).await {
        ProbeOutcome::Gone(info) => assert_eq!(info.code, "invalid_token"),
        other => panic!("{other:?}"),
    }
    // A 403 is a permission problem, not a dead grant.
    canned.route(
        "/me",
        Answer::json(403, r#"{"error":"insufficient_scope"}"#),
    );
    assert!(matches!(
        probe(&http, &p, &client, &token).await,
        ProbeOutcome::Transient(_)
    ));
}

#[tokio::test]
async fn a_pasted_telegram_token_with_a_path_or_a_command_is_refused_before_any_request() {
    let canned = Canned::start();
    let p = pointed_at("telegram", &canned);
    let http = tether::oauth::http_client();
    // The real token works: a crafted one that smuggles it must not pass for it.
    canned.route(
        &format!("/bot{BOT}/getMe"),
        Answer::json(
            200,
            r#"{"ok":true,"result":{"id":1,"is_bot":true,"username":"b_bot"}}"#,
        ),
    );
    for hostile in [
        format!("{BOT}/getMe#$(touch /tmp/tether-pwned)"),
        format!("{BOT}/getMe?x=`id`"),
        format!("{BOT}/../bot{BOT}"),
        format!("{BOT}'; touch x; '"),
        "not-a-bot-token".to_string(),
    ] {
        let err = verify_paste(&http, &p, &AccessToken::new(hostile.as_str()))
            .await
            .unwrap_err();
        assert_eq!(err.class, ErrorClass::Misconfigured, "{hostile}");
        assert_eq!(err.info.code, "invalid_token_format", "{hostile}");
        assert!(err.to_string().contains("telegram bot token"), "{err}");
        assert!(!err.to_string().contains(BOT), "{err}");
    }
    assert!(
        canned.seen().is_empty(),
        "a request was made: {:?}",
        canned.seen()
    );
}

#[tokio::test]
async fn the_telegram_probe_keeps_the_whole_token_in_one_path_segment() {
    let canned = Canned::start();
    let p = pointed_at("telegram", &canned);
    canned.route(
        &format!("/bot{BOT}/getMe"),
        Answer::json(
            200,
            r#"{"ok":true,"result":{"id":1,"is_bot":true,"username":"b_bot"}}"#,
        ),
    );
    // Even a stored token that never passed the paste check cannot change the request.
    let crafted = AccessToken::new(format!("{BOT}/getMe#tail"));
    let outcome = probe(
        &tether::oauth::http_client(),
        &p,
        &ClientCredentials::public(""),
        &crafted,
    )
    .await;
    assert_ne!(
        outcome,
        ProbeOutcome::Alive,
        "the crafted token passed for the real one"
    );
    let seen = canned.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].url, format!("/bot{}%2FgetMe%23tail/getMe", BOT));
}

#[tokio::test]
async fn github_tokens_must_look_like_github_tokens() {
    let canned = Canned::start();
    let p = pointed_at("github-pat", &canned);
    let http = tether::oauth::http_client();
    canned.route("/user", Answer::json(200, r#"{"login":"octocat"}"#));
    for bad in [
        "ghp_abc/../x",
        "ghx_abcdef",
        "token with spaces",
        "ghp_$(id)",
    ] {
        let err = verify_paste(&http, &p, &AccessToken::new(bad))
            .await
            .unwrap_err();
        assert_eq!(err.info.code, "invalid_token_format", "{bad}");
    }
    assert!(canned.seen().is_empty());
    for good in [
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    ] {
        let account = verify_paste(&http, &p, &AccessToken::new(good))
            .await
            .unwrap();
        assert_eq!(account.map(|a| a.label).as_deref(), Some("octocat"));
    }
}

#[tokio::test]
async fn probe_errors_never_carry_the_token_or_the_client_secret_even_at_the_cut() {
    let canned = Canned::start();
    let mut p = preset("generic").unwrap();
    p.apply(&ProviderOverrides {
        probe_url: Some(canned.url("/introspect").to_string()),
        probe_method: Some(ProbeMethod::Introspection),
        ..Default::default()
    })
    .unwrap();
    let secret = "client-secret-0123456789abcdef";
    let client = ClientCredentials {
        client_id: "id".into(),
        client_secret: Some(tether::secret::ClientSecret::new(secret)),
    };
    let http = tether::oauth::http_client();
    let token = AccessToken::new(TOKEN);
    // A server that echoes what it was sent, in the code and across the 300-character cut
    // ("the probe endpoint answered HTTP 400 (bad <secret>: " is 74 characters, so the
    // token starts at 290).
    let pad = "x".repeat(216);
    canned.route(
        "/introspect",
        Answer::json(
            400,
            &format!(r#"{{"error":"bad {secret}","error_description":"{pad}{TOKEN} {secret}"}}"#),
        ),
    );
    let info = match probe(&http, &p, &client, &token).await {
        ProbeOutcome::Misconfigured(i) => i,
        other => panic!("{other:?}"),
    };
    let text = format!("{} {}", info.code, info.description);
    assert!(text.contains("[redacted]"), "{text}");
    for piece in [&TOKEN[..8], &secret[..8]] {
        assert!(!text.contains(piece), "{piece} in {text}");
    }
}
