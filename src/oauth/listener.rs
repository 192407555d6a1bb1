//! The loopback listener: one HTTP server on loopback that accepts exactly one callback
//! with the expected `state`, and answers the browser only once the caller knows the outcome.
//!
//! Blocking (tiny_http): run [`LoopbackListener::wait`] on a thread or in `spawn_blocking`.
//! Rules (RFC 8252 section 7.3, and the re-auth design):
//! - binds loopback literals only, never a wildcard address: 127.0.0.1 for a `127.0.0.1`
//!   redirect; 127.0.0.1 *and* ::1 on the same port for a `localhost` redirect (where the
//!   provider demands it), because the browser may resolve `localhost` to either, and a
//!   port left free on ::1 could be taken by another local program that would then receive
//!   the code (RFC 8252 8.3). A machine without IPv6 gets 127.0.0.1 alone (nobody can bind
//!   ::1 there either);
//! - answers other paths 404 (`/favicon.ico` quietly); a callback with a wrong or missing
//!   `state` gets an error page and the listener keeps waiting for the right one;
//! - `error=access_denied` is [`ListenerError::Declined`], any other `error=` is
//!   [`ListenerError::Provider`] with the provider's description;
//! - times out ([`DEFAULT_TIMEOUT`]) and can be cancelled from another thread ([`Canceller`]);
//! - the valid callback's browser response is held in the [`PendingCallback`] until
//!   [`PendingCallback::respond`] renders the real outcome; any callback arriving meanwhile
//!   (a replay, a second tab) gets an error page and changes nothing.
//!
//! Files: `listener.rs` (the listener, its callback and the browser's answer),
//! `listener/sockets.rs` (binding the loopback addresses and feeding their requests
//! into one channel) and `listener/error.rs` ([`ListenerError`], which both use).

use super::page;
use crate::protocol::{ErrorInfo, RedirectPort, RedirectRequirement};
use crate::secret::{constant_time_eq, AuthorizationCode};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};

use std::sync::Arc;
use std::time::{Duration, Instant};
use tiny_http::{Header, Request, Response, Server};

mod error;
mod sockets;
pub use error::ListenerError;
use sockets::{bind_loopback, Sockets};

/// How long [`LoopbackListener::wait`] waits by default: five minutes of owner's time.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How often the thread answering replays checks whether it may stop.
const DRAIN_TICK: Duration = Duration::from_millis(50);

/// Cancels a [`LoopbackListener::wait`] from another thread. It holds the sockets: drop
/// it once the flow is over so the port is released.
#[derive(Clone)]
pub struct Canceller {
    sockets: Arc<Sockets>,
    cancelled: Arc<AtomicBool>,
}

impl Canceller {
    /// Makes [`LoopbackListener::wait`] return [`ListenerError::Cancelled`] promptly.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.sockets.wake();
    }
}

impl std::fmt::Debug for Canceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canceller")
            .field("cancelled", &self.cancelled.load(Ordering::SeqCst))
            .finish()
    }
}

/// A bound listener waiting for one callback.
pub struct LoopbackListener {
    sockets: Arc<Sockets>,
    addrs: Vec<SocketAddr>,
    cancelled: Arc<AtomicBool>,
    expected_state: String,
    path: String,
    redirect_uri: String,
    addr: SocketAddr,
}

impl std::fmt::Debug for LoopbackListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The state is not a long-term secret, but it guards this one flow: keep it out.
        f.debug_struct("LoopbackListener")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// What the caller tells the browser once the code has been used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// It worked (e.g. "Done: studio · youtube is working again").
    Success {
        /// Heading.
        title: String,
        /// One or two sentences.
        detail: String,
    },
    /// It did not (e.g. the exchange failed); say what to do.
    Failure {
        /// Heading.
        title: String,
        /// What failed and how to fix it.
        detail: String,
    },
}

/// The valid callback, with the browser's response still pending.
pub struct PendingCallback {
    code: AuthorizationCode,
    state: String,
    redirect_uri: String,
    responder: Responder,
}

/// The code and state of a callback, split from its [`Responder`].
#[derive(Debug)]
pub struct Callback {
    /// The authorization code.
    pub code: AuthorizationCode,
    /// The `state` (already checked against the expected one).
    pub state: String,
    /// The `redirect_uri` the listener served (needed for the exchange).
    pub redirect_uri: String,
}

/// Holds the browser's request until [`Responder::respond`]; dropping it answers with a
/// failure page, so a browser tab never hangs.
pub struct Responder {
    request: Option<Request>,
    done: Arc<AtomicBool>,
    sockets: Arc<Sockets>,
}

impl std::fmt::Debug for PendingCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCallback")
            .field("code", &self.code)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("answered", &self.request.is_none())
            .finish()
    }
}

impl PendingCallback {
    /// The authorization code.
    pub fn code(&self) -> &AuthorizationCode {
        &self.code
    }

    /// The `state` from the callback (equal to the expected one).
    pub fn state(&self) -> &str {
        &self.state
    }

    /// The `redirect_uri` of this listener (the exchange must send the same).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Splits into the callback's values and the held browser response.
    pub fn into_parts(self) -> (Callback, Responder) {
        (
            Callback {
                code: self.code,
                state: self.state,
                redirect_uri: self.redirect_uri,
            },
            self.responder,
        )
    }

    /// Renders the outcome in the browser tab and closes the listener.
    pub fn respond(self, outcome: CallbackOutcome) {
        self.responder.respond(outcome)
    }
}

impl Responder {
    /// Renders the outcome in the browser tab and closes the listener.
    pub fn respond(mut self, outcome: CallbackOutcome) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: CallbackOutcome) {
        if let Some(request) = self.request.take() {
            let (ok, title, detail) = match &outcome {
                CallbackOutcome::Success { title, detail } => (true, title, detail),
                CallbackOutcome::Failure { title, detail } => (false, title, detail),
            };
            let status = if ok { 200 } else { 400 };
            answer(request, status, &page::render(ok, title, detail));
        }
        // Stop the thread that answers replays, then let the servers close.
        self.done.store(true, Ordering::SeqCst);
        self.sockets.wake();
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.request.is_some() {
            self.finish(CallbackOutcome::Failure {
                title: "Sign-in not completed".into(),
                detail: "Tether stopped before it could use this sign-in. Start the re-authorization again.".into(),
            });
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    // Static ASCII names and values: from_bytes only fails on non-ASCII input.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static ASCII header")
}

/// Sends a page. The headers keep the code out of Referer headers and caches.
fn answer(request: Request, status: u16, html: &str) {
    let response = Response::from_string(html)
        .with_status_code(status)
        .with_header(header("Content-Type", "text/html; charset=utf-8"))
        .with_header(header("Cache-Control", "no-store"))
        .with_header(header("Referrer-Policy", "no-referrer"))
        .with_header(header("X-Content-Type-Options", "nosniff"))
        .with_header(header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        ));
    // A browser that went away cannot be told anything; nothing else to do.
    let _ = request.respond(response);
}

fn not_found(request: Request) {
    answer(
        request,
        404,
        &page::render(
            false,
            "Not found",
            "This address is only used for one sign-in callback.",
        ),
    );
}

impl LoopbackListener {
    /// Binds 127.0.0.1 (and ::1 for `localhost`) on the requirement's port (a free one for
    /// [`RedirectPort::Any`]).
    pub fn bind(
        requirement: &RedirectRequirement,
        expected_state: String,
    ) -> Result<Self, ListenerError> {
        let host = requirement.host.as_str();
        if host != "127.0.0.1" && host != "localhost" {
            return Err(ListenerError::UnsupportedHost(requirement.host.clone()));
        }
        if !requirement.path.starts_with('/') {
            return Err(ListenerError::BadPath(requirement.path.clone()));
        }
        let port = match requirement.port {
            RedirectPort::Any => 0,
            RedirectPort::Fixed(p) => p,
        };
        // Loopback literals only: the callback carries a code that must not be reachable
        // from the network.
        let listeners = bind_loopback(port, host == "localhost")?;
        let addrs = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ListenerError::Io { port, source: e })?;
        let addr = addrs[0];
        let servers = listeners
            .into_iter()
            .map(|tcp| {
                Server::from_listener(tcp, None).map_err(|e| ListenerError::Io {
                    port: addr.port(),
                    source: std::io::Error::other(e.to_string()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let redirect_uri = format!("http://{host}:{}{}", addr.port(), requirement.path);
        tracing::info!(redirect_uri = %redirect_uri, "loopback listener ready");
        Ok(LoopbackListener {
            sockets: Sockets::new(servers),
            addrs,
            cancelled: Arc::new(AtomicBool::new(false)),
            expected_state,
            path: requirement.path.clone(),
            redirect_uri,
            addr,
        })
    }

    /// The `redirect_uri` to put in the authorization URL.
    pub fn redirect_uri(&self) -> String {
        self.redirect_uri.clone()
    }

    /// The bound 127.0.0.1 address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every bound address: 127.0.0.1, and ::1 on the same port for a `localhost`
    /// redirect on a machine with IPv6.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// A handle that cancels [`wait`](Self::wait) from another thread.
    pub fn canceller(&self) -> Canceller {
        Canceller {
            sockets: self.sockets.clone(),
            cancelled: self.cancelled.clone(),
        }
    }

    /// Waits up to `timeout` for the one valid callback. Consumes the listener: one
    /// listener yields at most one callback.
    pub fn wait(self, timeout: Duration) -> Result<PendingCallback, ListenerError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.cancelled.load(Ordering::SeqCst) {
                return Err(ListenerError::Cancelled);
            }
            let now = Instant::now();
            if now >= deadline {
                tracing::info!(redirect_uri = %self.redirect_uri, "no callback before the timeout");
                return Err(ListenerError::TimedOut(timeout));
            }
            let Some(request) = self.sockets.recv_timeout(deadline - now) else {
                // Timed out or woken by the canceller: the checks above decide.
                continue;
            };
            if let Some(result) = self.handle(request) {
                return result;
            }
        }
    }

    /// Handles one request: `None` to keep waiting, `Some` to end the wait.
    fn handle(&self, request: Request) -> Option<Result<PendingCallback, ListenerError>> {
        // tiny_http gives the request target (path and query); parse it against our origin.
        let target = format!("http://127.0.0.1{}", request.url());
        let Ok(url) = url::Url::parse(&target) else {
            not_found(request);
            return None;
        };
        if url.path() != self.path {
            if url.path() != "/favicon.ico" {
                tracing::debug!(
                    path = url.path(),
                    "loopback listener: not the callback path"
                );
            }
            not_found(request);
            return None;
        }
        if *request.method() != tiny_http::Method::Get {
            answer(
                request,
                405,
                &page::render(
                    false,
                    "Wrong method",
                    "The sign-in callback is a GET request.",
                ),
            );
            return None;
        }
        let mut state = None;
        let mut code = None;
        let mut error = None;
        let mut error_description = None;
        for (k, v) in url.query_pairs() {
            match &*k {
                "state" => state = Some(v.into_owned()),
                "code" => code = Some(v.into_owned()),
                "error" => error = Some(v.into_owned()),
                "error_description" => error_description = Some(v.into_owned()),
                _ => {}
            }
        }
        let state_ok = state
            .as_deref()
            .is_some_and(|s| constant_time_eq(s.as_bytes(), self.expected_state.as_bytes()));
        if !state_ok {
            // Not our flow (an old tab, a forged link): refuse it and keep waiting.
            tracing::warn!("loopback listener: callback with a wrong or missing state refused");
            answer(
                request,
                400,
                &page::render(
                    false,
                    "This sign-in link is not the one Tether is waiting for",
                    "The link's state does not match the sign-in in progress, so it was ignored. Use the browser tab Tether opened for this sign-in.",
                ),
            );
            return None;
        }
        if let Some(error) = error {
            let description = error_description.unwrap_or_default();
            let (title, detail, err) = if error == "access_denied" {
                (
                    "Authorization declined".to_owned(),
                    "You declined the request, so nothing changed. Start again and click Allow to grant access.".to_owned(),
                    ListenerError::Declined,
                )
            } else {
                let info = ErrorInfo {
                    code: crate::text::clean_text(&error, 80),
                    description: crate::text::clean_text(&description, 300),
                };
                (
                    "The provider refused the authorization".to_owned(),
                    format!("{} ({})", info.description, info.code),
                    ListenerError::Provider(info),
                )
            };
            answer(request, 400, &page::render(false, &title, &detail));
            return Some(Err(err));
        }
        let Some(code) = code.filter(|c| !c.is_empty()) else {
            answer(
                request,
                400,
                &page::render(
                    false,
                    "No authorization code",
                    "The callback carried neither a code nor an error.",
                ),
            );
            return None;
        };
        tracing::info!("loopback listener: callback with the expected state received");
        let done = Arc::new(AtomicBool::new(false));
        spawn_replay_answerer(self.sockets.clone(), done.clone(), self.path.clone());
        Some(Ok(PendingCallback {
            code: AuthorizationCode::new(code),
            state: state.unwrap_or_default(),
            redirect_uri: self.redirect_uri.clone(),
            responder: Responder {
                request: Some(request),
                done,
                sockets: self.sockets.clone(),
            },
        }))
    }
}

/// While the valid callback's answer is pending, answers everything else: a replayed or
/// second callback gets an error page and is not used.
fn spawn_replay_answerer(sockets: Arc<Sockets>, done: Arc<AtomicBool>, path: String) {
    std::thread::spawn(move || {
        while !done.load(Ordering::SeqCst) {
            if let Some(request) = sockets.recv_timeout(DRAIN_TICK) {
                let is_callback = request.url().split('?').next() == Some(path.as_str());
                if is_callback {
                    tracing::warn!("loopback listener: second callback refused");
                    answer(
                        request,
                        409,
                        &page::render(
                            false,
                            "This sign-in was already used",
                            "Tether already received a callback for this sign-in; this one was ignored and changed nothing.",
                        ),
                    );
                } else {
                    not_found(request);
                }
            }
        }
    });
}
