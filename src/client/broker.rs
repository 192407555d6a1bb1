//! The user's agent's calls (agent token): a fresh access token, and the report that the
//! API refused the last one. `tether token` is a thin layer over these.

use super::connection::AgentClient;
use super::error::ClientError;
use crate::protocol::{AccessTokenReply, RejectedReply, RejectedReport};
use std::time::Duration;

/// Timeout for a broker call: the daemon may refresh at the provider first, bounded by its
/// own provider timeout, so this allows more than an ordinary request.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(60);

impl AgentClient {
    /// `GET /v1/credentials/{name}/access-token`: a fresh access token.
    pub async fn access_token(&self, credential: &str) -> Result<AccessTokenReply, ClientError> {
        self.check_name(credential)?;
        self.send_json_within(
            "access-token request",
            self.request(
                reqwest::Method::GET,
                self.api(&format!("credentials/{credential}/access-token")),
            ),
            BROKER_TIMEOUT,
        )
        .await
    }

    /// `POST /v1/credentials/{name}/rejected`: "the API refused the token you gave me".
    /// The daemon drops it, runs one confirming refresh test and answers with the
    /// credential and, while it is alive, a fresh token.
    pub async fn rejected(
        &self,
        credential: &str,
        report: &RejectedReport,
    ) -> Result<RejectedReply, ClientError> {
        self.check_name(credential)?;
        self.send_json_within(
            "rejected report",
            self.request(
                reqwest::Method::POST,
                self.api(&format!("credentials/{credential}/rejected")),
            )
            .json(report),
            BROKER_TIMEOUT,
        )
        .await
    }
}
