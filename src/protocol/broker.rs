//! The user's agent's messages (agent token): a fresh access token, and the report that
//! an API refused the last one with the daemon's answer.

use super::health::CredentialHealth;
use crate::secret::AccessToken;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `GET /v1/credentials/{name}/access-token` reply.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessTokenReply {
    /// The credential name.
    pub credential: String,
    /// A fresh access token.
    pub access_token: AccessToken,
    /// Usually `Bearer`.
    pub token_type: String,
    /// When it stops working, if known.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// `POST /v1/credentials/{name}/rejected` request (agent token): "the API refused the
/// access token you gave me". Every field is optional; an empty body is fine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectedReport {
    /// The HTTP status the API answered (401, 403, ...).
    #[serde(default)]
    pub status: Option<u16>,
    /// What the API said, for the daemon's log (never a secret: do not send the token).
    #[serde(default)]
    pub detail: Option<String>,
    /// Jobs waiting because of it (0 clears).
    #[serde(default)]
    pub pending: Option<u64>,
    /// When the oldest waiting job was queued.
    #[serde(default)]
    pub oldest: Option<DateTime<Utc>>,
    /// What the jobs are, plural noun ("uploads").
    #[serde(default)]
    pub what: Option<String>,
}

/// `POST /v1/credentials/{name}/rejected` reply: the credential after one confirming
/// refresh test and, while it is alive, a fresh access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct RejectedReply {
    /// The credential's health after the confirming refresh test.
    pub credential: CredentialHealth,
    /// A fresh access token, when the credential is alive.
    #[serde(default)]
    pub token: Option<AccessTokenReply>,
}
