//! The daemon refuses what a stolen device token could use to reach a shell: a pasted
//! "token" that is not one is refused before any request and never stored or rendered.

use super::harness::TestAgent;
use crate::oauth::canned::{Answer, Canned};
use reqwest::Method;
use tether::protocol::{CredentialHealth, CredentialState};

const BOT: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

#[tokio::test]
async fn a_crafted_telegram_paste_is_refused_before_any_request_and_nothing_is_rendered() {
    let canned = Canned::start();
    canned.route(
        &format!("/bot{BOT}/getMe"),
        Answer::json(
            200,
            r#"{"ok":true,"result":{"id":123456789,"is_bot":true,"username":"studio_bot"}}"#,
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("agent").join("telegram.env");
    let body = format!(
        "[[credentials]]\nname = \"telegram\"\nprovider = \"telegram\"\noutputs = [{{ path = \"{}\", format = \"env\", access_var = \"BOT_TOKEN\" }}]\n[credentials.overrides]\nprobe_url = \"{}\"\n",
        env.display(),
        canned.url("/")
    );
    let a = TestAgent::start_in(dir, "", &body, |_| {}).await;
    let mark = a.dir.path().join("ran");
    let put = |secret: String| {
        a.req(
            Method::PUT,
            "/v1/credentials/telegram/secret",
            Some(&a.device),
        )
        .json(&serde_json::json!({ "secret": secret }))
        .send()
    };
    for hostile in [
        format!("{BOT}/getMe#$(touch {})", mark.display()),
        format!("{BOT}/getMe?`touch {}`", mark.display()),
    ] {
        let r = put(hostile).await.unwrap();
        assert!(!r.status().is_success(), "{}", r.status());
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(
            v["message"]
                .as_str()
                .unwrap_or_default()
                .contains("telegram bot token"),
            "{v}"
        );
    }
    assert!(
        canned.seen().is_empty(),
        "asked the provider: {:?}",
        canned.seen()
    );
    assert_eq!(a.cred("telegram").await.generation, 0);
    assert!(!env.exists(), "an env file was rendered");
    assert!(!mark.exists());

    // The real token passes, is stored and rendered as is.
    let r = put(BOT.to_string()).await.unwrap();
    assert_eq!(r.status(), 200);
    let h: CredentialHealth = r.json().await.unwrap();
    assert_eq!((h.state, h.generation), (CredentialState::Ok, 1));
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        format!("BOT_TOKEN={BOT}\nTELEGRAM_REFRESH_TOKEN={BOT}\n")
    );
}
