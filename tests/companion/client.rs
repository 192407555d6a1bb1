//! The agent client against the real daemon's TLS (pinning, CA validation) and against a
//! loopback stub for the version classification.

use super::support::Daemon;
use tether::companion::client::{
    AgentClient, AgentEndpoint, ClientError, ContactClass, UpgradeSide,
};
use tether::companion::pair::PairOptions;
use tether::companion::secrets::Backend;
use tether::companion::Companion;
use tether::pin::Fingerprint;
use tether::protocol::PairingCode;
use tether::secret::ApiToken;

fn endpoint(url: &str, fingerprint: Option<Fingerprint>) -> AgentEndpoint {
    AgentEndpoint {
        name: "studio".into(),
        url: url.into(),
        fingerprint,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pinned_certificate_and_only_it_is_accepted() {
    let daemon = Daemon::start("").await;
    let home = tempfile::tempdir().unwrap();
    let companion = Companion::open(home.path(), Backend::File);
    let code = daemon.pairing_code();
    let fp = PairingCode::parse(&code)
        .unwrap()
        .fingerprint
        .expect("self-signed daemon pins");
    companion
        .pair(&code, &PairOptions::default(), &mut |_| false)
        .await
        .unwrap();
    let token = companion.secrets().load("studio").unwrap();

    let good = AgentClient::new(
        &endpoint(&daemon.url, Some(fp.clone())),
        Some(token.clone()),
    )
    .unwrap();
    assert_eq!(good.health().await.unwrap().agent, "studio");

    // Same server, another pin: refused during the handshake, naming both fingerprints.
    let hex = fp.to_hex();
    let other = format!(
        "{}{}",
        if hex.starts_with('0') { "1" } else { "0" },
        &hex[1..]
    );
    let bad = AgentClient::new(
        &endpoint(&daemon.url, Some(Fingerprint::parse(&other).unwrap())),
        Some(token.clone()),
    )
    .unwrap();
    match bad.health().await {
        Err(ClientError::CertificateMismatch { expected, got, .. }) => {
            assert_eq!(expected, other);
            assert_eq!(got, hex);
        }
        r => panic!("expected a certificate mismatch, got {r:?}"),
    }

    // No pin: normal CA validation, which a self-signed certificate does not pass.
    let unpinned = AgentClient::new(&endpoint(&daemon.url, None), Some(token)).unwrap();
    let err = unpinned.health().await.unwrap_err();
    assert_eq!(err.class(), ContactClass::Unreachable, "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // A wrong device token is "unauthorized", with the way back.
    let stranger = AgentClient::new(
        &endpoint(&daemon.url, Some(fp)),
        Some(ApiToken::new("nope")),
    )
    .unwrap();
    let err = stranger.health().await.unwrap_err();
    assert_eq!(err.class(), ContactClass::Unauthorized);
    assert!(err.to_string().contains("tether pair CODE"), "{err}");
}

/// Serves one canned reply per request on a loopback port (plain HTTP, allowed on loopback).
fn stub(status: u16, body: &'static str) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let resp = tiny_http::Response::from_string(body).with_status_code(status);
            let _ = req.respond(resp);
        }
    });
    url
}

#[tokio::test]
async fn protocol_versions_are_classified_with_the_side_to_upgrade() {
    let newer = stub(
        200,
        r#"{"agent":"studio","version":"9.0.0","protocol":2,"credentials":[]}"#,
    );
    let c = AgentClient::new(&endpoint(&newer, None), Some(ApiToken::new("t"))).unwrap();
    match c.health().await {
        Err(
            e @ ClientError::ProtocolMismatch {
                theirs: 2,
                upgrade: UpgradeSide::Companion,
                ..
            },
        ) => {
            assert_eq!(e.class(), ContactClass::ProtocolMismatch);
            assert!(
                e.to_string().contains("upgrade tether on this computer"),
                "{e}"
            );
        }
        r => panic!("expected a mismatch, got {r:?}"),
    }
    // A reply of another shape that still carries the protocol number.
    let reshaped = stub(200, r#"{"protocol":2,"agents":{}}"#);
    let c = AgentClient::new(&endpoint(&reshaped, None), Some(ApiToken::new("t"))).unwrap();
    assert!(matches!(
        c.health().await,
        Err(ClientError::ProtocolMismatch { theirs: 2, .. })
    ));
    // No /v1 at all: an older daemon (or not a tether agent).
    let older = stub(404, "not here");
    let c = AgentClient::new(&endpoint(&older, None), Some(ApiToken::new("t"))).unwrap();
    let err = c.health().await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::ProtocolMismatch {
                upgrade: UpgradeSide::Agent,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("upgrade tether on the agent"),
        "{err}"
    );
    // Nobody listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let c = AgentClient::new(&endpoint(&closed, None), Some(ApiToken::new("t"))).unwrap();
    let err = c.health().await.unwrap_err();
    assert_eq!(err.class(), ContactClass::Unreachable);
    assert!(
        err.to_string()
            .starts_with("agent studio at http://127.0.0.1:"),
        "{err}"
    );
}
