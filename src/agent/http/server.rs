//! Serving the API: TLS (tokio-rustls) or plain HTTP on loopback, the background tasks,
//! and the graceful shutdown that lets in-flight vault commits finish.
//!
//! [`serve`] takes a bound listener and a shutdown future from the caller (the binary binds
//! and passes SIGTERM/SIGINT; tests bind 127.0.0.1:0 and pass a channel).

use crate::agent::daemon::Daemon;
use crate::agent::http::extract::PeerAddr;
use crate::agent::http::routes;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// Longest a client may take for its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest period of the daemon's chores (reminders, last-use times).
pub const MAINTENANCE_PERIOD: Duration = Duration::from_secs(30);

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Plain HTTP on a non-loopback address.
    #[error("refusing to serve plain HTTP on {0}: enable tls or listen on a loopback address")]
    PlainOffLoopback(SocketAddr),
    /// The TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] crate::agent::access::tls::TlsError),
    /// The listener failed.
    #[error("failed to serve the api")]
    Io(#[from] std::io::Error),
}

/// A connection: TLS or (loopback only) plain TCP.
pub enum Conn {
    /// TLS over TCP.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Plain TCP.
    Plain(TcpStream),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// How often a lasting accept failure (out of file descriptors) is logged, with a count.
pub const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// First pause after a failed accept; doubled on every further failure up to
/// [`ACCEPT_BACKOFF_MAX`].
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause between accepts while they fail.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Failed accepts: backoff and a log line per [`ACCEPT_LOG_INTERVAL`], not per failure.
#[derive(Debug)]
struct AcceptTrouble {
    delay: Duration,
    /// Failures not logged yet.
    unlogged: u64,
    /// Failures since the last success.
    total: u64,
    next_log: Option<tokio::time::Instant>,
}

impl AcceptTrouble {
    fn new() -> Self {
        AcceptTrouble {
            delay: ACCEPT_BACKOFF_MIN,
            unlogged: 0,
            total: 0,
            next_log: None,
        }
    }

    /// Records a failure and returns how long to pause.
    fn failed(&mut self, e: &std::io::Error) -> Duration {
        let now = tokio::time::Instant::now();
        self.unlogged += 1;
        self.total += 1;
        let due = match self.next_log {
            None => true,
            Some(t) => now >= t,
        };
        if due {
            let fix = match e.raw_os_error() {
                Some(libc::EMFILE) | Some(libc::ENFILE) => "; the daemon is out of file descriptors: raise its limit (LimitNOFILE= in the systemd unit, or `ulimit -n`)",
                _ => "",
            };
            if self.unlogged == 1 {
                tracing::warn!("accept failed: {e}{fix}; retrying with backoff");
            } else {
                tracing::warn!(
                    "accept failed {} times in the last {} s (last error: {e}){fix}; retrying with backoff",
                    self.unlogged,
                    ACCEPT_LOG_INTERVAL.as_secs()
                );
            }
            self.unlogged = 0;
            self.next_log = Some(now + ACCEPT_LOG_INTERVAL);
        }
        let d = self.delay;
        self.delay = (self.delay * 2).min(ACCEPT_BACKOFF_MAX);
        d
    }

    fn succeeded(&mut self) {
        if self.total > 0 {
            tracing::info!(
                "accepting connections again after {} failed accepts",
                self.total
            );
        }
        // The log interval holds across short recoveries: a daemon that keeps running out
        // of descriptors still logs once per interval.
        self.delay = ACCEPT_BACKOFF_MIN;
        self.total = 0;
    }
}

fn spawn_acceptor(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limiter: Arc<crate::agent::access::conn_limit::Limiter>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> mpsc::Receiver<(Conn, SocketAddr, crate::agent::access::conn_limit::Admitted)> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut stop = std::pin::pin!(stop);
        let mut trouble = AcceptTrouble::new();
        loop {
            let (tcp, addr) = tokio::select! {
                _ = &mut stop => return,
                r = listener.accept() => match r {
                    Ok(x) => {
                        trouble.succeeded();
                        x
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning, and say it
                        // once per interval instead of once per try.
                        let pause = trouble.failed(&e);
                        tokio::select! {
                            _ = &mut stop => return,
                            _ = tokio::time::sleep(pause) => {}
                        }
                        continue;
                    }
                },
            };
            // Over the caps: an unauthenticated connection makes room (or, when every
            // place it could take is held by authenticated ones, this one is closed at once).
            let Some(admitted) = limiter.admit(addr.ip()) else {
                tracing::debug!("connection from {addr} refused: every connection place is in use");
                continue;
            };
            let _ = tcp.set_nodelay(true);
            match &tls {
                None => {
                    if tx.send((Conn::Plain(tcp), addr, admitted)).await.is_err() {
                        return;
                    }
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let slot = admitted.slot.clone();
                        let handshake =
                            tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                        let r = tokio::select! {
                            r = handshake => r,
                            _ = slot.evicted() => return,
                        };
                        match r {
                            Ok(Ok(s)) => {
                                let _ = tx.send((Conn::Tls(Box::new(s)), addr, admitted)).await;
                            }
                            Ok(Err(e)) => tracing::debug!("tls handshake with {addr} failed: {e}"),
                            Err(_) => tracing::debug!("tls handshake with {addr} timed out"),
                        }
                    });
                }
            }
        }
    });
    rx
}

/// Serves one connection with hyper: headers must arrive within `header_timeout`; when
/// `close` turns true the connection finishes the request in flight and closes. An
/// unauthenticated connection is closed after its last allowed request or at the end of
/// its lifetime (see [`crate::agent::access::conn_limit`]).
async fn serve_conn(
    conn: Conn,
    addr: SocketAddr,
    admitted: crate::agent::access::conn_limit::Admitted,
    app: axum::Router,
    header_timeout: Duration,
    mut close: watch::Receiver<bool>,
) {
    use tower::ServiceExt;
    let slot = admitted.slot.clone();
    let for_requests = slot.clone();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let slot = for_requests.clone();
        slot.request();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(PeerAddr(addr)));
        // The bearer-token check marks the connection authenticated through this.
        req.extensions_mut().insert(slot.clone());
        let app = app.clone();
        async move {
            let mut resp = app.oneshot(req.map(axum::body::Body::new)).await?;
            if !slot.may_keep_alive() {
                // hyper closes the connection after a response that says so.
                resp.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
            }
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(conn), svc);
    let mut conn = std::pin::pin!(conn);
    let finish = tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!("connection from {addr} ended: {e}");
            }
            false
        }
        _ = async { let _ = close.wait_for(|v| *v).await; } => true,
        _ = slot.lifetime_over() => {
            tracing::debug!("closing unauthenticated connection from {addr}: it reached its lifetime");
            true
        }
        // Chosen to make room for a new connection.
        _ = slot.evicted() => {
            tracing::debug!("closed unauthenticated connection from {addr} to make room");
            false
        }
    };
    if finish {
        conn.as_mut().graceful_shutdown();
        tokio::select! {
            _ = conn => {}
            _ = slot.evicted() => {}
        }
    }
    drop(admitted);
}

/// Serves the daemon on `listener` until `shutdown` resolves: starts one checker per
/// credential, the maintenance task and the vault's own cadence, and answers requests.
///
/// On shutdown it stops accepting, asks every connection to finish the request in flight
/// (no keep-alive), waits for every job that writes the vault, and closes the connections
/// still open when `shutdown_grace` (counted from the signal) has passed, so a client
/// that never finishes its request cannot hold the daemon past its stop timeout.
pub async fn serve(
    listener: TcpListener,
    daemon: Arc<Daemon>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let local = listener.local_addr()?;
    let acceptor = match &daemon.tls {
        Some(id) => Some(tokio_rustls::TlsAcceptor::from(id.server_config()?)),
        None if local.ip().is_loopback() => None,
        None => return Err(ServeError::PlainOffLoopback(local)),
    };
    let mut tasks = Vec::new();
    // Before the checkers: a resumed sign-in marks its credential busy, so a check that
    // finds it dead does not start a second one.
    daemon.resume_device_flows();
    for cred in daemon.credentials.snapshot().values() {
        tasks.push(daemon.spawn_checker(cred));
    }
    // Reminders must not wait much longer than their interval; short intervals (tests)
    // tick faster.
    let period = MAINTENANCE_PERIOD
        .min(daemon.reminder_interval / 4)
        .max(Duration::from_millis(100));
    tasks.push(tokio::spawn(
        crate::agent::keep_alive::checker::maintenance(daemon.clone(), period),
    ));
    tasks.push(tokio::spawn(crate::agent::vault_watch::cadence::run(
        daemon.clone(),
        daemon.config.vault_check_interval,
    )));
    tasks.push(tokio::spawn(crate::agent::vault_watch::file_watch::run(
        daemon.clone(),
    )));
    if let Some(leases) = &daemon.lease {
        tasks.push(tokio::spawn(crate::agent::lease::hooks::run(
            daemon.clone(),
            leases.clone(),
        )));
    }

    let mut incoming = spawn_acceptor(
        listener,
        acceptor,
        daemon.connections.clone(),
        daemon.shutdown_signal(),
    );
    let app = routes::router(daemon.clone());
    let header_timeout = daemon.config.request_timeout;
    let (close_tx, close_rx) = watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            c = incoming.recv() => match c {
                Some((conn, addr, admitted)) => {
                    conns.spawn(serve_conn(conn, addr, admitted, app.clone(), header_timeout, close_rx.clone()));
                }
                None => break,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    let deadline = tokio::time::Instant::now() + daemon.config.shutdown_grace;
    tracing::info!("shutting down: no new connections; finishing requests and vault writes");
    daemon.begin_shutdown();
    drop(incoming);
    let _ = close_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    daemon.drain_writes().await;
    let drained = tokio::time::timeout_at(deadline, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "closing {} connection(s) still open after the {:?} shutdown grace",
            conns.len(),
            daemon.config.shutdown_grace
        );
        conns.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}
