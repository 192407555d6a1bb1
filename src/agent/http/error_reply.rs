//! The API's error reply: an HTTP status and a JSON [`ApiError`] (`{code, message, hint}`),
//! and how each [`OpError`] maps to one.

use crate::agent::access::reauth_sessions::SessionError;
use crate::agent::error::OpError;
use crate::oauth::ErrorClass;
use crate::protocol::{ApiError, ErrorCode};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

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
            OpError::ChallengeRefused { .. } => ApiFailure::new(StatusCode::FORBIDDEN, ErrorCode::NotAllowed, msg, None),
            OpError::RateLimited { .. } => ApiFailure::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, msg, None),
            OpError::WrongAccount { .. } => ApiFailure::new(StatusCode::CONFLICT, ErrorCode::WrongAccount, msg, None),
            OpError::BadRequest(_) | OpError::BadChallenge(_) | OpError::Redirect(_) => ApiFailure::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, msg, None),
            OpError::ShuttingDown => ApiFailure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ProviderUnavailable,
                msg,
                None,
            ),
        }
    }
}
