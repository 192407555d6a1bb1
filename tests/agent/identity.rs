//! Identity pinning from more sources than the probe: the OpenID Connect id_token (real
//! oidc-provider, two users, no probe configured) and the Telegram bot a pasted token
//! belongs to (`getMe` on a small loopback stand-in for Telegram's API, which cannot run
//! here). Another identity is refused naming both, and nothing stored changes.

use super::harness::{oidc_credential, TestAgent};
use crate::oauth::canned::{Answer, Canned};
use crate::require;
use crate::util;
use crate::util::oidc::OidcProvider;
use reqwest::Method;

/// Re-authorizes `name` as `login` through the daemon's routes: completion status, body.
async fn reauth_as(
    a: &TestAgent,
    oidc: &OidcProvider,
    name: &str,
    login: &str,
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
    let r = a
        .req(
            Method::POST,
            &format!("/v1/reauth/{}/complete", start.session),
            Some(&a.device),
        )
        .json(&serde_json::json!({"code": q["code"], "state": q["state"], "redirect_uri": redirect_uri}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Re-authorizes `youtube` as `login`, which must be refused as another account with
/// nothing stored changed (the generation after `first`, the token `before`); returns the
/// refusal's message.
async fn refused_as(
    a: &TestAgent,
    oidc: &OidcProvider,
    login: &str,
    first: &serde_json::Value,
    before: &serde_json::Value,
) -> String {
    let (status, refused) = reauth_as(a, oidc, "youtube", login).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["code"], "wrong_account");
    assert_eq!(
        a.cred("youtube").await.generation,
        first["generation"].as_u64().unwrap(),
        "nothing stored changed"
    );
    assert_eq!(&a.access_token("youtube").await.1, before);
    refused["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn without_a_probe_the_id_token_names_the_account_and_another_one_is_refused() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let base = oidc.issuer().as_str().trim_end_matches('/').to_string();
    // No probe: the account can only come from the id_token of the exchange.
    let body = oidc_credential("youtube", &oidc, "")
        .replace(
            r#"scopes = ["openid", "offline_access"]"#,
            r#"scopes = ["openid", "offline_access", "email"]"#,
        )
        .replace(&format!("probe_url = \"{base}/token/introspection\"\n"), "")
        .replace("probe_method = \"introspection\"\n", "");
    assert!(!body.contains("probe"), "{body}");
    let a = TestAgent::start("", &body).await;
    let (status, first) = reauth_as(&a, &oidc, "youtube", "brand-channel").await;
    assert_eq!(status, 200, "{first}");
    // oidc-provider puts only `sub` in the id_token (the e-mail goes to userinfo).
    assert_eq!(first["account"], "brand-channel", "{first}");
    let (_, token_before) = a.access_token("youtube").await;

    let msg = refused_as(&a, &oidc, "alice", &first, &token_before).await;
    assert!(
        msg.contains("this is alice;") && msg.contains("belongs to brand-channel:"),
        "{msg}"
    );
}

#[tokio::test]
async fn two_accounts_with_the_same_display_name_are_told_apart_by_sub() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let base = oidc.issuer().as_str().trim_end_matches('/').to_string();
    // The userinfo probe names `name` (the label) and `sub` (the id); the twins share
    // the name "Twin".
    let body = oidc_credential("spotify", &oidc, "")
        .replace(
            r#"scopes = ["openid", "offline_access"]"#,
            r#"scopes = ["openid", "offline_access", "profile"]"#,
        )
        .replace(
            &format!(
                "probe_url = \"{base}/token/introspection\"\nprobe_method = \"introspection\"\n"
            ),
            &format!("probe_url = \"{base}/me\"\nprobe_method = \"user_info\"\n"),
        );
    assert!(body.contains("user_info"), "{body}");
    let a = TestAgent::start("", &body).await;
    let (status, first) = reauth_as(&a, &oidc, "spotify", "twin-a").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        first["account"], "Twin",
        "the label is what is shown: {first}"
    );
    let (_, token_before) = a.access_token("spotify").await;

    let (status, refused) = reauth_as(&a, &oidc, "spotify", "twin-b").await;
    assert_eq!(
        status, 409,
        "the same name is not the same account: {refused}"
    );
    assert_eq!(refused["code"], "wrong_account");
    let msg = refused["message"].as_str().unwrap();
    assert!(
        msg.contains("this is Twin (id twin-b);") && msg.contains("belongs to Twin (id twin-a):"),
        "{msg}"
    );
    assert_eq!(
        a.cred("spotify").await.generation,
        first["generation"].as_u64().unwrap(),
        "nothing stored changed"
    );
    assert_eq!(a.access_token("spotify").await.1, token_before);

    let (status, again) = reauth_as(&a, &oidc, "spotify", "twin-a").await;
    assert_eq!(status, 200, "the same account again is fine: {again}");
}

pub(crate) const BOT_A: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
pub(crate) const BOT_B: &str = "987654321:BBHdqTcvCH1vGWJxfSeofSAs0K5PALDsbw";

fn get_me(id: u64, username: &str) -> Answer {
    Answer::json(
        200,
        &serde_json::json!({"ok": true, "result": {"id": id, "is_bot": true,
            "first_name": username, "username": username}})
        .to_string(),
    )
}

/// A loopback stand-in for Telegram's API that knows [`BOT_A`] (@studio_bot) and
/// [`BOT_B`] (@other_bot), and a `telegram` credential that asks it; keep the stand-in.
pub(crate) fn two_bots() -> (Canned, String) {
    let telegram = Canned::start();
    telegram.route(
        &format!("/bot{BOT_A}/getMe"),
        get_me(123456789, "studio_bot"),
    );
    telegram.route(
        &format!("/bot{BOT_B}/getMe"),
        get_me(987654321, "other_bot"),
    );
    let body = format!(
        "[[credentials]]\nname = \"telegram\"\nprovider = \"telegram\"\n[credentials.overrides]\nprobe_url = \"{}\"\n",
        telegram.url("/")
    );
    (telegram, body)
}

#[tokio::test]
async fn a_pasted_token_of_another_telegram_bot_is_refused_naming_both_bots() {
    let (_telegram, body) = two_bots();
    let a = TestAgent::start("", &body).await;
    let put = |secret: &str, new_account: bool| {
        let mut b = serde_json::json!({ "secret": secret });
        if new_account {
            b["new_account"] = true.into();
        }
        a.req(
            Method::PUT,
            "/v1/credentials/telegram/secret",
            Some(&a.device),
        )
        .json(&b)
        .send()
    };
    let r = put(BOT_A, false).await.unwrap();
    assert_eq!(r.status(), 200);
    let first: serde_json::Value = r.json().await.unwrap();
    assert_eq!(first["account"], "@studio_bot (bot id 123456789)");

    let r = put(BOT_B, false).await.unwrap();
    assert_eq!(r.status(), 409);
    let refused: serde_json::Value = r.json().await.unwrap();
    assert_eq!(refused["code"], "wrong_account");
    let msg = refused["message"].as_str().unwrap();
    assert!(
        msg.contains("this is @other_bot (bot id 987654321)")
            && msg.contains("belongs to @studio_bot (bot id 123456789)"),
        "{msg}"
    );
    let (status, token) = a.access_token("telegram").await;
    assert_eq!(status, 200);
    assert_eq!(
        token["access_token"], BOT_A,
        "the stored token is untouched"
    );
    assert_eq!(
        a.cred("telegram").await.generation,
        first["generation"].as_u64().unwrap()
    );

    // The same bot's new token is fine, and the owner can replace the bot on purpose.
    let r = put(BOT_B, true).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(a.access_token("telegram").await.1["access_token"], BOT_B);
}

#[tokio::test]
async fn a_token_for_which_the_provider_names_no_account_is_refused_on_a_pinned_credential() {
    let (telegram, body) = two_bots();
    const NAMELESS: &str = "555555555:CCHdqTcvCH1vGWJxfSeofSAs0K5PALDscw";
    // Alive, but the answer names no bot: nothing says whose token this is.
    telegram.route(
        &format!("/bot{NAMELESS}/getMe"),
        Answer::json(200, r#"{"ok": true, "result": {"is_bot": true}}"#),
    );
    let a = TestAgent::start("", &body).await;
    let put = |secret: &str| {
        a.req(
            Method::PUT,
            "/v1/credentials/telegram/secret",
            Some(&a.device),
        )
        .json(&serde_json::json!({ "secret": secret }))
        .send()
    };
    let r = put(BOT_A).await.unwrap();
    assert_eq!(r.status(), 200);
    let first: serde_json::Value = r.json().await.unwrap();

    let r = put(NAMELESS).await.unwrap();
    assert_eq!(r.status(), 409, "an unnamed account does not pass the pin");
    let refused: serde_json::Value = r.json().await.unwrap();
    assert_eq!(refused["code"], "wrong_account");
    let msg = refused["message"].as_str().unwrap();
    assert!(
        msg.contains("did not name") && msg.contains("belongs to @studio_bot (bot id 123456789)"),
        "{msg}"
    );
    assert_eq!(a.access_token("telegram").await.1["access_token"], BOT_A);
    assert_eq!(
        a.cred("telegram").await.generation,
        first["generation"].as_u64().unwrap()
    );
}

/// A loopback stand-in for the YouTube Data API's `channels.list?mine=true`: it asks
/// oidc-provider's introspection endpoint whose token it was given, as Google's front end
/// would, and answers that user's channel ("alice's channel", id `UC-alice`).
async fn youtube_channels(oidc: &OidcProvider) -> String {
    use axum::http::{HeaderMap, StatusCode};
    let introspect = format!(
        "{}/token/introspection",
        oidc.issuer().as_str().trim_end_matches('/')
    );
    let client_id = oidc.client_id();
    let app = axum::Router::new().route(
        "/youtube/v3/channels",
        axum::routing::get(move |headers: HeaderMap| {
            let (introspect, client_id) = (introspect.clone(), client_id.clone());
            async move {
                let token = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or_default()
                    .to_owned();
                let said: serde_json::Value = reqwest::Client::new()
                    .post(&introspect)
                    .form(&[("token", token.as_str()), ("client_id", client_id.as_str())])
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                match said["sub"].as_str().filter(|_| said["active"] == true) {
                    Some(sub) => (
                        StatusCode::OK,
                        axum::Json(serde_json::json!({"kind": "youtube#channelListResponse",
                            "items": [{"kind": "youtube#channel", "id": format!("UC-{sub}"),
                                       "snippet": {"title": format!("{sub}'s channel")}}]})),
                    ),
                    None => (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(serde_json::json!({"error": {"code": 401}})),
                    ),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/youtube/v3/channels?part=snippet&mine=true")
}

#[tokio::test]
async fn a_youtube_grant_is_pinned_to_its_channel_and_another_channel_is_refused() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let channels = youtube_channels(&oidc).await;
    let body = oidc_credential("youtube", &oidc, "").replace(
        "[credentials.overrides]\n",
        &format!("[credentials.overrides]\nyoutube_channels_url = \"{channels}\"\n"),
    );
    let a = TestAgent::start("", &body).await;
    let (status, first) = reauth_as(&a, &oidc, "youtube", "brand-channel").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        first["account"], "brand-channel's channel (UC-brand-channel)",
        "the channel, not the Google account, is the identity: {first}"
    );
    let (_, token_before) = a.access_token("youtube").await;

    let msg = refused_as(&a, &oidc, "alice", &first, &token_before).await;
    assert!(
        msg.contains("this is alice's channel (UC-alice);")
            && msg.contains("belongs to brand-channel's channel (UC-brand-channel):")
            && msg.contains("--new-account"),
        "{msg}"
    );

    // The same channel again is fine.
    let (status, again) = reauth_as(&a, &oidc, "youtube", "brand-channel").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["account"],
        "brand-channel's channel (UC-brand-channel)"
    );
}
