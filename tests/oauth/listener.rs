//! The loopback listener on its own: loopback-only binding, fixed and busy ports, paths,
//! provider errors, replays, timeouts, cancellation and the held browser response.

use crate::require;
use crate::util::oidc::browser_get;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpStream, UdpSocket};
use std::time::Duration;
use tether::oauth::{CallbackOutcome, ListenerError, LoopbackListener, PendingCallback};
use tether::protocol::{RedirectPort, RedirectRequirement};
use url::Url;

const STATE: &str = "expected-state-0123456789abcdef0123456789";

fn any_port() -> RedirectRequirement {
    RedirectRequirement {
        host: "127.0.0.1".into(),
        port: RedirectPort::Any,
        path: "/callback".into(),
    }
}

fn callback(listener_uri: &str, query: &str) -> Url {
    Url::parse(&format!("{listener_uri}?{query}")).unwrap()
}

/// Waits on a blocking thread, so the test's runtime stays free to play the browser.
fn spawn_wait(
    listener: LoopbackListener,
    timeout: Duration,
) -> tokio::task::JoinHandle<Result<PendingCallback, ListenerError>> {
    tokio::task::spawn_blocking(move || listener.wait(timeout))
}

/// An address of this machine that is not loopback, if it has one. UDP `connect` sends no
/// packet; it only asks the kernel which source address it would use.
fn non_loopback_address() -> Option<IpAddr> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("10.255.255.255:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn binds_127_0_0_1_only() {
    let listener = LoopbackListener::bind(&any_port(), STATE.into()).unwrap();
    let addr = listener.local_addr();
    assert_eq!(addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_ne!(addr.port(), 0);
    assert_eq!(
        listener.redirect_uri(),
        format!("http://127.0.0.1:{}/callback", addr.port())
    );
    assert!(TcpStream::connect(addr).is_ok());
    match non_loopback_address() {
        // The same port on the machine's network address must not answer.
        Some(ip) => assert!(
            TcpStream::connect_timeout(&(ip, addr.port()).into(), Duration::from_secs(2)).is_err(),
            "listener reachable on {ip}"
        ),
        None => eprintln!("no non-loopback address on this machine; checked 127.0.0.1 only"),
    }
}

#[test]
fn a_127_0_0_1_redirect_leaves_ipv6_alone() {
    let listener = LoopbackListener::bind(&any_port(), STATE.into()).unwrap();
    assert_eq!(listener.local_addrs(), &[listener.local_addr()]);
}

/// True when this machine has an IPv6 loopback.
fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

#[tokio::test]
async fn localhost_redirect_binds_127_0_0_1_and_ipv6_loopback_on_one_port() {
    let req = RedirectRequirement {
        host: "localhost".into(),
        ..any_port()
    };
    let listener = LoopbackListener::bind(&req, STATE.into()).unwrap();
    let port = listener.local_addr().port();
    assert_eq!(listener.local_addr().ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert!(listener.redirect_uri().starts_with("http://localhost:"));
    require!(
        has_ipv6_loopback(),
        "an IPv6 loopback (::1) on this machine"
    );
    assert_eq!(
        listener.local_addrs(),
        &[
            (Ipv4Addr::LOCALHOST, port).into(),
            (Ipv6Addr::LOCALHOST, port).into()
        ]
    );
    // No other program can take the port on ::1, where a browser resolving `localhost`
    // to ::1 would deliver the code.
    let squatter = std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, port));
    assert!(
        squatter.is_err(),
        "[::1]:{port} was free for another program"
    );
    // And a callback arriving over ::1 is the one the listener takes.
    let waiting = spawn_wait(listener, Duration::from_secs(30));
    let v6 = Url::parse(&format!(
        "http://[::1]:{port}/callback?code=c6&state={STATE}"
    ))
    .unwrap();
    let browser = tokio::spawn(async move { browser_get(&v6).await });
    let pending = waiting.await.unwrap().unwrap();
    assert_eq!(pending.code().secret(), "c6");
    pending.respond(CallbackOutcome::Success {
        title: "Done".into(),
        detail: String::new(),
    });
    assert_eq!(browser.await.unwrap().0, 200);
}

#[test]
fn non_loopback_hosts_are_refused() {
    for host in ["0.0.0.0", "example.com", "[::]", "192.168.1.2"] {
        let req = RedirectRequirement {
            host: host.into(),
            ..any_port()
        };
        let err = LoopbackListener::bind(&req, STATE.into()).unwrap_err();
        assert!(
            matches!(err, ListenerError::UnsupportedHost(_)),
            "{host}: {err:?}"
        );
    }
}

#[test]
fn a_busy_fixed_port_names_the_port_and_the_fix() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let req = RedirectRequirement {
        port: RedirectPort::Fixed(port),
        ..any_port()
    };
    let err = LoopbackListener::bind(&req, STATE.into()).unwrap_err();
    assert!(
        matches!(err, ListenerError::PortInUse { port: p } if p == port),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&format!("port {port}")), "{msg}");
    assert!(msg.contains("redirect_port"), "{msg}");
    drop(taken);
    // Free again: the fixed port is used exactly.
    let listener = LoopbackListener::bind(&req, STATE.into()).unwrap();
    assert_eq!(listener.local_addr().port(), port);
}

#[tokio::test]
async fn other_paths_get_404_and_the_listener_keeps_waiting() {
    let listener = LoopbackListener::bind(&any_port(), STATE.into()).unwrap();
    let uri = listener.redirect_uri();
    let base = Url::parse(&uri).unwrap();
    let waiting = spawn_wait(listener, Duration::from_secs(30));
    for path in ["/favicon.ico", "/", "/callback/x", "/robots.txt"] {
        let (status, _) = browser_get(&base.join(path).unwrap()).await;
        assert_eq!(status, 404, "{path}");
    }
    // A callback with a code but no state is not ours either.
    let (status, _) = browser_get(&callback(&uri, "code=abc")).await;
    assert_eq!(status, 400);
    assert!(!waiting.is_finished());

    let browser = tokio::spawn(async move {
        browser_get(&callback(&uri, &format!("code=the-code&state={STATE}"))).await
    });
    let pending = waiting.await.unwrap().unwrap();
    assert_eq!(pending.code().secret(), "the-code");
    pending.respond(CallbackOutcome::Success {
        title: "Done: studio · youtube is working again".into(),
        detail: "<b>ok</b>".into(),
    });
    let (status, page) = browser.await.unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("Done: studio · youtube is working again"));
    assert!(page.contains("&lt;b&gt;ok&lt;/b&gt;"), "detail is escaped");
}

#[tokio::test]
async fn the_browser_waits_for_the_outcome_and_sees_a_failure() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = LoopbackListener::bind(&any_port(), STATE.into()).unwrap();
    let addr = listener.local_addr();
    let waiting = spawn_wait(listener, Duration::from_secs(30));
    // The browser's tab, by hand: its whole request is written before anything is awaited.
    let mut tab = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /callback?code=c&state={STATE} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
    );
    tab.write_all(request.as_bytes()).await.unwrap();
    // The listener has read and accepted that request (the positive signal): the daemon
    // is now exchanging the code.
    let pending = waiting.await.unwrap().unwrap();
    assert_eq!(pending.code().secret(), "c");
    // The tab has no answer yet: not a byte (nor the end of the connection) arrives on
    // its socket. The pause is what is tested: the answer is held however long the
    // exchange takes.
    let mut first = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(100), tab.peek(&mut first)).await;
    assert!(
        early.is_err(),
        "the response is held until the outcome is known: {early:?}"
    );
    pending.respond(CallbackOutcome::Failure {
        title: "Re-authorization failed".into(),
        detail: "google: invalid_grant".into(),
    });
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tab.read_to_end(&mut raw))
        .await
        .expect("the answer comes once the outcome is known")
        .unwrap();
    let page = String::from_utf8_lossy(&raw);
    assert!(page.starts_with("HTTP/1.1 400 "), "{page}");
    assert!(page.contains("Re-authorization failed") && page.contains("invalid_grant"));
}

#[tokio::test]
async fn a_dropped_callback_still_answers_the_browser() {
    let listener = LoopbackListener::bind(&any_port(), STATE.into()).unwrap();
    let uri = listener.redirect_uri();
    let waiting = spawn_wait(listener, Duration::from_secs(30));
    let browser = tokio::spawn(async move {
        browser_get(&callback(&uri, &format!("code=c&state={STATE}"))).await
    });
    drop(waiting.await.unwrap().unwrap());
    let (status, page) = browser.await.unwrap();
    assert_eq!(status, 400);
    assert!(page.contains("not completed"), "{page}");
}

#[tokio::test]
async fn a_replayed_callback_gets_an_error_page_and_changes_nothing() {
    let listener = LoopbackListener::bind(&any_port(), STATE.into()).unwrap();
    let uri = listener.redirect_uri();
    let waiting = spawn_wait(listener, Duration::from_secs(30));
    let first = callback(&uri, &format!("code=first&state={STATE}"));
    let browser = tokio::spawn(async move { browser_get(&first).await });
    let pending = waiting.await.unwrap().unwrap();

    let (status, page) = browser_get(&callback(&uri, &format!("code=second&state={STATE}"))).await;
    assert_eq!(status, 409);
    assert!(page.contains("already used"), "{page}");
    assert_eq!(
        pending.code().secret(),
        "first",
        "the replay changed nothing"
    );
    pending.respond(CallbackOutcome::Success {
        title: "Done".into(),
        detail: String::new(),
    });
    assert_eq!(browser.await.unwrap().0, 200);
}

#[tokio::test]
async fn access_denied_is_declined_and_other_errors_carry_the_description() {
    let listener = LoopbackListener::bind(&any_port(), STATE.into()).unwrap();
    let uri = listener.redirect_uri();
    let waiting = spawn_wait(listener, Duration::from_secs(30));
    // A forged error with the wrong state does not end the flow.
    let (status, _) = browser_get(&callback(&uri, "error=access_denied&state=nope")).await;
    assert_eq!(status, 400);
    assert!(!waiting.is_finished());
    let (_, page) = browser_get(&callback(
        &uri,
        &format!("error=access_denied&state={STATE}"),
    ))
    .await;
    assert!(page.contains("declined"));
    assert!(matches!(
        waiting.await.unwrap(),
        Err(ListenerError::Declined)
    ));

    let listener = LoopbackListener::bind(&any_port(), STATE.into()).unwrap();
    let uri = listener.redirect_uri();
    let waiting = spawn_wait(listener, Duration::from_secs(30));
    let q =
        format!("error=invalid_scope&error_description=Scope+%22x%22+is+not+allowed&state={STATE}");
    let (_, page) = browser_get(&callback(&uri, &q)).await;
    assert!(
        page.contains("Scope &quot;x&quot; is not allowed"),
        "{page}"
    );
    match waiting.await.unwrap() {
        Err(ListenerError::Provider(info)) => {
            assert_eq!(info.code, "invalid_scope");
            assert_eq!(info.description, "Scope \"x\" is not allowed");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn times_out() {
    let listener = LoopbackListener::bind(&any_port(), STATE.into()).unwrap();
    let err = listener.wait(Duration::from_millis(150)).unwrap_err();
    assert!(matches!(err, ListenerError::TimedOut(d) if d == Duration::from_millis(150)));
    assert!(err.to_string().contains("start the authorization again"));
}

#[tokio::test]
async fn cancel_from_another_thread() {
    let listener = LoopbackListener::bind(&any_port(), STATE.into()).unwrap();
    let canceller = listener.canceller();
    let waiting = spawn_wait(listener, Duration::from_secs(300));
    canceller.cancel();
    let started = std::time::Instant::now();
    let err = waiting.await.unwrap().unwrap_err();
    assert!(matches!(err, ListenerError::Cancelled), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "cancel is prompt, not the timeout"
    );
}

#[test]
fn default_timeout_is_five_minutes() {
    assert_eq!(tether::oauth::DEFAULT_TIMEOUT, Duration::from_secs(300));
}
