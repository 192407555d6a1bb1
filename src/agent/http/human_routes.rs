//! The agent's routes for "a human is needed" (agent token), merged into the API router:
//!
//! - `POST /v1/credentials/{name}/challenge` with a [`Challenge`] (re-post to refresh a QR);
//! - `DELETE /v1/credentials/{name}/challenge` or `POST .../resolved`: the session works;
//! - `POST /v1/credentials/{name}/report` with a [`SessionReport`];
//! - `POST /v1/credentials/{name}/device-reauth` (device token): the daemon starts a
//!   device-code re-authorization and posts its code as the challenge.
//!
//! Each answers with the credential's health.

use crate::agent::daemon::Daemon;
use crate::agent::http::error_reply::ApiFailure;
use crate::agent::http::extract::{AgentAuth, Body, CredName, DeviceAuth};
use crate::protocol::{Challenge, CredentialHealth, SessionReport};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use std::sync::Arc;

/// The routes, to be merged before the router's layers are applied.
pub fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route(
            "/v1/credentials/{name}/challenge",
            post(post_challenge).delete(resolved),
        )
        .route("/v1/credentials/{name}/resolved", post(resolved))
        .route("/v1/credentials/{name}/report", post(report))
        .route("/v1/credentials/{name}/device-reauth", post(device_reauth))
}

async fn device_reauth(
    State(d): State<Arc<Daemon>>,
    _a: DeviceAuth,
    CredName(name): CredName,
) -> Result<Json<CredentialHealth>, ApiFailure> {
    Ok(Json(d.device_reauth(&name).await?))
}

async fn post_challenge(
    State(d): State<Arc<Daemon>>,
    _a: AgentAuth,
    CredName(name): CredName,
    Body(challenge): Body<Challenge>,
) -> Result<Json<CredentialHealth>, ApiFailure> {
    Ok(Json(d.post_challenge(&name, challenge).await?))
}

async fn resolved(
    State(d): State<Arc<Daemon>>,
    _a: AgentAuth,
    CredName(name): CredName,
) -> Result<Json<CredentialHealth>, ApiFailure> {
    Ok(Json(d.resolve_challenge(&name).await?))
}

async fn report(
    State(d): State<Arc<Daemon>>,
    _a: AgentAuth,
    CredName(name): CredName,
    Body(report): Body<SessionReport>,
) -> Result<Json<CredentialHealth>, ApiFailure> {
    Ok(Json(d.agent_report(&name, report).await?))
}
