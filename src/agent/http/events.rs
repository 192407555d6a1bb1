//! Who sees which events on `GET /v1/events`: a device (the companion) sees every state
//! change; the user's agent, with its agent token, sees only `recovered` (and
//! `scopes_missing`, when a new grant works but lacks a configured scope) for the
//! credentials it asks about (`?credential=whatsapp`, or all without it), so it resumes the
//! moment the owner has fixed things instead of at its next cron run.

use crate::agent::access::auth::{Principal, Role};
use crate::agent::daemon::Daemon;
use crate::agent::http::error_reply::ApiFailure;
use crate::agent::http::extract::authenticate;
use crate::protocol::{valid_credential_name, ErrorCode, Event};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use std::sync::Arc;

/// Which events one stream carries.
#[derive(Debug, Clone)]
pub enum StreamFilter {
    /// A device: everything except the agent's own `recovered` and `scopes_missing`
    /// events (a device reads the same news from the state change).
    Device,
    /// The agent: `recovered` and `scopes_missing` only, for one credential or all.
    Agent {
        /// The credential asked about (`?credential=NAME`), or all.
        credential: Option<String>,
    },
}

impl StreamFilter {
    /// True when the stream carries `ev`. (Heartbeats are added to every stream apart.)
    pub fn keeps(&self, ev: &Event) -> bool {
        match (self, ev) {
            (StreamFilter::Device, Event::Recovered { .. } | Event::ScopesMissing { .. }) => false,
            (StreamFilter::Device, _) => true,
            (
                StreamFilter::Agent { credential },
                Event::Recovered { credential: c, .. } | Event::ScopesMissing { credential: c, .. },
            ) => credential.as_deref().is_none_or(|want| want == c),
            (StreamFilter::Agent { .. }, _) => false,
        }
    }
}

/// The caller of `/v1/events` (a device or agent token) and its filter.
pub struct EventsCaller {
    /// Who holds the token (checked again on every event: a revoked token ends the stream).
    pub principal: Principal,
    /// What the stream carries.
    pub filter: StreamFilter,
}

impl FromRequestParts<Arc<Daemon>> for EventsCaller {
    type Rejection = ApiFailure;
    async fn from_request_parts(parts: &mut Parts, d: &Arc<Daemon>) -> Result<Self, ApiFailure> {
        let principal = match authenticate(parts, d, Role::Device) {
            Ok(p) => p,
            Err(e) if e.status == StatusCode::FORBIDDEN => authenticate(parts, d, Role::Agent)?,
            Err(e) => return Err(e),
        };
        let filter = match principal.role {
            Role::Device => StreamFilter::Device,
            Role::Agent => {
                let mut credential = None;
                for (k, v) in
                    url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                {
                    if k == "credential" {
                        if !valid_credential_name(&v) || d.credential(&v).is_err() {
                            return Err(ApiFailure::new(
                                StatusCode::NOT_FOUND,
                                ErrorCode::NotFound,
                                format!("credential {v:?} is not configured on this agent"),
                                Some("check the credential name against the agent's health"),
                            ));
                        }
                        credential = Some(v.into_owned());
                    }
                }
                StreamFilter::Agent { credential }
            }
        };
        Ok(EventsCaller { principal, filter })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn recovered(name: &str) -> Event {
        Event::Recovered {
            agent: "studio".into(),
            credential: name.into(),
            pending: None,
            at: Utc::now(),
        }
    }

    #[test]
    fn agents_hear_only_their_recoveries_and_devices_never_do() {
        let one = StreamFilter::Agent {
            credential: Some("whatsapp".into()),
        };
        assert!(one.keeps(&recovered("whatsapp")));
        assert!(!one.keeps(&recovered("youtube")));
        assert!(StreamFilter::Agent { credential: None }.keeps(&recovered("youtube")));
        assert!(!StreamFilter::Device.keeps(&recovered("youtube")));
        let scopes = Event::ScopesMissing {
            agent: "studio".into(),
            credential: "whatsapp".into(),
            missing: vec!["email".into()],
            description: "missing scope email".into(),
            at: Utc::now(),
        };
        assert!(one.keeps(&scopes));
        assert!(!StreamFilter::Device.keeps(&scopes));
        let beat = Event::Heartbeat { at: Utc::now() };
        assert!(StreamFilter::Device.keeps(&beat));
        assert!(!one.keeps(&beat));
    }
}
