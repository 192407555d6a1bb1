//! Authorization URLs per preset: state, PKCE challenge, scopes, the preset's parameters,
//! no redirect_uri until the listener side adds it; and user overrides of a preset.

use std::collections::HashMap;
use tether::oauth::{AuthorizationRequest, AuthorizationUrl, ClientCredentials};
use tether::protocol::ReauthKind;
use tether::protocol::RedirectPort;
use tether::provider::{preset, ClientAuth, PkceMode, ProviderOverrides};

fn query(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn client() -> ClientCredentials {
    ClientCredentials::public("my-client")
}

#[test]
fn google_url_has_offline_consent_pkce_and_no_redirect_uri() {
    let p = preset("google").unwrap();
    let (pending, url) = AuthorizationRequest::new(
        &p,
        &client(),
        &["https://www.googleapis.com/auth/youtube.upload".into()],
    )
    .unwrap();
    let q = query(url.url());
    assert!(url
        .as_str()
        .starts_with("https://accounts.google.com/o/oauth2/v2/auth?"));
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "my-client");
    assert_eq!(q["scope"], "https://www.googleapis.com/auth/youtube.upload");
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"], pending.verifier.s256_challenge());
    assert_eq!(q["state"], pending.state);
    assert!(!q.contains_key("redirect_uri"));

    // The listener side adds it, exactly once.
    let with = url.with_redirect_uri("http://127.0.0.1:5555/callback");
    assert_eq!(
        query(&with)["redirect_uri"],
        "http://127.0.0.1:5555/callback"
    );
    let again = AuthorizationUrl::parse(url.as_str()).unwrap();
    assert_eq!(again, url);
    assert!(
        AuthorizationUrl::parse(with.as_str()).is_err(),
        "a URL with a redirect_uri is refused"
    );
    assert!(AuthorizationUrl::parse("javascript:alert(1)").is_err());
}

#[test]
fn state_is_random_and_at_least_128_bits() {
    let p = preset("github").unwrap();
    let (a, _) = AuthorizationRequest::new(&p, &client(), &[]).unwrap();
    let (b, _) = AuthorizationRequest::new(&p, &client(), &[]).unwrap();
    assert_ne!(a.state, b.state);
    // URL-safe base64: 6 bits per character.
    assert!(a.state.len() * 6 >= 128, "{}", a.state.len());
    assert_ne!(a.verifier.secret(), b.verifier.secret());
    assert!(a.verifier.secret().len() >= 43);
}

#[test]
fn default_scopes_and_preset_parameters() {
    let (_, x) = AuthorizationRequest::new(&preset("x").unwrap(), &client(), &[]).unwrap();
    assert_eq!(
        query(x.url())["scope"],
        "tweet.read users.read offline.access"
    );
    let (_, d) = AuthorizationRequest::new(&preset("dropbox").unwrap(), &client(), &[]).unwrap();
    assert_eq!(query(d.url())["token_access_type"], "offline");
    let (_, m) = AuthorizationRequest::new(&preset("microsoft").unwrap(), &client(), &[]).unwrap();
    assert_eq!(query(m.url())["scope"], "offline_access User.Read");
}

#[test]
fn tiktok_uses_client_key_commas_and_a_hex_challenge() {
    let p = preset("tiktok").unwrap();
    let (pending, url) = AuthorizationRequest::new(
        &p,
        &client(),
        &["user.info.basic".into(), "video.upload".into()],
    )
    .unwrap();
    let q = query(url.url());
    assert_eq!(q["client_key"], "my-client");
    assert!(!q.contains_key("client_id"));
    assert_eq!(q["scope"], "user.info.basic,video.upload");
    use sha2::Digest;
    let hex = hex::encode(sha2::Sha256::digest(pending.verifier.secret().as_bytes()));
    assert_eq!(q["code_challenge"], hex);
}

#[test]
fn pkce_off_sends_no_challenge() {
    let mut p = preset("generic").unwrap();
    p.apply(&ProviderOverrides {
        auth_url: Some("https://id.example/authorize".into()),
        token_url: Some("https://id.example/token".into()),
        pkce: Some(PkceMode::None),
        ..Default::default()
    })
    .unwrap();
    let (_, url) = AuthorizationRequest::new(&p, &client(), &[]).unwrap();
    assert!(!query(url.url()).contains_key("code_challenge"));
}

#[test]
fn generic_without_endpoints_is_a_clear_error() {
    let p = preset("generic").unwrap();
    let err = p.validate().unwrap_err().to_string();
    assert!(err.contains("auth_url") && err.contains("issuer"), "{err}");
    let err = AuthorizationRequest::new(&p, &client(), &[]).unwrap_err();
    assert_eq!(err.info.code, "missing_endpoint");
}

#[test]
fn overrides_replace_every_field_they_set() {
    let mut p = preset("x").unwrap();
    let toml = r#"
        auth_url = "https://x.example/authorize"
        token_url = "https://x.example/token"
        scopes = ["users.read"]
        client_auth = "post"
        redirect_port = 9999
        redirect_path = "/cb"
        rotates_refresh_token = false
        refresh_token_lifetime_days = 30
        auth_params = { prompt = "consent" }
        probe_url = "https://x.example/me"
    "#;
    let o: ProviderOverrides = toml::from_str(toml).unwrap();
    p.apply(&o).unwrap();
    assert_eq!(
        p.auth_url.as_ref().unwrap().as_str(),
        "https://x.example/authorize"
    );
    assert_eq!(
        p.token_url.as_ref().unwrap().as_str(),
        "https://x.example/token"
    );
    assert_eq!(p.default_scopes, ["users.read"]);
    assert_eq!(p.client_auth, ClientAuth::Post);
    assert_eq!(p.redirect.port, RedirectPort::Fixed(9999));
    assert_eq!(p.requirement().path, "/cb");
    assert!(!p.rotates_refresh_token);
    assert_eq!(p.refresh_token_lifetime.unwrap().as_secs(), 30 * 24 * 3600);
    assert_eq!(p.auth_params, [("prompt".to_owned(), "consent".to_owned())]);
    assert_eq!(
        p.probe.as_ref().unwrap().url.as_str(),
        "https://x.example/me"
    );
    assert_eq!(p.reauth_kind(), ReauthKind::Oauth);
    assert_eq!(preset("telegram").unwrap().reauth_kind(), ReauthKind::Paste);

    for bad in [
        ProviderOverrides {
            token_url: Some("not a url".into()),
            ..Default::default()
        },
        ProviderOverrides {
            token_url: Some("file:///etc/passwd".into()),
            ..Default::default()
        },
        ProviderOverrides {
            redirect_path: Some("cb".into()),
            ..Default::default()
        },
    ] {
        let before = p.clone();
        let err = p.apply(&bad).unwrap_err().to_string();
        assert!(err.starts_with("provider x: bad `"), "{err}");
        assert_eq!(
            p.token_url, before.token_url,
            "a refused override leaves the URL alone"
        );
    }
    assert!(
        toml::from_str::<ProviderOverrides>("tokn_url = \"x\"").is_err(),
        "typos are refused"
    );
}
