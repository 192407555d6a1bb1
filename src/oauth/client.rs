//! The OAuth client registered with the provider: its id and, for a confidential client,
//! its secret. Every request half (authorize, token, probe, device) takes one.

use crate::secret::ClientSecret;

/// The OAuth client registered with the provider.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// The public client id.
    pub client_id: String,
    /// The client secret, for confidential clients (and Google "Desktop" clients).
    pub client_secret: Option<ClientSecret>,
}

impl ClientCredentials {
    /// A public client (PKCE, no secret).
    pub fn public(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: None,
        }
    }

    /// A confidential client.
    pub fn confidential(client_id: impl Into<String>, secret: ClientSecret) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: Some(secret),
        }
    }
}
