//! The daemon's error replies: `{code, message}` with an optional hint.

use serde::{Deserialize, Serialize};

/// Machine-readable error codes in [`ApiError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// No or unknown token.
    Unauthorized,
    /// A token of the wrong role.
    Forbidden,
    /// Unknown credential, session or route.
    NotFound,
    /// Malformed request.
    BadRequest,
    /// Body over [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES).
    PayloadTooLarge,
    /// Too many attempts.
    RateLimited,
    /// The credential is dead; re-authorize.
    CredentialDead,
    /// The re-auth session is unknown, used or expired.
    SessionExpired,
    /// The `state` did not match.
    StateMismatch,
    /// The provider refused (code and description in the message).
    ProviderError,
    /// The provider could not be reached or failed transiently.
    ProviderUnavailable,
    /// The operation does not apply to this credential (e.g. paste on an OAuth one).
    WrongKind,
    /// A re-authorization signed in as another account than the credential's.
    WrongAccount,
    /// The token's role may use the route, but the credential's config (or the daemon's
    /// own challenge) does not allow it: the message names the setting.
    NotAllowed,
    /// Anything else.
    Internal,
    /// A code this side does not know (a newer daemon's).
    #[serde(other)]
    Unknown,
}

/// Every error reply from the daemon: `{code, message}` plus an optional hint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// What failed, on which object.
    pub message: String,
    /// How to fix it.
    #[serde(default)]
    pub hint: Option<String>,
}
