//! Authorization requests: the random `state`, the PKCE verifier and the authorization URL,
//! built without a `redirect_uri` so the side that owns the verifier need not own the
//! listener.

use super::client::ClientCredentials;
use super::error::OAuthError;
use super::pkce::PkceVerifier;
use crate::provider::{ErrorClass, Provider};
use crate::secret::random_token;
use oauth2::{AuthUrl, ClientId, CsrfToken, Scope};
use url::Url;

/// Bytes of randomness in a `state` (256 bits; the floor is 128).
const STATE_BYTES: usize = 32;

/// What the verifier's owner keeps until the callback comes back. Not `Clone`: it is
/// consumed by [`exchange`](super::exchange).
#[derive(Debug)]
pub struct PendingAuthorization {
    /// The `state` the provider will echo (URL-safe, 256 random bits).
    pub state: String,
    /// The single-use PKCE verifier.
    pub verifier: PkceVerifier,
}

/// An authorization URL without `redirect_uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationUrl(Url);

impl AuthorizationUrl {
    /// Reads an authorization URL sent over the wire (the daemon's `authorize_url`). It
    /// must be http(s) and carry no `redirect_uri` yet.
    pub fn parse(s: &str) -> Result<Self, OAuthError> {
        let bad = |why: String| {
            OAuthError::new(
                "authorization",
                ErrorClass::Misconfigured,
                "invalid_authorize_url",
                &why,
            )
        };
        let url = Url::parse(s).map_err(|e| bad(format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(bad(format!("scheme `{}` is not http(s)", url.scheme())));
        }
        if url.query_pairs().any(|(k, _)| k == "redirect_uri") {
            return Err(bad("it already has a redirect_uri".into()));
        }
        Ok(AuthorizationUrl(url))
    }

    /// The URL with the listener's `redirect_uri` added: what the browser opens.
    pub fn with_redirect_uri(&self, redirect_uri: &str) -> Url {
        let mut url = self.0.clone();
        url.query_pairs_mut()
            .append_pair("redirect_uri", redirect_uri);
        url
    }

    /// The URL as a string (no `redirect_uri`).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.0
    }
}

/// Builds authorization requests.
pub struct AuthorizationRequest;

impl AuthorizationRequest {
    /// A new request for `scopes` (the provider's defaults when empty): a fresh `state`, a
    /// fresh PKCE verifier, and the URL with client id, scopes, challenge and the preset's
    /// extra parameters. Fails when the provider has no authorization endpoint.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(
        provider: &Provider,
        client: &ClientCredentials,
        scopes: &[String],
    ) -> Result<(PendingAuthorization, AuthorizationUrl), OAuthError> {
        let auth_url = provider.auth_url.clone().ok_or_else(|| {
            OAuthError::new(
                &provider.name,
                ErrorClass::Misconfigured,
                "missing_endpoint",
                "no authorization endpoint: set auth_url or use discovery",
            )
        })?;
        let state = random_token(STATE_BYTES);
        let (verifier, challenge) = PkceVerifier::generate(provider.pkce);
        let scopes = if scopes.is_empty() {
            &provider.default_scopes
        } else {
            scopes
        };
        let joined = scopes.join(&provider.scope_separator);

        let oauth_client = oauth2::basic::BasicClient::new(ClientId::new(client.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(auth_url));
        let request_state = state.clone();
        let mut req = oauth_client.authorize_url(move || CsrfToken::new(request_state));
        if !joined.is_empty() {
            req = if provider.scope_param == "scope" {
                // One pre-joined scope keeps the provider's separator (TikTok: comma).
                req.add_scope(Scope::new(joined))
            } else {
                req.add_extra_param(provider.scope_param.clone(), joined)
            };
        }
        if let Some((challenge, method)) = challenge {
            req = req
                .add_extra_param("code_challenge", challenge)
                .add_extra_param("code_challenge_method", method);
        }
        for (k, v) in &provider.auth_params {
            req = req.add_extra_param(k.clone(), v.clone());
        }
        let (mut url, _) = req.url();
        if provider.client_id_param != "client_id" {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let k = if k == "client_id" {
                        provider.client_id_param.clone()
                    } else {
                        k.into_owned()
                    };
                    (k, v.into_owned())
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        Ok((
            PendingAuthorization { state, verifier },
            AuthorizationUrl(url),
        ))
    }
}
