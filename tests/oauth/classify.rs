//! Token-endpoint failures classified per provider, from the providers' documented answers
//! served on loopback (each preset's token URL pointed at the local server), plus the
//! request each preset sends (client authentication, parameters, headers).

use super::canned::{Answer, Canned};
use std::time::Duration;
use tether::oauth::{exchange, refresh, AuthorizationRequest, ClientCredentials, ErrorClass};
use tether::provider::{preset, Classifier, Provider, ProviderOverrides};
use tether::secret::{AuthorizationCode, ClientSecret, RefreshToken};

const RT: &str = "rt-0123456789-secret-refresh-token";

fn pointed_at(name: &str, canned: &Canned) -> Provider {
    let mut p = preset(name).unwrap();
    p.apply(&ProviderOverrides {
        token_url: Some(canned.url("/token").to_string()),
        auth_url: Some(canned.url("/authorize").to_string()),
        ..Default::default()
    })
    .unwrap();
    p
}

fn client() -> ClientCredentials {
    ClientCredentials::confidential("client-id", ClientSecret::new("client-secret-value"))
}

/// Refreshes against `answer` and returns the error's class and code.
async fn refresh_fails(name: &str, answer: Answer) -> (ErrorClass, String, String) {
    let canned = Canned::start();
    canned.route("/token", answer);
    let p = pointed_at(name, &canned);
    let err = refresh(
        &tether::oauth::http_client(),
        &p,
        &client(),
        &RefreshToken::new(RT),
    )
    .await
    .unwrap_err();
    assert_eq!(err.provider, p.name);
    (err.class, err.info.code, err.info.description)
}

async fn dead(name: &str, answer: Answer, code: &str) {
    let (class, c, d) = refresh_fails(name, answer).await;
    assert_eq!(class, ErrorClass::Dead, "{name}: {c} {d}");
    assert_eq!(c, code, "{name}");
}

async fn misconfigured(name: &str, answer: Answer, code: &str) {
    let (class, c, d) = refresh_fails(name, answer).await;
    assert_eq!(class, ErrorClass::Misconfigured, "{name}: {c} {d}");
    assert_eq!(c, code, "{name}");
}

#[tokio::test]
async fn google_revoked_and_rapt() {
    // developers.google.com/identity/protocols/oauth2 ("Refresh token expiration")
    dead(
        "google",
        Answer::json(400, r#"{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}"#),
        "invalid_grant",
    )
    .await;
    // Google Workspace session control: re-authentication required.
    let (class, code, d) = refresh_fails(
        "google",
        Answer::json(400, r#"{"error": "invalid_grant", "error_description": "reauth related error (invalid_rapt)", "error_uri": "https://support.google.com/a/answer/9368756", "error_subtype": "invalid_rapt"}"#),
    )
    .await;
    assert_eq!((class, code.as_str()), (ErrorClass::Dead, "invalid_grant"));
    assert!(d.contains("invalid_rapt"), "the subtype stays visible: {d}");
    // Named as the policy it is, with who can stop it recurring.
    assert!(
        d.contains("re-authentication policy") && d.contains("Workspace admin"),
        "{d}"
    );
    misconfigured(
        "google",
        Answer::json(
            401,
            r#"{"error": "invalid_client", "error_description": "Unauthorized"}"#,
        ),
        "invalid_client",
    )
    .await;
}

#[tokio::test]
async fn x_invalid_request_token_was_invalid_is_dead() {
    dead(
        "x",
        Answer::json(400, r#"{"error":"invalid_request","error_description":"Value passed for the token was invalid."}"#),
        "invalid_request",
    )
    .await;
    // Any other invalid_request is a request problem, not a dead grant.
    misconfigured(
        "x",
        Answer::json(400, r#"{"error":"invalid_request","error_description":"Missing required parameter [grant_type]."}"#),
        "invalid_request",
    )
    .await;
    misconfigured(
        "x",
        Answer::json(401, r#"{"error":"unauthorized_client","error_description":"Missing valid authorization header"}"#),
        "unauthorized_client",
    )
    .await;
}

#[tokio::test]
async fn github_errors_with_http_200() {
    dead(
        "github-app",
        Answer::json(200, r#"{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired.","error_uri":"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"}"#),
        "bad_refresh_token",
    )
    .await;
    misconfigured(
        "github",
        Answer::json(200, r#"{"error":"incorrect_client_credentials","error_description":"The client_id and/or client_secret passed are incorrect.","error_uri":"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#incorrect-client-credentials"}"#),
        "incorrect_client_credentials",
    )
    .await;

    // bad_verification_code on an exchange.
    let canned = Canned::start();
    canned.route(
        "/token",
        Answer::json(200, r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired.","error_uri":"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"}"#),
    );
    let p = pointed_at("github", &canned);
    let (pending, _) = AuthorizationRequest::new(&p, &client(), &[]).unwrap();
    let err = exchange(
        &tether::oauth::http_client(),
        &p,
        &client(),
        AuthorizationCode::new("code-value"),
        pending.verifier,
        "http://127.0.0.1:1234/callback",
    )
    .await
    .unwrap_err();
    assert_eq!(err.class, ErrorClass::Dead);
    assert_eq!(err.info.code, "bad_verification_code");
}

#[tokio::test]
async fn slack_ok_false() {
    for code in ["invalid_refresh_token", "token_revoked", "token_expired"] {
        dead(
            "slack",
            Answer::json(200, &format!(r#"{{"ok":false,"error":"{code}"}}"#)),
            code,
        )
        .await;
    }
    misconfigured(
        "slack",
        Answer::json(200, r#"{"ok":false,"error":"bad_client_secret"}"#),
        "bad_client_secret",
    )
    .await;
    let (class, ..) = refresh_fails(
        "slack",
        Answer::json(200, r#"{"ok":false,"error":"ratelimited"}"#),
    )
    .await;
    assert!(matches!(class, ErrorClass::Transient { .. }));
}

#[tokio::test]
async fn twitch_status_message_body() {
    // dev.twitch.tv/docs/authentication/refresh-tokens: a revoked or bad refresh token.
    let canned = Canned::start();
    canned.route(
        "/token",
        Answer::json(400, r#"{"status":400,"message":"Invalid refresh token"}"#),
    );
    let mut p = pointed_at("generic", &canned);
    p.apply(&ProviderOverrides {
        classifier: Some(Classifier::Twitch),
        ..Default::default()
    })
    .unwrap();
    let err = refresh(
        &tether::oauth::http_client(),
        &p,
        &client(),
        &RefreshToken::new(RT),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class, ErrorClass::Dead, "{err}");
    assert_eq!(err.info.description, "Invalid refresh token");
}

#[tokio::test]
async fn microsoft_aadsts_codes() {
    dead(
        "microsoft",
        Answer::json(400, r#"{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2026-01-01T00:00:00.0000000Z and was inactive for 90.00:00:00.\r\nTrace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333\r\nCorrelation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: 2026-04-01 00:00:00Z","error_codes":[700082],"timestamp":"2026-04-01 00:00:00Z","trace_id":"0000aaaa-11bb-cccc-dd22-eeeeee333333","correlation_id":"aaaa0000-bb11-2222-33cc-444444dddddd"}"#),
        "invalid_grant",
    )
    .await;
    misconfigured(
        "microsoft",
        Answer::json(401, r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '00001111-aaaa-2222-bbbb-3333cccc4444'.","error_codes":[7000215]}"#),
        "invalid_client",
    )
    .await;
    // A redirect URI mismatch is reported as invalid_request with AADSTS50011.
    misconfigured(
        "microsoft",
        Answer::json(400, r#"{"error":"invalid_request","error_description":"AADSTS50011: The redirect URI 'http://localhost:5000/callback' specified in the request does not match the redirect URIs configured for the application.","error_codes":[50011]}"#),
        "invalid_request",
    )
    .await;
    // AADSTS50173: the grant was revoked (password change) — even when the code number is
    // only in error_codes.
    dead(
        "microsoft",
        Answer::json(400, r#"{"error":"invalid_grant","error_description":"The provided grant has expired due to it being revoked.","error_codes":[50173]}"#),
        "invalid_grant",
    )
    .await;
    // Named as the policy that ended it: a password change, not a revocation by the user.
    let (_, _, d) = refresh_fails(
        "microsoft",
        Answer::json(400, r#"{"error":"invalid_grant","error_description":"The provided grant has expired due to it being revoked.","error_codes":[50173]}"#),
    )
    .await;
    assert!(d.contains("password was changed or reset"), "{d}");
    let (_, _, d) = refresh_fails(
        "microsoft",
        Answer::json(400, r#"{"error":"invalid_grant","error_description":"AADSTS70043: The refresh token has expired or is invalid due to sign-in frequency checks by conditional access.","error_codes":[70043]}"#),
    )
    .await;
    assert!(d.contains("sign-in frequency policy"), "{d}");
}

#[tokio::test]
async fn tiktok_spotify_dropbox_invalid_grant() {
    dead("tiktok", Answer::json(400, r#"{"error":"invalid_grant","error_description":"Refresh token is invalid or expired.","log_id":"202206221854370101130062072500FFA2"}"#), "invalid_grant").await;
    dead(
        "spotify",
        Answer::json(
            400,
            r#"{"error":"invalid_grant","error_description":"Refresh token revoked"}"#,
        ),
        "invalid_grant",
    )
    .await;
    dead("dropbox", Answer::json(400, r#"{"error":"invalid_grant","error_description":"refresh token is invalid or revoked"}"#), "invalid_grant").await;
    misconfigured(
        "spotify",
        Answer::json(
            400,
            r#"{"error":"invalid_client","error_description":"Invalid client secret"}"#,
        ),
        "invalid_client",
    )
    .await;
    misconfigured(
        "generic",
        Answer::json(400, r#"{"error":"invalid_scope"}"#),
        "invalid_scope",
    )
    .await;
}

#[tokio::test]
async fn transient_failures() {
    let canned = Canned::start();
    let p = pointed_at("google", &canned);
    let http = tether::oauth::http_client();
    let rt = RefreshToken::new(RT);
    let cases = [
        (
            Answer::json(503, "<html>down</html>").header("Retry-After", "120"),
            Some(120),
        ),
        (
            Answer::json(429, r#"{"error":"rate_limit_exceeded"}"#).header("Retry-After", "7"),
            Some(7),
        ),
        (Answer::json(500, r#"{"error":"server_error"}"#), None),
        (Answer::json(200, "<html>captive portal</html>"), None),
        (Answer::json(200, r#"{"token_type":"Bearer"}"#), None),
        (
            Answer::json(400, r#"{"error":"temporarily_unavailable"}"#),
            None,
        ),
    ];
    for (answer, retry) in cases {
        canned.route("/token", answer.clone());
        let err = refresh(&http, &p, &client(), &rt).await.unwrap_err();
        assert_eq!(
            err.class,
            ErrorClass::Transient {
                retry_after: retry.map(Duration::from_secs)
            },
            "{answer:?}: {err}"
        );
    }

    // Connection refused: nothing listens on the port any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut gone = p.clone();
    gone.token_url = Some(format!("http://127.0.0.1:{port}/token").parse().unwrap());
    let err = refresh(&http, &gone, &client(), &rt).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.info.code, "connect_failed");
    assert!(
        !err.info.description.contains(&port.to_string()),
        "no URL in the text: {err}"
    );

    // A server that accepts and never answers: the client's timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut hang = p.clone();
    hang.token_url = Some(
        format!("http://{}/token", silent.local_addr().unwrap())
            .parse()
            .unwrap(),
    );
    let quick = tether::oauth::http_client_with_timeouts(
        Duration::from_secs(2),
        Duration::from_millis(300),
    );
    let err = refresh(&quick, &hang, &client(), &rt).await.unwrap_err();
    assert_eq!(err.info.code, "timeout", "{err}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let canned = Canned::start();
    canned.route(
        "/token",
        Answer::json(302, "").header("Location", canned.url("/elsewhere").as_str()),
    );
    canned.route(
        "/elsewhere",
        Answer::json(200, r#"{"access_token":"stolen"}"#),
    );
    let p = pointed_at("generic", &canned);
    let err = refresh(
        &tether::oauth::http_client(),
        &p,
        &client(),
        &RefreshToken::new(RT),
    )
    .await
    .unwrap_err();
    assert!(err.is_transient(), "{err}");
    let seen = canned.seen();
    assert_eq!(seen.len(), 1, "only the token endpoint was asked: {seen:?}");
}

#[tokio::test]
async fn rotated_and_kept_refresh_tokens() {
    let canned = Canned::start();
    let p = pointed_at("x", &canned);
    let http = tether::oauth::http_client();
    let old = RefreshToken::new(RT);

    canned.route("/token", Answer::json(200, r#"{"token_type":"bearer","expires_in":7200,"access_token":"at-1","scope":"tweet.read users.read offline.access","refresh_token":"rt-new"}"#));
    let set = refresh(&http, &p, &client(), &old).await.unwrap();
    assert!(set.rotated);
    assert_eq!(set.refresh_token.unwrap().secret(), "rt-new");
    assert_eq!(set.scopes, ["tweet.read", "users.read", "offline.access"]);

    canned.route(
        "/token",
        Answer::json(200, r#"{"access_token":"at-2","expires_in":"3600"}"#),
    );
    let set = refresh(&http, &p, &client(), &old).await.unwrap();
    assert!(!set.rotated);
    assert_eq!(
        set.refresh_token.unwrap().secret(),
        RT,
        "the old token is kept"
    );
    assert!(set.expires_at.is_some(), "string expires_in is read");

    // GitHub App: refresh_token_expires_in gives the refresh token's end.
    canned.route("/token", Answer::json(200, r#"{"access_token":"ghu_x","expires_in":28800,"refresh_token":"ghr_y","refresh_token_expires_in":15811200,"scope":"","token_type":"bearer"}"#));
    let set = refresh(&http, &pointed_at("github-app", &canned), &client(), &old)
        .await
        .unwrap();
    let left = set.refresh_expires_at.unwrap() - chrono::Utc::now();
    assert!((left.num_days() - 183).abs() <= 1, "{left}");

    // Slack user tokens arrive under authed_user.
    canned.route("/token", Answer::json(200, r#"{"ok":true,"app_id":"A0KRD7HC3","authed_user":{"id":"U1234","scope":"users:read","access_token":"xoxp-1","token_type":"user","refresh_token":"xoxe-1-r","expires_in":43200},"team":{"id":"T9TK3CUKW","name":"Slack Softball Team"}}"#));
    let set = refresh(&http, &pointed_at("slack", &canned), &client(), &old)
        .await
        .unwrap();
    assert_eq!(set.access_token.secret(), "xoxp-1");
    assert_eq!(set.refresh_token.unwrap().secret(), "xoxe-1-r");
}

#[tokio::test]
async fn each_preset_authenticates_the_way_it_documents() {
    let canned = Canned::start();
    canned.route(
        "/token",
        Answer::json(200, r#"{"access_token":"at","token_type":"Bearer"}"#),
    );
    let http = tether::oauth::http_client();
    let rt = RefreshToken::new(RT);

    // X confidential client: HTTP Basic, no secret in the body.
    refresh(&http, &pointed_at("x", &canned), &client(), &rt)
        .await
        .unwrap();
    // Google: secret in the body.
    refresh(&http, &pointed_at("google", &canned), &client(), &rt)
        .await
        .unwrap();
    // TikTok: client_key instead of client_id.
    refresh(&http, &pointed_at("tiktok", &canned), &client(), &rt)
        .await
        .unwrap();
    // Public client: only the id.
    refresh(
        &http,
        &pointed_at("spotify", &canned),
        &ClientCredentials::public("pub"),
        &rt,
    )
    .await
    .unwrap();

    let seen = canned.seen();
    assert_eq!(seen.len(), 4);
    for s in &seen {
        assert_eq!(s.method, "POST");
        assert_eq!(s.header("accept"), Some("application/json"));
        assert_eq!(s.form()["grant_type"], "refresh_token");
        assert_eq!(s.form()["refresh_token"], RT);
    }
    let (x, google, tiktok, spotify) = (&seen[0], &seen[1], &seen[2], &seen[3]);
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("client-id:client-secret-value");
    assert_eq!(
        x.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert!(!x.form().contains_key("client_secret"));
    assert_eq!(google.form()["client_id"], "client-id");
    assert_eq!(google.form()["client_secret"], "client-secret-value");
    assert!(google.header("authorization").is_none());
    assert_eq!(tiktok.form()["client_key"], "client-id");
    assert!(!tiktok.form().contains_key("client_id"));
    assert_eq!(spotify.form()["client_id"], "pub");
    assert!(!spotify.form().contains_key("client_secret"));
}
