//! The daemon's HTTP API (axum): routes under `/v1` and their handlers.
//!
//! Every route except `/healthz` and `/v1/pair` needs a bearer token of the right role:
//! none or unknown → 401, wrong role → 403, each with a JSON [`ApiFailure`]
//! ([`crate::agent::http::error_reply`]). Bodies are capped at [`MAX_BODY_BYTES`], unknown fields are
//! refused, credential names are checked before anything else looks at them (the
//! extractors in [`crate::agent::http::extract`]; both re-exported here).

use crate::agent::access::reauth_sessions::SessionError;
use crate::agent::credential::runtime::CHECK_NOW_MIN_INTERVAL;
use crate::agent::http::error_reply::ApiFailure;
use crate::agent::http::extract::{AgentAuth, Body, CredName, DeviceAuth, OptionalBody, PeerAddr};
use crate::agent::human::account_pin::AccountRule;
use crate::agent::{daemon::Daemon, error::OpError, metrics};
use crate::protocol::{
    AccessTokenReply, ErrorCode, Event, PairRequest, PairResponse, ReauthComplete, RejectedReply,
    RejectedReport, SecretPut, API_PREFIX, MAX_BODY_BYTES, PROTOCOL_VERSION,
};
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{self, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures_util::StreamExt;
use std::sync::Arc;

/// The path of an API route: the protocol's prefix, then `rest`.
fn api(rest: &str) -> String {
    format!("{API_PREFIX}{rest}")
}

/// Builds the router over `daemon`.
pub fn router(daemon: Arc<Daemon>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(&api("/pair"), post(pair))
        .route(&api("/health"), get(health))
        .route(&api("/events"), get(events))
        .route(&api("/credentials/{name}/reauth"), post(reauth_start))
        .route(&api("/reauth/{session}/complete"), post(reauth_complete))
        .route(&api("/credentials/{name}/secret"), put(put_secret))
        .route(&api("/credentials/{name}/check"), post(check_now))
        .route(&api("/credentials/{name}/access-token"), get(access_token))
        .route(&api("/credentials/{name}/rejected"), post(rejected))
        .merge(crate::agent::http::human_routes::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(require_json))
        .layer(axum::middleware::from_fn_with_state(
            daemon.clone(),
            count_requests,
        ))
        .with_state(daemon)
}

async fn count_requests(State(d): State<Arc<Daemon>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let mut resp = next.run(req).await;
    d.metrics.inc(
        metrics::HTTP_REQUESTS,
        &[("route", &route), ("status", resp.status().as_str())],
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// True when `v` is `application/json`, parameters (`; charset=utf-8`) allowed.
fn is_json(v: &HeaderValue) -> bool {
    v.to_str().is_ok_and(|s| {
        s.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// Every POST must say `Content-Type: application/json` (415 otherwise), so a web page
/// cannot reach the API with a "simple" cross-origin request (`text/plain`, a form). A
/// POST with no body at all needs no type; every route taking one is also behind a bearer
/// token, which a cross-origin page cannot send without a preflight the daemon refuses.
async fn require_json(req: Request, next: Next) -> Response {
    if req.method() == axum::http::Method::POST {
        let headers = req.headers();
        let has_body = headers.contains_key(header::TRANSFER_ENCODING)
            || headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim() != "0");
        let ok = match headers.get(header::CONTENT_TYPE) {
            Some(v) => is_json(v),
            None => !has_body,
        };
        if !ok {
            return ApiFailure::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::BadRequest,
                "the request body must be JSON: send `Content-Type: application/json`",
                None,
            )
            .into_response();
        }
    }
    next.run(req).await
}

async fn not_found() -> ApiFailure {
    ApiFailure::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such route",
        None,
    )
}

async fn method_not_allowed() -> ApiFailure {
    ApiFailure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BadRequest,
        "method not allowed on this route",
        None,
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn pair(
    State(d): State<Arc<Daemon>>,
    ConnectInfo(addr): ConnectInfo<PeerAddr>,
    Body(req): Body<PairRequest>,
) -> Result<Json<PairResponse>, ApiFailure> {
    let ip = addr.0.ip();
    if !d.auth.pairing_allowed(ip) {
        return Err(ApiFailure::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "too many failed pairing attempts; wait 10 minutes",
            Some("make sure you copied the whole pairing code, then try again later"),
        ));
    }
    let auth = d.clone();
    let res = tokio::task::spawn_blocking(move || {
        auth.auth.redeem_pairing(&req.secret, &req.device_name)
    })
    .await
    .map_err(|_| {
        ApiFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "pairing task failed",
            None,
        )
    })?;
    if !matches!(
        res,
        Err(crate::agent::access::auth::AuthError::PairingInvalid
            | crate::agent::access::auth::AuthError::PairingExpired)
    ) {
        d.auth.pairing_not_a_guess(ip);
    }
    match res {
        Ok((device_id, device_token)) => {
            tracing::info!("paired a new device {device_id}");
            Ok(Json(PairResponse {
                agent: d.config.name.clone(),
                device_id,
                device_token,
                protocol: PROTOCOL_VERSION,
                version: env!("CARGO_PKG_VERSION").to_string(),
            }))
        }
        Err(e @ crate::agent::access::auth::AuthError::BadName) => Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            e.to_string(),
            None,
        )),
        Err(
            e @ (crate::agent::access::auth::AuthError::PairingInvalid
            | crate::agent::access::auth::AuthError::PairingExpired),
        ) => {
            tracing::warn!("failed pairing attempt from {ip}");
            Err(ApiFailure::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                e.to_string(),
                None,
            ))
        }
        Err(e) => Err(ApiFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            e.to_string(),
            None,
        )),
    }
}

async fn health(
    State(d): State<Arc<Daemon>>,
    _a: DeviceAuth,
) -> Json<crate::protocol::HealthReport> {
    Json(d.health())
}

async fn metrics(State(d): State<Arc<Daemon>>, _a: DeviceAuth) -> Response {
    let body = crate::agent::http::metrics_page::render(&d);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        body,
    )
        .into_response()
}

/// Longest life of one event stream: the companion reconnects (and is authenticated
/// again) at least this often.
pub const MAX_EVENT_STREAM: std::time::Duration = std::time::Duration::from_secs(3600);

async fn events(
    State(d): State<Arc<Daemon>>,
    crate::agent::http::events::EventsCaller { principal, filter }: crate::agent::http::events::EventsCaller,
) -> Sse<impl futures_util::Stream<Item = Result<sse::Event, std::convert::Infallible>>> {
    let rx = d.events.subscribe();
    // A device sees every change; an agent token only its own `recovered` events.
    let changes = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |r| {
        let kept = match r {
            Ok(ev) => Some(ev).filter(|ev| filter.keeps(ev)),
            // Fell behind the buffer: say so, so the reader fetches the state again.
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(missed)) => {
                Some(Event::Resync {
                    missed,
                    at: chrono::Utc::now(),
                })
            }
        };
        async move { kept }
    });
    let period = d.config.heartbeat_interval;
    let beats = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval_at(
        tokio::time::Instant::now() + period,
        period,
    ))
    .map(|_| Event::Heartbeat {
        at: chrono::Utc::now(),
    });
    let auth = d.clone();
    let end = {
        let shutdown = d.shutdown_signal();
        async move {
            tokio::select! {
                _ = shutdown => {}
                _ = tokio::time::sleep(MAX_EVENT_STREAM) => {}
            }
        }
    };
    let stream = futures_util::stream::select(changes, beats)
        // Revocation takes effect at once: every event (at the latest every heartbeat)
        // checks that the device token still exists, and the stream ends when it does not.
        .take_while(move |_| std::future::ready(auth.auth.is_current(&principal.id)))
        .map(|ev| {
            // Invariant: protocol events are plain data and always serialize.
            let json = serde_json::to_string(&ev).expect("events serialize");
            Ok(sse::Event::default().data(json))
        })
        .take_until(end);
    Sse::new(stream)
}

async fn reauth_start(
    State(d): State<Arc<Daemon>>,
    _a: DeviceAuth,
    CredName(name): CredName,
) -> Result<Json<crate::protocol::ReauthStart>, ApiFailure> {
    Ok(Json(d.reauth_start(&name).await?))
}

async fn reauth_complete(
    State(d): State<Arc<Daemon>>,
    _a: DeviceAuth,
    Path(session): Path<String>,
    Body(req): Body<ReauthComplete>,
) -> Result<Json<crate::protocol::CredentialHealth>, ApiFailure> {
    if session.len() > 128
        || !session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(OpError::Session(SessionError::Gone).into());
    }
    Ok(Json(
        d.reauth_complete(
            &session,
            req.code,
            &req.state,
            &req.redirect_uri,
            AccountRule::from_flag(req.new_account),
        )
        .await?,
    ))
}

async fn put_secret(
    State(d): State<Arc<Daemon>>,
    _a: DeviceAuth,
    CredName(name): CredName,
    Body(req): Body<SecretPut>,
) -> Result<Json<crate::protocol::CredentialHealth>, ApiFailure> {
    Ok(Json(
        d.put_secret(&name, req.secret, AccountRule::from_flag(req.new_account))
            .await?,
    ))
}

async fn check_now(
    State(d): State<Arc<Daemon>>,
    _a: DeviceAuth,
    CredName(name): CredName,
) -> Result<Json<crate::protocol::CredentialHealth>, ApiFailure> {
    let cred = d.credential(&name)?.clone();
    // A device may ask for a check, not for unlimited refreshes (each one rotates an X or
    // Slack token): within CHECK_NOW_MIN_INTERVAL of the last one it gets the result.
    if cred.check_now_due(CHECK_NOW_MIN_INTERVAL) {
        let _ = d.refresh_test(&cred).await;
        cred.wake.notify_one();
    }
    Ok(Json(cred.health()))
}

async fn rejected(
    State(d): State<Arc<Daemon>>,
    _a: AgentAuth,
    CredName(name): CredName,
    OptionalBody(report): OptionalBody<RejectedReport>,
) -> Result<Json<RejectedReply>, ApiFailure> {
    let report = report.unwrap_or_default();
    d.note_pending(
        &name,
        crate::protocol::PendingWork::from_report(
            report.pending,
            report.oldest,
            report.what.as_deref(),
        ),
    );
    let (credential, token) = d.confirm_rejected_token(&name, &report).await?;
    Ok(Json(RejectedReply {
        credential,
        token: token.map(|t| AccessTokenReply {
            credential: name,
            access_token: t.access_token,
            token_type: t.token_type,
            expires_at: t.expires_at,
        }),
    }))
}

async fn access_token(
    State(d): State<Arc<Daemon>>,
    _a: AgentAuth,
    CredName(name): CredName,
) -> Result<Json<AccessTokenReply>, ApiFailure> {
    let t = d.access_token(&name).await?;
    Ok(Json(AccessTokenReply {
        credential: name,
        access_token: t.access_token,
        token_type: t.token_type,
        expires_at: t.expires_at,
    }))
}
