//! The provider catalog: endpoints, quirks, error classification and probes per provider.
//!
//! Every provider breaks RFC 6749 somewhere; a [`Provider`] carries everything Tether must
//! know to talk to one: endpoints, default scopes, extra authorization parameters, PKCE
//! mode, client authentication, the loopback redirect rule, whether refresh tokens rotate,
//! the known refresh-token lifetime, the liveness [`Probe`] and the [`Classifier`] that turns
//! a token-endpoint failure into dead / transient / misconfigured.
//!
//! - [`preset`] returns a built-in preset by name (see `catalog.rs`, each cites its source);
//! - [`Provider::apply`] layers a user's [`ProviderOverrides`] (every field optional, read
//!   from the daemon's TOML) on top;
//! - [`discover`] builds a `generic` provider from OIDC discovery or RFC 8414 metadata;
//! - [`check_endpoint`] is the one rule every provider URL obeys (https; http only on
//!   loopback), applied to overrides, discovery and [`Provider::validate`];
//! - [`PasteFormat`] is the shape a pasted token must have before it is sent anywhere.
//!
//! # Files
//!
//! - `catalog.rs`: the presets; `classify.rs`: the token-endpoint error classifier;
//! - `discovery.rs`: OIDC / RFC 8414 metadata; `endpoint.rs`: the URL rule;
//! - `paste.rs`: the pasted token's shape; `probe.rs`: probe declarations.

mod catalog;
mod classify;
mod discovery;
mod endpoint;
mod paste;
mod policy_death;
mod probe;

pub use catalog::{preset, preset_names};
pub(crate) use classify::clean as clean_text;
pub(crate) use classify::info_scrubbed;
pub use classify::{
    classify_token_response, classify_token_response_scrubbed, Classified, Classifier, ErrorClass,
};
pub use discovery::{discover, DiscoveryError};
pub use endpoint::{check_endpoint, is_loopback, EndpointError};
pub use paste::PasteFormat;
pub use probe::{Probe, ProbeMethod};

use crate::protocol::{ReauthKind, RedirectPort, RedirectRequirement};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use url::Url;

/// What kind of secret a credential holds, and so how it is re-armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    /// OAuth 2.0 authorization code with a refresh token: re-armed by browser consent.
    OAuth,
    /// A long-lived token the owner pastes (Telegram bot token, GitHub PAT).
    Paste,
}

/// How the PKCE challenge is derived from the verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PkceMode {
    /// No PKCE (only for providers that reject it).
    None,
    /// RFC 7636 S256: base64url(SHA-256(verifier)).
    S256,
    /// S256 with a hex-encoded digest instead of base64url (TikTok's desktop flow).
    S256Hex,
}

/// How the client authenticates at the token endpoint when it has a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Public client: only `client_id` in the body, a configured secret is never sent.
    None,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
    /// HTTP Basic with the url-encoded id and secret (`client_secret_basic`).
    Basic,
}

/// Where the provider lets the loopback redirect point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectPolicy {
    /// Host in `redirect_uri`: `127.0.0.1`, or `localhost` where the provider demands it.
    /// The listener binds 127.0.0.1 either way.
    pub host: String,
    /// Any port, or the one port registered with the provider.
    pub port: RedirectPort,
    /// Callback path, e.g. `/callback`.
    pub path: String,
}

impl RedirectPolicy {
    /// `http://127.0.0.1:<any port>/callback`.
    pub fn loopback_any_port() -> Self {
        Self::new("127.0.0.1", RedirectPort::Any, "/callback")
    }

    /// A policy from its parts.
    pub fn new(host: &str, port: RedirectPort, path: &str) -> Self {
        Self {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        }
    }

    /// The wire form the daemon sends to the companion.
    pub fn requirement(&self) -> RedirectRequirement {
        RedirectRequirement {
            host: self.host.clone(),
            port: self.port,
            path: self.path.clone(),
        }
    }
}

/// Everything Tether knows about one provider. Build it with [`preset`] or [`discover`],
/// then [`Provider::apply`] the user's overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    /// Preset name (`google`, `x`, ..., `generic`).
    pub name: String,
    /// OAuth or paste.
    pub kind: CredentialKind,
    /// Authorization endpoint (OAuth only).
    pub auth_url: Option<Url>,
    /// Token endpoint (OAuth only).
    pub token_url: Option<Url>,
    /// RFC 7009 revocation endpoint, if the provider has one.
    pub revoke_url: Option<Url>,
    /// RFC 8628 device authorization endpoint: re-authorization from a phone, by code.
    pub device_authorization_url: Option<Url>,
    /// Scopes requested when the user names none.
    pub default_scopes: Vec<String>,
    /// Name of the scope parameter (`scope`; Slack user tokens use `user_scope`).
    pub scope_param: String,
    /// Separator between scopes (space per RFC 6749; TikTok uses a comma).
    pub scope_separator: String,
    /// Name of the client id parameter (`client_id`; TikTok uses `client_key`).
    pub client_id_param: String,
    /// Extra authorization parameters (Google `access_type=offline`, ...).
    pub auth_params: Vec<(String, String)>,
    /// PKCE mode.
    pub pkce: PkceMode,
    /// Client authentication at the token endpoint.
    pub client_auth: ClientAuth,
    /// Loopback redirect rule.
    pub redirect: RedirectPolicy,
    /// Whether a refresh returns a new refresh token that replaces the old one.
    pub rotates_refresh_token: bool,
    /// Known lifetime of a refresh token from its issue, when the provider does not say.
    pub refresh_token_lifetime: Option<Duration>,
    /// Lifetime assumed for an access token when the token answer has no `expires_in`;
    /// `None`: such tokens do not expire.
    pub access_token_lifetime: Option<Duration>,
    /// Cheap liveness check of a grant, if the provider offers one.
    pub probe: Option<Probe>,
    /// Probes to fall back on, in order, when `probe` turns out not to work for this client
    /// (see [`Provider::fall_back_probe`]).
    pub probe_fallbacks: Vec<Probe>,
    /// Turns a token-endpoint failure into dead / transient / misconfigured.
    pub classifier: Classifier,
    /// The shape a pasted token must have (paste-kind providers); checked before the
    /// token is sent anywhere.
    pub paste_format: PasteFormat,
    /// Where to ask which YouTube channel a grant acts as (`channels.list?mine=true`):
    /// that channel is the identity pinned on re-authorization (see [`ChannelLookup`]).
    pub youtube_channels: Option<ChannelLookup>,
    /// Hosts of the provider's own device-code pages besides its endpoints' hosts
    /// (Microsoft's codes are typed at microsoft.com; its endpoints are on
    /// login.microsoftonline.com). See [`Provider::owns_page`].
    pub verification_hosts: Vec<String>,
}

/// The YouTube Data API's `channels.list?part=snippet&mine=true`, asked after an exchange:
/// for an owner of several channels (a brand account beside a personal one) the channel
/// is the identity that matters, not the Google account's e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelLookup {
    /// The `channels` endpoint.
    pub url: Url,
    /// Ask only when the grant has a YouTube scope (the Google preset: other grants are
    /// refused there). An explicit `youtube_channels_url` override always asks.
    pub needs_youtube_scope: bool,
}

impl ChannelLookup {
    /// Whether a grant of `scopes` is asked about.
    pub fn applies_to(&self, scopes: &[String]) -> bool {
        !self.needs_youtube_scope
            || scopes
                .iter()
                .any(|s| s.starts_with("https://www.googleapis.com/auth/youtube"))
    }
}

impl Provider {
    /// Whether `page`, the verification page of a device-code sign-in the daemon started
    /// itself, is on the provider's own site: the host of one of its endpoints (preset or
    /// discovered), or one the preset names. The owner is told "Tether's own sign-in" next
    /// to this page, so an answer pointing elsewhere is refused, never shown.
    pub fn owns_page(&self, page: &str) -> bool {
        let Some(host) = Url::parse(page)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        else {
            return false;
        };
        let endpoints = [
            &self.auth_url,
            &self.token_url,
            &self.device_authorization_url,
        ];
        endpoints
            .iter()
            .filter_map(|u| u.as_ref()?.host_str().map(str::to_ascii_lowercase))
            .any(|h| h == host)
            || self
                .verification_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&host))
    }

    /// How a dead credential of this provider is re-armed.
    pub fn reauth_kind(&self) -> ReauthKind {
        match self.kind {
            CredentialKind::Paste => ReauthKind::Paste,
            CredentialKind::OAuth if self.auth_url.is_some() && self.token_url.is_some() => {
                ReauthKind::Oauth
            }
            CredentialKind::OAuth => ReauthKind::None,
        }
    }

    /// The loopback redirect rule in its wire form.
    pub fn requirement(&self) -> RedirectRequirement {
        self.redirect.requirement()
    }

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

    /// Replaces a probe that cannot work here by the next fallback (or by none: refresh
    /// tests only). Returns the probe now in force.
    pub fn fall_back_probe(&mut self) -> Option<&Probe> {
        self.probe = if self.probe_fallbacks.is_empty() {
            None
        } else {
            Some(self.probe_fallbacks.remove(0))
        };
        self.probe.as_ref()
    }

    /// Adapts the provider to a client without a secret: RFC 7662 introspection
    /// authenticates the caller, so a public client falls back to the next probe at once
    /// instead of being refused on every try.
    pub fn for_public_client(&mut self) {
        while self
            .probe
            .as_ref()
            .is_some_and(|p| p.method == ProbeMethod::Introspection)
        {
            self.fall_back_probe();
        }
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

impl Provider {
    /// Every URL of the provider with the name of its field: what [`Provider::validate`]
    /// holds to [`check_endpoint`].
    pub fn endpoints(&self) -> Vec<(&'static str, &Url)> {
        let mut out = Vec::new();
        for (field, u) in [
            ("auth_url", &self.auth_url),
            ("token_url", &self.token_url),
            ("revoke_url", &self.revoke_url),
            ("device_authorization_url", &self.device_authorization_url),
        ] {
            if let Some(u) = u {
                out.push((field, u));
            }
        }
        for p in self.probe.iter().chain(&self.probe_fallbacks) {
            out.push(("probe_url", &p.url));
        }
        if let Some(c) = &self.youtube_channels {
            out.push(("youtube_channels_url", &c.url));
        }
        out
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
