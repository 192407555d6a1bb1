//! The client's errors, and the contact classes the watcher and `tether status` show.

use super::sse::SseError;
use crate::protocol::{ApiError, ErrorCode};

/// Which side must be upgraded when the protocol versions differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpgradeSide {
    /// The agent daemon is older.
    Agent,
    /// This computer's tether is older.
    Companion,
}

/// Errors talking to an agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL cannot be used.
    #[error("agent url `{url}` is not usable: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The fingerprint is not 64 hex digits.
    #[error(transparent)]
    BadFingerprint(#[from] crate::pin::BadFingerprint),
    /// The TLS client could not be built.
    #[error("cannot set up tls for agent {agent}: {reason}")]
    Tls {
        /// The agent.
        agent: String,
        /// Why.
        reason: String,
    },
    /// The agent presented a different certificate than the pinned one.
    #[error("agent {agent} at {url} presented a certificate that does not match the pinned fingerprint (expected {expected}, got {got}); if the agent's certificate was regenerated, pair again; otherwise something is intercepting the connection")]
    CertificateMismatch {
        /// The agent.
        agent: String,
        /// Its URL.
        url: String,
        /// The pinned fingerprint.
        expected: String,
        /// The fingerprint seen.
        got: String,
    },
    /// No answer: network down, daemon stopped, DNS, TLS failure, timeout.
    #[error("agent {agent} at {url} is unreachable (check that `tether agent serve` runs there and that this computer can reach the address): {reason}")]
    Unreachable {
        /// The agent.
        agent: String,
        /// Its URL.
        url: String,
        /// What failed (the error chain, one line).
        reason: String,
    },
    /// The device token is revoked or unknown.
    #[error("agent {agent} no longer accepts this computer (device token revoked or unknown); pair again: run `tether agent pair` on the agent, then `tether pair CODE` here")]
    Unauthorized {
        /// The agent.
        agent: String,
    },
    /// The two sides speak different protocol versions.
    #[error("agent {agent} speaks protocol {theirs} but this tether speaks {ours}; {}", upgrade_hint(*.upgrade))]
    ProtocolMismatch {
        /// The agent.
        agent: String,
        /// Our version.
        ours: u32,
        /// Theirs (0 when the agent does not serve this protocol at all).
        theirs: u32,
        /// Who must upgrade.
        upgrade: UpgradeSide,
    },
    /// The daemon answered with an error.
    #[error("agent {agent}: {}{}", .error.message, .error.hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    Api {
        /// The agent.
        agent: String,
        /// HTTP status.
        status: u16,
        /// The daemon's `{code, message, hint}`.
        error: ApiError,
    },
    /// The daemon's reply was not what the protocol says.
    #[error("agent {agent} sent a malformed reply to {what}: {reason}")]
    BadReply {
        /// The agent.
        agent: String,
        /// Which call.
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// The event stream broke its framing rules.
    #[error("agent {agent}: the event stream is broken")]
    Stream {
        /// The agent.
        agent: String,
        /// The framing error.
        source: SseError,
    },
}

fn upgrade_hint(side: UpgradeSide) -> &'static str {
    match side {
        UpgradeSide::Agent => "upgrade tether on the agent's server",
        UpgradeSide::Companion => "upgrade tether on this computer",
    }
}

/// How a contact attempt went, for the watcher and `tether status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactClass {
    /// The agent answered and speaks our protocol.
    Ready,
    /// The device token was refused.
    Unauthorized,
    /// The protocol versions differ.
    ProtocolMismatch,
    /// No usable answer.
    Unreachable,
}

impl ClientError {
    /// Classifies the error for contact state: everything that is not a refusal or a
    /// version problem counts as unreachable.
    pub fn class(&self) -> ContactClass {
        match self {
            ClientError::Unauthorized { .. } => ContactClass::Unauthorized,
            ClientError::ProtocolMismatch { .. } => ContactClass::ProtocolMismatch,
            _ => ContactClass::Unreachable,
        }
    }

    /// The daemon's error code, if it answered with one.
    pub fn api_code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { error, .. } => Some(error.code),
            _ => None,
        }
    }
}
