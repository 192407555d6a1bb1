//! Re-auth sessions: the daemon's half of a remote-bootstrap authorization. A session holds
//! the `state` and the PKCE verifier, expires (10 minutes by default) and can be taken
//! exactly once, so a replayed completion finds nothing.

use crate::oauth::PendingAuthorization;
use crate::protocol::RedirectRequirement;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Sessions kept at once; older ones are dropped first (a companion starting sessions in a
/// loop cannot grow the daemon's memory).
pub const MAX_SESSIONS: usize = 64;

/// Why a session cannot be completed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Unknown, already used, or expired.
    #[error(
        "re-auth session is unknown, already used or expired; start a new one with `tether reauth`"
    )]
    Gone,
    /// The callback's `state` is not the session's.
    #[error("the state in the callback does not match the re-auth session; the session is cancelled, start a new one with `tether reauth`")]
    StateMismatch,
}

/// One pending re-authorization. Not `Clone`: its verifier is spent by the exchange.
pub struct Session {
    /// The credential being re-authorized.
    pub credential: String,
    /// `state` and PKCE verifier.
    pub pending: PendingAuthorization,
    /// The redirect rule the companion was given.
    pub redirect: RedirectRequirement,
    deadline: Instant,
}

/// The open sessions.
pub struct Sessions {
    ttl: Duration,
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// An empty store whose sessions live `ttl`.
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Opens a session and returns its id and expiry.
    pub fn start(
        &self,
        credential: &str,
        pending: PendingAuthorization,
        redirect: RedirectRequirement,
    ) -> (String, DateTime<Utc>) {
        let id = crate::secret::random_token(24);
        let now = Instant::now();
        let expires_at = Utc::now()
            + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::minutes(10));
        // Invariant: the map is only touched in these short sections.
        let mut map = self.map.lock();
        map.retain(|_, s| s.deadline > now);
        while map.len() >= MAX_SESSIONS {
            let oldest = map
                .iter()
                .min_by_key(|(_, s)| s.deadline)
                .map(|(k, _)| k.clone())
                .expect("a full map has an oldest entry");
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Session {
                credential: credential.to_string(),
                pending,
                redirect,
                deadline: now + self.ttl,
            },
        );
        (id, expires_at)
    }

    /// Takes the session out (single use). Expired sessions are gone.
    pub fn take(&self, id: &str) -> Result<Session, SessionError> {
        let session = self.map.lock().remove(id).ok_or(SessionError::Gone)?;
        if session.deadline <= Instant::now() {
            return Err(SessionError::Gone);
        }
        Ok(session)
    }

    /// Number of open sessions (for tests and metrics).
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
