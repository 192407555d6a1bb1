//! Serving the API: TLS (tokio-rustls) or plain HTTP on loopback, the background tasks,
//! and the graceful shutdown that lets in-flight vault commits finish.
//!
//! [`serve`] takes a bound listener and a shutdown future from the caller (the binary binds
//! and passes SIGTERM/SIGINT; tests bind 127.0.0.1:0 and pass a channel).

use super::api::{self, PeerAddr};
use super::daemon::Daemon;
use super::metrics::{labels, render_gauge};
use crate::protocol::CredentialState;
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

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
    Tls(#[from] super::tls::TlsError),
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

/// Accepted, handshaken connections for axum. Handshakes run in their own tasks so one
/// slow client never holds up the others.
pub struct AgentListener {
    rx: mpsc::Receiver<(Conn, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for AgentListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task only ends when the listener is gone; park until shutdown
            // drops this future.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

impl Connected<IncomingStream<'_, AgentListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, AgentListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

fn spawn_acceptor(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> mpsc::Receiver<(Conn, SocketAddr)> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut stop = std::pin::pin!(stop);
        loop {
            let (tcp, addr) = tokio::select! {
                _ = &mut stop => return,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            match &tls {
                None => {
                    if tx.send((Conn::Plain(tcp), addr)).await.is_err() {
                        return;
                    }
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(s)) => {
                                let _ = tx.send((Conn::Tls(Box::new(s)), addr)).await;
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

/// Serves the daemon on `listener` until `shutdown` resolves: starts one checker per
/// credential and the maintenance task, answers requests, and on shutdown stops accepting,
/// lets requests and vault commits in flight finish, and returns.
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
    for cred in daemon.credentials.values() {
        tasks.push(tokio::spawn(super::checker::run(
            daemon.clone(),
            cred.clone(),
        )));
    }
    // Reminders must not wait much longer than their interval; short intervals (tests)
    // tick faster.
    let period = MAINTENANCE_PERIOD
        .min(daemon.reminder_interval / 4)
        .max(Duration::from_millis(100));
    tasks.push(tokio::spawn(super::checker::maintenance(
        daemon.clone(),
        period,
    )));
    tasks.push(tokio::spawn(super::vault_watch::run(
        daemon.clone(),
        daemon.config.vault_check_interval,
    )));

    let rx = spawn_acceptor(listener, acceptor, daemon.shutdown_signal());
    let app = api::router(daemon.clone());
    let d = daemon.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections; finishing requests and vault writes");
        d.begin_shutdown();
    };
    axum::serve(
        AgentListener { rx, local },
        app.into_make_service_with_connect_info::<PeerAddr>(),
    )
    .with_graceful_shutdown(signal)
    .await?;
    daemon.begin_shutdown();
    for t in tasks {
        let _ = t.await;
    }
    daemon.drain_writes().await;
    tracing::info!("stopped");
    Ok(())
}

/// The `/metrics` text: counters plus gauges of the current state.
pub fn render_metrics(d: &Daemon) -> String {
    let mut out = String::new();
    let states = [
        CredentialState::Unchecked,
        CredentialState::Ok,
        CredentialState::Expiring,
        CredentialState::Degraded,
        CredentialState::Dead,
    ];
    let mut state_samples = Vec::new();
    let mut blocked = Vec::new();
    for c in d.credentials.values() {
        let s = c.status();
        for st in states {
            state_samples.push((
                labels(&[("credential", &c.name), ("state", st.as_str())]),
                f64::from(u8::from(s.state == st)),
            ));
        }
        blocked.push((labels(&[("credential", &c.name)]), s.blocked as f64));
    }
    render_gauge(
        &mut out,
        "tether_credential_state",
        "1 for the state each credential is in.",
        &state_samples,
    );
    render_gauge(
        &mut out,
        "tether_blocked_requests",
        "Access-token requests refused since the credential died.",
        &blocked,
    );
    let channels = d.alerter.as_ref().map(|a| a.health()).unwrap_or_default();
    let sent: Vec<_> = channels
        .iter()
        .map(|c| {
            (
                labels(&[("channel", &c.name), ("kind", &c.kind)]),
                c.sent as f64,
            )
        })
        .collect();
    let failed: Vec<_> = channels
        .iter()
        .map(|c| {
            (
                labels(&[("channel", &c.name), ("kind", &c.kind)]),
                c.failed as f64,
            )
        })
        .collect();
    render_gauge(
        &mut out,
        "tether_alerts_sent",
        "Alerts delivered, by channel.",
        &sent,
    );
    render_gauge(
        &mut out,
        "tether_alerts_failed",
        "Alerts that failed after all retries, by channel.",
        &failed,
    );
    d.metrics.render_counters(&mut out);
    out
}
