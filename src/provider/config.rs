//! A provider as configured: a preset by name ([`preset_or_error`]), the user's
//! [`ProviderOverrides`] layered on ([`Provider::apply`]), and the check the result must
//! pass ([`Provider::validate`]); [`ProviderError`] for each refusal.

use super::catalog::{preset, preset_names};
use super::classify::Classifier;
use super::endpoint::{check_endpoint, EndpointError};
use super::paste::PasteFormat;
use super::probe::{Probe, ProbeMethod};
use super::spec::{ChannelLookup, ClientAuth, CredentialKind, PkceMode, Provider};
use crate::protocol::RedirectPort;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use url::Url;

impl Provider {
    /// Layers the user's overrides on top of this provider; every set field wins.
    /// All or nothing: a refused override leaves the provider unchanged.
    pub fn apply(&mut self, o: &ProviderOverrides) -> Result<(), ProviderError> {
        let mut next = self.clone();
        next.apply_in_place(o)?;
        *self = next;
        Ok(())
    }

    fn apply_in_place(&mut self, o: &ProviderOverrides) -> Result<(), ProviderError> {
        let url = |field: &'static str, v: &Option<String>| -> Result<Option<Url>, ProviderError> {
            v.as_deref()
                .map(|s| parse_endpoint(&self.name, field, s))
                .transpose()
        };
        if let Some(u) = url("auth_url", &o.auth_url)? {
            self.auth_url = Some(u);
        }
        if let Some(u) = url("token_url", &o.token_url)? {
            self.token_url = Some(u);
        }
        if let Some(u) = url("revoke_url", &o.revoke_url)? {
            self.revoke_url = Some(u);
        }
        if let Some(u) = url("device_authorization_url", &o.device_authorization_url)? {
            self.device_authorization_url = Some(u);
        }
        if let Some(v) = &o.scopes {
            self.default_scopes = v.clone();
        }
        if let Some(v) = &o.scope_param {
            self.scope_param = v.clone();
        }
        if let Some(v) = &o.scope_separator {
            self.scope_separator = v.clone();
        }
        if let Some(v) = &o.client_id_param {
            self.client_id_param = v.clone();
        }
        if let Some(v) = &o.auth_params {
            self.auth_params = v.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        }
        if let Some(v) = o.pkce {
            self.pkce = v;
        }
        if let Some(v) = o.client_auth {
            self.client_auth = v;
        }
        if let Some(v) = &o.redirect_host {
            self.redirect.host = v.clone();
        }
        if let Some(p) = o.redirect_port {
            self.redirect.port = if p == 0 {
                RedirectPort::Any
            } else {
                RedirectPort::Fixed(p)
            };
        }
        if let Some(v) = &o.redirect_path {
            if !v.starts_with('/') {
                return Err(ProviderError::InvalidOverride {
                    provider: self.name.clone(),
                    field: "redirect_path",
                    reason: "it must start with `/`".into(),
                });
            }
            self.redirect.path = v.clone();
        }
        if let Some(v) = o.rotates_refresh_token {
            self.rotates_refresh_token = v;
        }
        if let Some(days) = o.refresh_token_lifetime_days {
            self.refresh_token_lifetime = (days > 0).then(|| Duration::from_secs(days * 24 * 3600));
        }
        if let Some(v) = o.classifier {
            self.classifier = v;
        }
        if o.probe_url.is_some() || o.probe_method.is_some() {
            let method = o
                .probe_method
                .or(self.probe.as_ref().map(|p| p.method))
                .unwrap_or(ProbeMethod::BearerGet);
            let url = match url("probe_url", &o.probe_url)? {
                Some(u) => u,
                None => match &self.probe {
                    Some(p) => p.url.clone(),
                    None => {
                        return Err(ProviderError::InvalidOverride {
                            provider: self.name.clone(),
                            field: "probe_method",
                            reason: "this provider has no probe: set probe_url too".into(),
                        })
                    }
                },
            };
            self.probe = Some(Probe { method, url });
        }
        if o.no_probe == Some(true) {
            self.probe = None;
            self.probe_fallbacks.clear();
        }
        if let Some(secs) = o.access_token_lifetime_secs {
            self.access_token_lifetime = (secs > 0).then(|| Duration::from_secs(secs));
        }
        if let Some(v) = o.paste_format {
            self.paste_format = v;
        }
        if let Some(u) = url("youtube_channels_url", &o.youtube_channels_url)? {
            self.youtube_channels = Some(ChannelLookup {
                url: u,
                needs_youtube_scope: false,
            });
        }
        Ok(())
    }

    /// Checks that an OAuth provider has its endpoints (a `generic` one without discovery
    /// or config has none), and that every URL obeys [`check_endpoint`].
    pub fn validate(&self) -> Result<(), ProviderError> {
        for (field, url) in self.endpoints() {
            check_endpoint(url).map_err(|problem| ProviderError::InsecureEndpoint {
                provider: self.name.clone(),
                field,
                problem,
            })?;
        }
        if self.kind == CredentialKind::OAuth {
            for (field, v) in [("auth_url", &self.auth_url), ("token_url", &self.token_url)] {
                if v.is_none() {
                    return Err(ProviderError::MissingEndpoint {
                        provider: self.name.clone(),
                        field,
                    });
                }
            }
        }
        Ok(())
    }
}

fn parse_endpoint(provider: &str, field: &'static str, s: &str) -> Result<Url, ProviderError> {
    let u = Url::parse(s).map_err(|e| ProviderError::InvalidOverride {
        provider: provider.to_owned(),
        field,
        reason: format!("`{s}` is not a URL ({e})"),
    })?;
    check_endpoint(&u).map_err(|e| ProviderError::InvalidOverride {
        provider: provider.to_owned(),
        field,
        reason: e.to_string(),
    })?;
    Ok(u)
}

/// A user's changes to a preset, e.g. a `[credentials.youtube.provider]` table in the
/// daemon's TOML config. Every field is optional; a set field replaces the preset's value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderOverrides {
    /// Authorization endpoint.
    pub auth_url: Option<String>,
    /// Token endpoint.
    pub token_url: Option<String>,
    /// Revocation endpoint.
    pub revoke_url: Option<String>,
    /// RFC 8628 device authorization endpoint.
    pub device_authorization_url: Option<String>,
    /// Default scopes.
    pub scopes: Option<Vec<String>>,
    /// Scope parameter name.
    pub scope_param: Option<String>,
    /// Scope separator.
    pub scope_separator: Option<String>,
    /// Client id parameter name.
    pub client_id_param: Option<String>,
    /// Extra authorization parameters (replace the preset's).
    pub auth_params: Option<std::collections::BTreeMap<String, String>>,
    /// PKCE mode.
    pub pkce: Option<PkceMode>,
    /// Client authentication.
    pub client_auth: Option<ClientAuth>,
    /// Host in the redirect URI.
    pub redirect_host: Option<String>,
    /// Fixed redirect port; 0 means any port.
    pub redirect_port: Option<u16>,
    /// Callback path.
    pub redirect_path: Option<String>,
    /// Whether refresh tokens rotate.
    pub rotates_refresh_token: Option<bool>,
    /// Known refresh token lifetime in days; 0 means none.
    pub refresh_token_lifetime_days: Option<u64>,
    /// Error classifier.
    pub classifier: Option<Classifier>,
    /// Probe URL (with `probe_method`, or the preset's method, or a bearer GET).
    pub probe_url: Option<String>,
    /// Probe method.
    pub probe_method: Option<ProbeMethod>,
    /// Turn the probe off.
    pub no_probe: Option<bool>,
    /// Access-token lifetime in seconds assumed when the token answer has no `expires_in`;
    /// 0 means such tokens do not expire.
    pub access_token_lifetime_secs: Option<u64>,
    /// Shape of a pasted token (`telegram`, `github`, `opaque`).
    pub paste_format: Option<PasteFormat>,
    /// The YouTube Data API's `channels` endpoint to ask which channel a grant acts as
    /// (any grant, whatever its scopes); a stand-in's address in tests.
    pub youtube_channels_url: Option<String>,
}

/// Why a provider could not be built or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// No preset of that name.
    #[error("unknown provider `{0}`; known providers: {known}", known = preset_names().join(", "))]
    Unknown(String),
    /// An override has a bad value.
    #[error("provider {provider}: bad `{field}` override: {reason}")]
    InvalidOverride {
        /// Provider name.
        provider: String,
        /// Override field.
        field: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A provider URL breaks the endpoint rule (https; http only on loopback).
    #[error("provider {provider}: `{field}`: {problem}")]
    InsecureEndpoint {
        /// Provider name.
        provider: String,
        /// The field holding the URL.
        field: &'static str,
        /// What is wrong with it.
        problem: EndpointError,
    },
    /// An OAuth provider lacks an endpoint.
    #[error("provider {provider} has no `{field}`; set it in the provider config or use discovery (`issuer`)")]
    MissingEndpoint {
        /// Provider name.
        provider: String,
        /// Missing field.
        field: &'static str,
    },
}

/// [`preset`] that fails with a listing of the known names.
pub fn preset_or_error(name: &str) -> Result<Provider, ProviderError> {
    preset(name).ok_or_else(|| ProviderError::Unknown(name.to_owned()))
}
