//! Re-authorization messages: where the companion listens for the provider's redirect,
//! the session the daemon starts, the code the companion sends back, and a pasted token.

use crate::secret::{AccessToken, AuthorizationCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
