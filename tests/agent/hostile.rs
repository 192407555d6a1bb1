//! The API's edges under hostile or broken clients: pairing requests are checked whole
//! before the code is spent, POST bodies must be JSON, and bodies and headers that never
//! finish arriving are cut off at the request deadline.

use super::harness::TestAgent;
use reqwest::Method;
use std::sync::Arc;
use std::time::Duration;
use tether::agent::access::auth::{AuthStore, PAIRING_TTL};
use tether::protocol::PairResponse;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a test waits for the daemon to cut a stalled request off (the daemon's own
/// deadline is set far below it).
const CUT_OFF_WITHIN: Duration = Duration::from_secs(20);

async fn pair_status(a: &TestAgent, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = a
        .req(Method::POST, "/v1/pair", None)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_pairing_request_with_a_bad_name_leaves_the_code_usable() {
    let a = TestAgent::start("", "").await;
    let store = AuthStore::open(&a.dir.path().join("state")).unwrap();
    let (secret, _) = store.create_pairing(PAIRING_TTL).unwrap();
    for bad in ["", "   ", "line\nbreak", &"x".repeat(101)] {
        let (status, body) = pair_status(
            &a,
            serde_json::json!({"secret": secret.secret(), "device_name": bad}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("device name"),
            "{body}"
        );
    }
    // The owner fixes the name and retries with the same code: it still works.
    let (status, body) = pair_status(
        &a,
        serde_json::json!({"secret": secret.secret(), "device_name": "laptop"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let paired: PairResponse = serde_json::from_value(body).unwrap();
    assert_eq!(paired.agent, "studio");
    // And only once.
    let (status, _) = pair_status(
        &a,
        serde_json::json!({"secret": secret.secret(), "device_name": "laptop"}),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_post_that_is_not_json_gets_415_and_spends_nothing() {
    let a = TestAgent::start("", "").await;
    let store = AuthStore::open(&a.dir.path().join("state")).unwrap();
    let (secret, _) = store.create_pairing(PAIRING_TTL).unwrap();
    let json = serde_json::json!({"secret": secret.secret(), "device_name": "laptop"}).to_string();
    // What a web page can send cross-origin without a preflight: text/plain, a form.
    for ct in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let r = a
            .req(Method::POST, "/v1/pair", None)
            .header("content-type", ct)
            .body(json.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(status, 415, "{ct}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "{body}"
        );
    }
    // No content type at all, with a body: refused too.
    let r = a
        .req(Method::POST, "/v1/pair", None)
        .body(json.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // Authenticated POST routes as well.
    let r = a
        .req(Method::POST, "/v1/reauth/abc/complete", Some(&a.device))
        .header("content-type", "text/plain")
        .body(r#"{"code":"c","state":"s","redirect_uri":"http://127.0.0.1:5/callback"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // The code was not spent by any of them; a JSON request (charset allowed) pairs.
    let r = a
        .req(Method::POST, "/v1/pair", None)
        .header("content-type", "application/json; charset=utf-8")
        .body(json)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A raw TLS connection to the test daemon (pinned like every client).
pub(super) async fn raw_tls(
    a: &TestAgent,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let fp = &a.daemon.tls().expect("tls on").fingerprint;
    let cfg = tether::pin::pinned_tls_config(fp).unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let addr = a.base.trim_start_matches("https://").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// Reads until the server closes; returns what it sent.
async fn read_to_close<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                // One reply is enough: the server may keep the connection open after it.
                if String::from_utf8_lossy(&out).contains("\r\n\r\n{") {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_body_that_never_ends_is_cut_off_at_the_deadline() {
    let a = TestAgent::start("request_timeout = \"1s\"", "").await;
    let mut s = raw_tls(&a).await;
    s.write_all(
        b"POST /v1/pair HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"sec\r\n",
    )
    .await
    .unwrap();
    s.flush().await.unwrap();
    // No more chunks, ever. The daemon answers 408 on its own.
    let reply = tokio::time::timeout(CUT_OFF_WITHIN, read_to_close(&mut s))
        .await
        .expect("the daemon cut the body off");
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("did not arrive within"), "{reply}");
}

#[tokio::test]
async fn headers_that_never_end_are_cut_off_at_the_deadline() {
    let a = TestAgent::start("request_timeout = \"1s\"", "").await;
    let mut s = raw_tls(&a).await;
    s.write_all(b"POST /v1/pair HTTP/1.1\r\nHost: local")
        .await
        .unwrap();
    s.flush().await.unwrap();
    let reply = tokio::time::timeout(CUT_OFF_WITHIN, read_to_close(&mut s))
        .await
        .expect("the daemon closed the connection");
    // hyper answers 408 or just closes; either way the connection is gone.
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
        "{reply}"
    );
}
