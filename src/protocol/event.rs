//! The event stream (`GET /v1/events`): one [`Event`] per server-sent event.

use super::health::{CredentialHealth, VaultHealth};
use super::human::PendingWork;
use super::state::CredentialState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
