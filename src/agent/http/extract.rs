//! The API's extractors: the caller's role from its bearer token, JSON bodies within the
//! size cap and the request deadline, and credential names checked before use.

use crate::agent::access::auth::{Principal, Role};
use crate::agent::access::conn_limit::Slot;
use crate::agent::daemon::Daemon;
use crate::agent::http::error_reply::ApiFailure;
use crate::protocol::{valid_credential_name, ErrorCode, MAX_BODY_BYTES};
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::Arc;

/// The peer address of a connection (set by the server for every connection).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

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
    // A valid token, whatever its role: the connection belongs to a principal and keeps
    // its place (see `conn_limit`).
    if let Some(slot) = parts.extensions.get::<Arc<Slot>>() {
        slot.authenticated();
    }
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
