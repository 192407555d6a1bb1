//! Wire types shared by the agent daemon and the companion, and the protocol version.
//!
//! Both sides use these types, so a change here is a change to the protocol. New fields
//! are `#[serde(default)]` so an older peer still parses a newer reply; anything that
//! breaks that rule bumps [`PROTOCOL_VERSION`].
//!
//! Files: `protocol.rs` (constants, states, events, re-auth and broker messages, error
//! replies), `protocol/health.rs` (the health report and its parts), `protocol/pairing.rs`
//! (pairing codes and the pair exchange), `protocol/human.rs` (challenges, pending work
//! and session reports from the user's agent).

use crate::secret::{AccessToken, AuthorizationCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod health;
mod human;
mod pairing;
pub use health::{
    location_problem_words, Cadence, ChannelHealth, CredentialHealth, HaHealth, HealthReport,
    LocationHealth, ProbeHealth, VaultHealth,
};
pub use human::{
    check_link, Challenge, ChallengeError, ChallengeOrigin, PendingWork, PostedChallenge,
    SessionReport, MAX_CHALLENGE_TEXT, MAX_QR_PAYLOAD,
};
pub use pairing::{PairRequest, PairResponse, PairingCode, PairingCodeError};

/// Version of the HTTP protocol spoken under [`API_PREFIX`]. Every health reply carries it.
pub const PROTOCOL_VERSION: u32 = 1;
/// Every authenticated route lives under this prefix.
pub const API_PREFIX: &str = "/v1";
/// Largest request body the daemon accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The URL scheme of pairing links (`tether://pair?...`).
pub const PAIR_LINK_PREFIX: &str = "tether://pair?";

/// Health of one credential, worst last so `max()` gives the worst state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialState {
    /// Never checked since the daemon started.
    Unchecked,
    /// The last check worked.
    Ok,
    /// Works, but the refresh token has a known end inside the warning window.
    Expiring,
    /// Transient trouble (network, 5xx, rate limit); retried with backoff, not dead.
    Degraded,
    /// The provider said the grant is gone: a human must re-authorize.
    Dead,
    /// A state this side does not know (a newer peer's): shown as `unknown`, never a reason
    /// to refuse the whole reply.
    #[serde(other)]
    Unknown,
}

impl CredentialState {
    /// Rank for "worst state" decisions (tray colour, exit codes).
    pub fn severity(self) -> u8 {
        match self {
            CredentialState::Ok => 0,
            CredentialState::Unchecked | CredentialState::Unknown => 1,
            CredentialState::Expiring => 2,
            CredentialState::Degraded => 3,
            CredentialState::Dead => 4,
        }
    }

    /// Lower-case name as used on the wire and in texts.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialState::Unchecked => "unchecked",
            CredentialState::Ok => "ok",
            CredentialState::Expiring => "expiring",
            CredentialState::Degraded => "degraded",
            CredentialState::Dead => "dead",
            CredentialState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for CredentialState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a dead credential is brought back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReauthKind {
    /// Browser consent through the loopback listener.
    Oauth,
    /// The owner pastes a new token (Telegram bot token, GitHub PAT).
    Paste,
    /// Tether cannot re-arm it.
    None,
    /// A way this side does not know (a newer peer's).
    #[serde(other)]
    Unknown,
}

/// A provider's error, as shown to the owner: never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// Machine-readable code, e.g. `invalid_grant`.
    pub code: String,
    /// Human-readable description from the provider or from Tether.
    pub description: String,
}

impl std::fmt::Display for ErrorInfo {
    /// `code: description`, or the code alone when the provider sent no description
    /// (never a dangling separator).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.description.trim();
        if d.is_empty() {
            f.write_str(self.code.trim())
        } else {
            write!(f, "{}: {d}", self.code.trim())
        }
    }
}

/// One server-sent event from `GET /v1/events` (the SSE `data:` line is this JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// Events are built, sent and dropped at once; boxing the big variant would only add an
// allocation per state change.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// A credential changed state (or its details changed).
    StateChanged {
        /// The agent's name.
        agent: String,
        /// The state before.
        previous: CredentialState,
        /// The credential now.
        credential: CredentialHealth,
    },
    /// The vault's health changed: a location failed or recovered, or a copy was repaired.
    /// (Older companions skip event types they do not know.)
    VaultChanged {
        /// The agent's name.
        agent: String,
        /// The vault now.
        vault: VaultHealth,
    },
    /// A credential that was dead works again. Sent only on the agent's own stream
    /// (`GET /v1/events` with an agent token), so the agent resumes at once.
    Recovered {
        /// The agent's name.
        agent: String,
        /// The credential.
        credential: String,
        /// The work the agent said was waiting.
        #[serde(default)]
        pending: Option<PendingWork>,
        /// When it recovered.
        at: DateTime<Utc>,
    },
    /// A new grant (a re-authorization) or a refresh works but lacks configured scopes:
    /// the credential is `degraded`, not recovered. Sent only on the agent's own stream,
    /// so an agent waiting for `recovered` learns that the owner's re-authorization left
    /// boxes unticked instead of waiting on. A later grant that covers them all sends
    /// `recovered`.
    ScopesMissing {
        /// The agent's name.
        agent: String,
        /// The credential.
        credential: String,
        /// The configured scopes the grant lacks, as configured.
        missing: Vec<String>,
        /// In words, with the fix ("missing scope youtube.upload: re-authorize and leave
        /// every box ticked").
        description: String,
        /// When the grant was recorded.
        at: DateTime<Utc>,
    },
    /// The stream fell behind and events were dropped (a slow reader): whatever it shows
    /// may be stale, so the reader fetches health (a device) or its credential's state (an
    /// agent) again. Sent on every stream, instead of losing events silently.
    Resync {
        /// Events dropped.
        missed: u64,
        /// Server time.
        at: DateTime<Utc>,
    },
    /// Sent every few seconds so the companion knows the stream is alive.
    Heartbeat {
        /// Server time.
        at: DateTime<Utc>,
    },
}

/// Port rule for the loopback redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedirectPort {
    /// Any free port (bind port 0).
    Any,
    /// Exactly this port (the provider matches the registered URI exactly).
    Fixed(u16),
}

/// Where the companion must listen for the provider's redirect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectRequirement {
    /// Host name to put in `redirect_uri` (`127.0.0.1`, or `localhost` for Microsoft).
    pub host: String,
    /// Port rule.
    pub port: RedirectPort,
    /// Path of the callback, e.g. `/callback`.
    pub path: String,
}

/// `POST /v1/credentials/{name}/reauth` reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReauthStart {
    /// Session id for the completion call.
    pub session: String,
    /// The credential being re-authorized.
    pub credential: String,
    /// Authorization URL without `redirect_uri`; the companion appends it.
    pub authorize_url: String,
    /// The `state` the provider will echo; the listener checks it.
    pub state: String,
    /// Where to listen.
    pub redirect: RedirectRequirement,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}

/// `POST /v1/reauth/{session}/complete` request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReauthComplete {
    /// The authorization code from the redirect.
    pub code: AuthorizationCode,
    /// The `state` from the redirect.
    pub state: String,
    /// The exact `redirect_uri` used in the authorization request.
    pub redirect_uri: String,
    /// Replace the credential's account by the one just signed in (`--new-account`);
    /// sent only when true, so older daemons still read the request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_account: bool,
}

/// `PUT /v1/credentials/{name}/secret` request (paste-kind credentials).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretPut {
    /// The new token.
    pub secret: AccessToken,
    /// Let a token of another account replace the credential's (sent only when true, so
    /// older daemons still read the request).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_account: bool,
}

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
    /// Body over [`MAX_BODY_BYTES`].
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

/// True when `name` is a valid credential name: `[a-z0-9][a-z0-9_-]{0,63}`.
pub fn valid_credential_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_info_never_dangles_a_separator() {
        let e = |c: &str, d: &str| ErrorInfo {
            code: c.into(),
            description: d.into(),
        };
        assert_eq!(e("invalid_grant", "").to_string(), "invalid_grant");
        assert_eq!(e("invalid_grant", "  ").to_string(), "invalid_grant");
        assert_eq!(
            e("invalid_grant", "Token has been expired or revoked.").to_string(),
            "invalid_grant: Token has been expired or revoked."
        );
    }

    #[test]
    fn credential_names() {
        assert!(valid_credential_name("youtube"));
        assert!(valid_credential_name("x_main-2"));
        assert!(!valid_credential_name(""));
        assert!(!valid_credential_name("-x"));
        assert!(!valid_credential_name("../etc"));
        assert!(!valid_credential_name("a/b"));
        assert!(!valid_credential_name("a\0b"));
        assert!(!valid_credential_name("YouTube"));
        assert!(!valid_credential_name(&"a".repeat(65)));
        assert!(valid_credential_name(&"a".repeat(64)));
    }

    #[test]
    fn state_severity_orders_worst_last() {
        assert!(CredentialState::Dead.severity() > CredentialState::Degraded.severity());
        assert!(CredentialState::Expiring.severity() > CredentialState::Ok.severity());
    }

    #[test]
    fn redirect_port_wire_form() {
        assert_eq!(
            serde_json::to_string(&RedirectPort::Any).unwrap(),
            "\"any\""
        );
        assert_eq!(
            serde_json::to_string(&RedirectPort::Fixed(8765)).unwrap(),
            "{\"fixed\":8765}"
        );
    }
}
