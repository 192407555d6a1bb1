//! Provider resolution: the provider a credential's config describes (preset, overrides,
//! OIDC discovery for an `issuer`), as typed methods on [`CredentialConfig`].

use super::credential::CredentialConfig;
use crate::provider::{self, Provider, ProviderError, ProviderOverrides};

/// Why a credential's provider could not be resolved by OIDC discovery; the checker retries
/// it at the next check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The configured issuer does not parse.
    #[error("issuer {issuer:?} is not a URL")]
    BadIssuer {
        /// The issuer as configured.
        issuer: String,
        /// The parse error.
        #[source]
        source: url::ParseError,
    },
    /// The issuer's metadata could not be fetched or used.
    #[error("discovery at {issuer} failed")]
    Failed {
        /// The issuer.
        issuer: String,
        /// The cause.
        #[source]
        source: provider::DiscoveryError,
    },
    /// The discovered provider, with the credential's overrides, is not usable.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl CredentialConfig {
    /// The provider without discovery: the preset with the overrides applied, validated
    /// unless an `issuer` is set (then the endpoints come from [`Self::discover_provider`]).
    /// Returns whether discovery is still needed.
    pub fn base_provider(&self) -> Result<(Provider, bool), ProviderError> {
        if self.is_session() {
            return Ok((session_provider(&self.provider), false));
        }
        let mut p = provider::preset_or_error(&self.provider)?;
        self.apply_overrides(&mut p)?;
        let needs_discovery = self.issuer.is_some();
        if !needs_discovery {
            p.validate()?;
            self.check_reauth_mode(&p)?;
        }
        Ok((p, needs_discovery))
    }

    /// The provider found by OIDC discovery at `issuer`, with the credential's overrides
    /// applied. A client without a secret (`public_client`) never gets introspection as its
    /// probe (RFC 7662 needs the caller to authenticate); a probe the owner configures is
    /// kept.
    pub async fn discover_provider(
        &self,
        http: &reqwest::Client,
        issuer: &str,
        public_client: bool,
    ) -> Result<Provider, ResolveError> {
        let url = url::Url::parse(issuer).map_err(|source| ResolveError::BadIssuer {
            issuer: issuer.to_string(),
            source,
        })?;
        let mut p =
            provider::discover(http, &url)
                .await
                .map_err(|source| ResolveError::Failed {
                    issuer: issuer.to_string(),
                    source,
                })?;
        if public_client {
            p.for_public_client();
        }
        self.apply_overrides(&mut p)?;
        p.validate()?;
        self.check_reauth_mode(&p)?;
        Ok(p)
    }

    /// `reauth = "device"` needs a device authorization endpoint (from the preset, the
    /// overrides or the issuer's discovery document).
    fn check_reauth_mode(&self, p: &Provider) -> Result<(), ProviderError> {
        if self.reauth == super::credential::ReauthMode::Device
            && p.device_authorization_url.is_none()
        {
            return Err(ProviderError::MissingEndpoint {
                provider: p.name.clone(),
                field: "device_authorization_url (reauth = \"device\" needs it)",
            });
        }
        Ok(())
    }

    fn apply_overrides(&self, p: &mut Provider) -> Result<(), ProviderError> {
        if let Some(table) = &self.overrides {
            let o: ProviderOverrides = table.clone().try_into().map_err(|e: toml::de::Error| {
                ProviderError::InvalidOverride {
                    provider: self.provider.clone(),
                    field: "overrides",
                    reason: e.to_string(),
                }
            })?;
            p.apply(&o)?;
        }
        Ok(())
    }
}

/// The provider entry of a session credential: a label with no endpoints, so nothing
/// ever calls out and the re-auth kind is `none` (the fix is the agent's challenge).
pub fn session_provider(label: &str) -> Provider {
    // Invariant: `generic` is in the built-in catalog.
    let mut p = crate::provider::preset("generic").expect("generic preset exists");
    p.name = if label.is_empty() {
        "session".into()
    } else {
        label.to_string()
    };
    p.auth_url = None;
    p.token_url = None;
    p.revoke_url = None;
    p.probe = None;
    p.probe_fallbacks.clear();
    p
}
