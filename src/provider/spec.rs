//! What Tether knows about one provider: [`Provider`] and the small types its fields
//! use (credential kind, PKCE mode, client authentication, the loopback redirect rule, the
//! YouTube channel lookup). Below `catalog.rs` and `discovery.rs`, which build providers,
//! and `config.rs`, which changes and checks them.

use super::classify::Classifier;
use super::paste::PasteFormat;
use super::probe::{Probe, ProbeMethod};
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

/// Everything Tether knows about one provider. Build it with [`preset`](super::preset) or
/// [`discover`](super::discover), then [`Provider::apply`] the user's overrides.
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
}

impl Provider {
    /// Every URL of the provider with the name of its field: what [`Provider::validate`]
    /// holds to [`check_endpoint`](super::check_endpoint).
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
