//! The daemon's HTTP API (axum): routes under `/v1`, token roles, body limits, JSON errors.
//!
//! Every route except `/healthz` and `/v1/pair` needs a bearer token of the right role:
//! none or unknown → 401, wrong role → 403, each with a JSON [`ApiError`]. Bodies are
//! capped at [`MAX_BODY_BYTES`], unknown fields are refused, credential names are checked
//! with [`valid_credential_name`] before anything else looks at them.

use super::auth::{Principal, Role};
use super::reauth::SessionError;
use super::{metrics, Daemon, OpError};
use crate::oauth::ErrorClass;
use crate::protocol::valid_credential_name;
use crate::protocol::{
    AccessTokenReply, ApiError, ErrorCode, Event, PairRequest, PairResponse, ReauthComplete,
    RejectedReply, RejectedReport, SecretPut, API_PREFIX, MAX_BODY_BYTES, PROTOCOL_VERSION,
};
use axum::extract::rejection::BytesRejection;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Path, Request, State,
};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{self, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::Arc;

/// The peer address of a connection (set by the server for every connection).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// An error reply: HTTP status plus the JSON body.
#[derive(Debug)]
pub struct ApiFailure {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: ApiError,
}

impl ApiFailure {
    /// An error with a code, a message and an optional hint.
    pub fn new(
        status: StatusCode,
        code: ErrorCode,
        message: impl Into<String>,
        hint: Option<&str>,
    ) -> Self {
        ApiFailure {
            status,
            body: ApiError {
                code,
                message: message.into(),
                hint: hint.map(str::to_string),
            },
        }
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl From<OpError> for ApiFailure {
    fn from(e: OpError) -> Self {
        let msg = crate::report::chain(&e);
        match &e {
            OpError::UnknownCredential(_) => ApiFailure::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                msg,
                Some("check the credential name against the agent's health"),
            ),
            OpError::Dead { agent, name, .. } => ApiFailure {
                status: StatusCode::CONFLICT,
                body: ApiError {
                    code: ErrorCode::CredentialDead,
                    message: msg,
                    hint: Some(format!(
                        "the owner must re-authorize: run `tether reauth {agent}/{name}` on the paired laptop, or click Re-authorize in the tray"
                    )),
                },
            },
            OpError::NoToken { agent, name } => ApiFailure {
                status: StatusCode::CONFLICT,
                body: ApiError {
                    code: ErrorCode::CredentialDead,
                    message: msg,
                    hint: Some(format!("run `tether reauth {agent}/{name}` to authorize it")),
                },
            },
            OpError::Provider { source, .. } => match source.class {
                ErrorClass::Transient { .. } => ApiFailure::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::ProviderUnavailable,
                    msg,
                    Some("the provider failed temporarily; retry later"),
                ),
                _ => ApiFailure::new(StatusCode::BAD_GATEWAY, ErrorCode::ProviderError, msg, None),
            },
            OpError::Vault { .. } => {
                ApiFailure::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, msg, Some("see the vault locations in the agent's health"))
            }
            OpError::Session(SessionError::StateMismatch) => {
                ApiFailure::new(StatusCode::BAD_REQUEST, ErrorCode::StateMismatch, msg, None)
            }
            OpError::Session(_) => ApiFailure::new(StatusCode::GONE, ErrorCode::SessionExpired, msg, None),
            OpError::WrongKind { .. } => ApiFailure::new(StatusCode::CONFLICT, ErrorCode::WrongKind, msg, None),
            OpError::WrongAccount { .. } => ApiFailure::new(StatusCode::CONFLICT, ErrorCode::WrongAccount, msg, None),
            OpError::BadRequest(_) | OpError::Redirect(_) => ApiFailure::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, msg, None),
            OpError::ShuttingDown => ApiFailure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ProviderUnavailable,
                msg,
                None,
            ),
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

pub(crate) fn authenticate(
    parts: &Parts,
    daemon: &Daemon,
    role: Role,
) -> Result<Principal, ApiFailure> {
    let token = bearer(parts).ok_or_else(|| {
        ApiFailure::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "missing bearer token",
            Some("send `Authorization: Bearer <token>`; pair with `tether pair CODE` or make an agent token with `tether agent token create NAME`"),
        )
    })?;
    let p = daemon.auth.authenticate(token).ok_or_else(|| {
        ApiFailure::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "unknown or revoked token",
            Some("pair again (`tether agent pair`) or make a new agent token"),
        )
    })?;
    if p.role != role {
        return Err(ApiFailure::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!(
                "a {} token cannot use this route; it needs a {} token",
                p.role.as_str(),
                role.as_str()
            ),
            None,
        ));
    }
    Ok(p)
}

/// A caller holding a device token (the companion).
pub struct DeviceAuth(pub Principal);
/// A caller holding an agent token (the user's agent).
pub struct AgentAuth(pub Principal);

impl FromRequestParts<Arc<Daemon>> for DeviceAuth {
    type Rejection = ApiFailure;
    async fn from_request_parts(parts: &mut Parts, d: &Arc<Daemon>) -> Result<Self, ApiFailure> {
        authenticate(parts, d, Role::Device).map(DeviceAuth)
    }
}

impl FromRequestParts<Arc<Daemon>> for AgentAuth {
    type Rejection = ApiFailure;
    async fn from_request_parts(parts: &mut Parts, d: &Arc<Daemon>) -> Result<Self, ApiFailure> {
        authenticate(parts, d, Role::Agent).map(AgentAuth)
    }
}

/// A JSON body with JSON errors: 413 over the cap, 408 when it does not arrive within
/// the daemon's `request_timeout`, 400 when malformed or with unknown fields.
pub struct Body<T>(pub T);

/// The request body, at most [`MAX_BODY_BYTES`] and within the daemon's request deadline,
/// with JSON errors.
async fn body_bytes(req: Request, state: &Arc<Daemon>) -> Result<axum::body::Bytes, ApiFailure> {
    let deadline = state.config.request_timeout;
    let read = axum::body::Bytes::from_request(req, state);
    tokio::time::timeout(deadline, read)
        .await
        .map_err(|_| {
            ApiFailure::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::BadRequest,
                format!(
                    "the request body did not arrive within {} s",
                    deadline.as_secs_f32()
                ),
                Some("send the whole body at once, with Content-Length"),
            )
        })?
        .map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiFailure::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::PayloadTooLarge,
                    format!("request body is larger than {MAX_BODY_BYTES} bytes"),
                    None,
                )
            } else {
                ApiFailure::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    "failed to read the request body",
                    None,
                )
            }
        })
}

fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiFailure> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("request body is not valid: {e}"),
            None,
        )
    })
}

impl<T: DeserializeOwned> FromRequest<Arc<Daemon>> for Body<T> {
    type Rejection = ApiFailure;
    async fn from_request(req: Request, state: &Arc<Daemon>) -> Result<Self, ApiFailure> {
        let bytes = body_bytes(req, state).await?;
        parse_body(&bytes).map(Body)
    }
}

/// Like [`Body`], for routes whose body is optional: an empty body is `None`.
pub struct OptionalBody<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<Arc<Daemon>> for OptionalBody<T> {
    type Rejection = ApiFailure;
    async fn from_request(req: Request, state: &Arc<Daemon>) -> Result<Self, ApiFailure> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(None));
        }
        parse_body(&bytes).map(|v| OptionalBody(Some(v)))
    }
}

/// A credential name from the path, checked before use.
pub struct CredName(pub String);

impl<S: Send + Sync> FromRequestParts<S> for CredName {
    type Rejection = ApiFailure;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiFailure> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                ApiFailure::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    "malformed path",
                    None,
                )
            })?;
        if !valid_credential_name(&name) {
            return Err(ApiFailure::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "invalid credential name: it must match [a-z0-9][a-z0-9_-]{0,63}",
                None,
            ));
        }
        Ok(CredName(name))
    }
}

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
        .merge(super::human_api::routes())
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
        Err(super::auth::AuthError::PairingInvalid | super::auth::AuthError::PairingExpired)
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
        Err(e @ super::auth::AuthError::BadName) => Err(ApiFailure::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            e.to_string(),
            None,
        )),
        Err(
            e @ (super::auth::AuthError::PairingInvalid | super::auth::AuthError::PairingExpired),
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
    let body = super::metrics::render(&d);
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
    super::agent_events::EventsCaller { principal, filter }: super::agent_events::EventsCaller,
) -> Sse<impl futures_util::Stream<Item = Result<sse::Event, std::convert::Infallible>>> {
    let rx = d.events.subscribe();
    // A device sees every change; an agent token only its own `recovered` events.
    let changes = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |r| {
        let kept = r.ok().filter(|ev| filter.keeps(ev));
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
        d.reauth_complete_as(
            &session,
            req.code,
            &req.state,
            &req.redirect_uri,
            req.new_account,
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
    Ok(Json(d.put_secret(&name, req.secret).await?))
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
        let _ = d.check(&cred).await;
        cred.wake.notify_one();
    }
    Ok(Json(cred.health()))
}

/// Forced checks of one credential (`POST .../check`) closer than this share the last one.
pub const CHECK_NOW_MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

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
    let (credential, token) = d.rejected(&name, &report).await?;
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
