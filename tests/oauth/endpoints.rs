//! The one endpoint rule (https; plain http only on loopback) for overrides, discovery
//! (the issuer and every endpoint it publishes) and probes, against metadata served on
//! loopback.

use super::canned::{Answer, Canned};
use tether::oauth::{probe, ClientCredentials, ProbeOutcome};
use tether::provider::{discover, preset, DiscoveryError, ProviderError, ProviderOverrides};
use tether::secret::AccessToken;
use url::Url;

#[test]
fn overrides_take_https_and_loopback_http_only() {
    for (field, o) in [
        (
            "token_url",
            ProviderOverrides {
                token_url: Some("http://id.example/token".into()),
                ..Default::default()
            },
        ),
        (
            "auth_url",
            ProviderOverrides {
                auth_url: Some("http://10.0.0.1/auth".into()),
                ..Default::default()
            },
        ),
        (
            "revoke_url",
            ProviderOverrides {
                revoke_url: Some("ftp://id.example/revoke".into()),
                ..Default::default()
            },
        ),
        (
            "probe_url",
            ProviderOverrides {
                probe_url: Some("http://localhost.evil.example/me".into()),
                ..Default::default()
            },
        ),
    ] {
        let mut p = preset("generic").unwrap();
        let before = p.clone();
        let err = p.apply(&o).unwrap_err();
        assert!(
            matches!(&err, ProviderError::InvalidOverride { field: f, .. } if *f == field),
            "{err}"
        );
        assert!(err.to_string().contains("https"), "{err}");
        assert_eq!(p, before, "a refused override changes nothing");
    }
    let mut p = preset("generic").unwrap();
    p.apply(&ProviderOverrides {
        auth_url: Some("http://127.0.0.1:9000/auth".into()),
        token_url: Some("http://[::1]:9000/token".into()),
        revoke_url: Some("https://id.example/revoke".into()),
        probe_url: Some("http://localhost:9000/me".into()),
        ..Default::default()
    })
    .unwrap();
    p.validate().unwrap();
}

#[test]
fn validate_holds_every_url_to_the_rule() {
    let mut p = preset("google").unwrap();
    p.token_url = Some(Url::parse("http://oauth2.googleapis.com/token").unwrap());
    let err = p.validate().unwrap_err();
    assert!(
        matches!(
            &err,
            ProviderError::InsecureEndpoint {
                field: "token_url",
                ..
            }
        ),
        "{err}"
    );
    let mut p = preset("google").unwrap();
    p.probe.as_mut().unwrap().url = Url::parse("http://oauth2.googleapis.com/tokeninfo").unwrap();
    assert!(p.validate().is_err());
}

fn metadata(issuer: &str, token_endpoint: &str, extra: &str) -> String {
    format!(
        r#"{{"issuer":"{issuer}","authorization_endpoint":"{issuer}/auth","token_endpoint":"{token_endpoint}"{extra}}}"#
    )
}

#[tokio::test]
async fn discovery_refuses_plain_http_endpoints_off_loopback() {
    let canned = Canned::start();
    let issuer = canned.url("/").as_str().trim_end_matches('/').to_owned();
    let http = tether::oauth::http_client();
    let cases = [
        (
            "token_endpoint",
            metadata(&issuer, "http://id.example/token", ""),
        ),
        (
            "userinfo_endpoint",
            metadata(
                &issuer,
                &format!("{issuer}/token"),
                r#","userinfo_endpoint":"http://id.example/me""#,
            ),
        ),
        (
            "revocation_endpoint",
            metadata(
                &issuer,
                &format!("{issuer}/token"),
                r#","revocation_endpoint":"http://id.example/revoke""#,
            ),
        ),
        (
            "introspection_endpoint",
            metadata(
                &issuer,
                &format!("{issuer}/token"),
                r#","introspection_endpoint":"http://id.example/introspect""#,
            ),
        ),
    ];
    for (field, doc) in cases {
        canned.route("/.well-known/openid-configuration", Answer::json(200, &doc));
        let err = discover(&http, &Url::parse(&issuer).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, DiscoveryError::Invalid { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(field) && msg.contains("https"), "{msg}");
    }
    // The loopback test provider's own http endpoints stay allowed.
    canned.route(
        "/.well-known/openid-configuration",
        Answer::json(200, &metadata(&issuer, &format!("{issuer}/token"), "")),
    );
    let p = discover(&http, &Url::parse(&issuer).unwrap())
        .await
        .unwrap();
    assert_eq!(p.token_url.unwrap().as_str(), format!("{issuer}/token"));
}

#[tokio::test]
async fn an_http_issuer_off_loopback_is_refused_before_any_request() {
    // 0.0.0.0 is not loopback by the rule, yet a connection to it reaches this machine:
    // the canned server would answer if discovery asked.
    let canned = Canned::start();
    let port = canned.url("/").port().unwrap();
    let issuer = format!("http://0.0.0.0:{port}");
    canned.route(
        "/.well-known/openid-configuration",
        Answer::json(200, &metadata(&issuer, &format!("{issuer}/token"), "")),
    );
    let err = discover(&tether::oauth::http_client(), &Url::parse(&issuer).unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("issuer"), "{err}");
    assert!(
        canned.seen().is_empty(),
        "discovery asked {:?}",
        canned.seen()
    );
}

#[tokio::test]
async fn a_probe_whose_url_breaks_the_rule_sends_nothing() {
    let canned = Canned::start();
    let port = canned.url("/").port().unwrap();
    canned.route("/me", Answer::json(200, r#"{"sub":"u"}"#));
    let mut p = preset("generic").unwrap();
    p.apply(&ProviderOverrides {
        probe_url: Some(canned.url("/me").to_string()),
        ..Default::default()
    })
    .unwrap();
    // Set behind the overrides' back (as a stale config could): the probe still refuses.
    p.probe.as_mut().unwrap().url = Url::parse(&format!("http://0.0.0.0:{port}/me")).unwrap();
    let outcome = probe(
        &tether::oauth::http_client(),
        &p,
        &ClientCredentials::public("id"),
        &AccessToken::new("access-token-0123456789"),
    )
    .await;
    assert!(
        matches!(outcome, ProbeOutcome::Misconfigured(_)),
        "{outcome:?}"
    );
    assert!(canned.seen().is_empty());
}
