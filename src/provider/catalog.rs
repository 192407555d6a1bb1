//! The built-in presets, one function per provider, each citing the documents its values
//! come from. Where two sources disagree the safer value is the default and the field can
//! be overridden (see `ProviderOverrides`).

use super::classify::Classifier;
use super::paste::PasteFormat;
use super::probe::{Probe, ProbeMethod};
use super::spec::{ChannelLookup, ClientAuth, CredentialKind, PkceMode, Provider, RedirectPolicy};
use crate::protocol::RedirectPort;
use std::time::Duration;
use url::Url;

/// The port used by presets whose provider matches the registered redirect URI exactly,
/// port included. Register `http://127.0.0.1:8765/callback` there, or override
/// `redirect_port`.
pub const DEFAULT_FIXED_PORT: u16 = 8765;

const DAY: u64 = 24 * 3600;
const HOUR: Duration = Duration::from_secs(3600);

/// Names of every preset, in catalog order.
pub fn preset_names() -> &'static [&'static str] {
    &[
        "google",
        "x",
        "tiktok",
        "github",
        "github-app",
        "microsoft",
        "spotify",
        "dropbox",
        "slack",
        "generic",
        "telegram",
        "github-pat",
    ]
}

/// The preset of that name, or `None`. `twitter` is accepted for `x`.
pub fn preset(name: &str) -> Option<Provider> {
    Some(match name {
        "google" => google(),
        "x" | "twitter" => x(),
        "tiktok" => tiktok(),
        "github" => github(),
        "github-app" => github_app(),
        "microsoft" => microsoft(),
        "spotify" => spotify(),
        "dropbox" => dropbox(),
        "slack" => slack(),
        "generic" => generic(),
        "telegram" => telegram(),
        "github-pat" => github_pat(),
        _ => return None,
    })
}

fn url(s: &str) -> Option<Url> {
    // Every catalog URL is a literal checked by `every_preset_is_well_formed`.
    Some(Url::parse(s).expect("catalog URLs are valid literals"))
}

fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| (*s).to_owned()).collect()
}

fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Fields shared by every OAuth preset; each preset changes what differs.
fn base(name: &str) -> Provider {
    Provider {
        name: name.to_owned(),
        kind: CredentialKind::OAuth,
        auth_url: None,
        token_url: None,
        revoke_url: None,
        device_authorization_url: None,
        default_scopes: Vec::new(),
        scope_param: "scope".into(),
        scope_separator: " ".into(),
        client_id_param: "client_id".into(),
        auth_params: Vec::new(),
        pkce: PkceMode::S256,
        client_auth: ClientAuth::Basic,
        redirect: RedirectPolicy::loopback_any_port(),
        rotates_refresh_token: false,
        refresh_token_lifetime: None,
        // RFC 6749 5.1 makes `expires_in` optional ("RECOMMENDED"); a provider that leaves
        // it out is assumed to issue one-hour tokens (the common lifetime), so the broker
        // never serves a token the provider has expired for longer than that.
        access_token_lifetime: Some(HOUR),
        probe: None,
        probe_fallbacks: Vec::new(),
        classifier: Classifier::Rfc6749,
        paste_format: PasteFormat::Opaque,
        youtube_channels: None,
        verification_hosts: Vec::new(),
    }
}

// Google (YouTube and every Google API), "Desktop app" OAuth client.
// Sources: developers.google.com/identity/protocols/oauth2/native-app (loopback
// `http://127.0.0.1:port`, PKCE S256, endpoints, access_type=offline; OOB blocked since
// 2023-01); developers.google.com/identity/protocols/oauth2#expiration (refresh token ends:
// user revoke, 6 months unused, 100-token limit, 7 days for apps in "Testing");
// developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke (revoke);
// developers.google.com/identity/sign-in/web/backend-auth (tokeninfo endpoint).
// prompt=consent forces a new refresh token on re-authorization (Google otherwise issues one
// only on the first consent).
fn google() -> Provider {
    Provider {
        auth_url: url("https://accounts.google.com/o/oauth2/v2/auth"),
        token_url: url("https://oauth2.googleapis.com/token"),
        revoke_url: url("https://oauth2.googleapis.com/revoke"),
        default_scopes: scopes(&["openid", "email"]),
        auth_params: params(&[("access_type", "offline"), ("prompt", "consent")]),
        // Google accepts both; its samples post the secret in the body.
        client_auth: ClientAuth::Post,
        probe: Some(Probe::fixed(
            ProbeMethod::TokenInfo,
            "https://oauth2.googleapis.com/tokeninfo",
        )),
        classifier: Classifier::Google,
        // developers.google.com/youtube/v3/docs/channels/list (`mine=true`: the
        // channel the token acts as; needs a youtube scope).
        youtube_channels: Some(ChannelLookup {
            url: Url::parse(
                "https://www.googleapis.com/youtube/v3/channels?part=snippet&mine=true",
            )
            .expect("a valid literal"),
            needs_youtube_scope: true,
        }),
        ..base("google")
    }
}

// X (Twitter) OAuth 2.0 Authorization Code with PKCE.
// Sources: docs.x.com/resources/fundamentals/authentication/oauth-2-0/authorization-code
// (endpoints, PKCE required, `offline.access` for a refresh token, access token 2 hours,
// confidential clients use HTTP Basic); docs.x.com/resources/fundamentals/authentication/
// oauth-2-0/user-access-token (refresh: the response carries a new refresh token, the old one
// stops working); callback URLs must match exactly (port included): fixed port.
// Dead refresh: 400 invalid_request "Value passed for the token was invalid."
// Probe: docs.x.com/x-api/users/user-lookup-me (GET /2/users/me).
fn x() -> Provider {
    Provider {
        auth_url: url("https://x.com/i/oauth2/authorize"),
        token_url: url("https://api.x.com/2/oauth2/token"),
        revoke_url: url("https://api.x.com/2/oauth2/revoke"),
        default_scopes: scopes(&["tweet.read", "users.read", "offline.access"]),
        client_auth: ClientAuth::Basic,
        redirect: RedirectPolicy::new(
            "127.0.0.1",
            RedirectPort::Fixed(DEFAULT_FIXED_PORT),
            "/callback",
        ),
        rotates_refresh_token: true,
        probe: Some(Probe::fixed(
            ProbeMethod::BearerGet,
            "https://api.x.com/2/users/me",
        )),
        // Access tokens live 2 hours (authorization-code page above).
        access_token_lifetime: Some(2 * HOUR),
        classifier: Classifier::X,
        ..base("x")
    }
}

// TikTok Login Kit for Desktop.
// Sources: developers.tiktok.com/doc/login-kit-desktop (authorize URL, `client_key`,
// comma-separated scopes, loopback `http://127.0.0.1:*/callback/` with any port, PKCE with
// `code_challenge` = hex(SHA-256(verifier)) — hex, not base64url); developers.tiktok.com/doc/
// oauth-user-access-token-management (token and revoke endpoints, `refresh_expires_in`,
// the refresh token may change on refresh). ⚠ Older pages say access 24 h / refresh 365 d,
// newer ones 2 h / 180 d: the shorter is the default; the response's `refresh_expires_in`
// wins when present. Probe: developers.tiktok.com/doc/tiktok-api-v2-get-user-info.
fn tiktok() -> Provider {
    Provider {
        auth_url: url("https://www.tiktok.com/v2/auth/authorize/"),
        token_url: url("https://open.tiktokapis.com/v2/oauth/token/"),
        revoke_url: url("https://open.tiktokapis.com/v2/oauth/revoke/"),
        default_scopes: scopes(&["user.info.basic"]),
        scope_separator: ",".into(),
        client_id_param: "client_key".into(),
        pkce: PkceMode::S256Hex,
        client_auth: ClientAuth::Post,
        redirect: RedirectPolicy::new("127.0.0.1", RedirectPort::Any, "/callback/"),
        rotates_refresh_token: true,
        refresh_token_lifetime: Some(Duration::from_secs(180 * DAY)),
        probe: Some(Probe::fixed(
            ProbeMethod::BearerGet,
            "https://open.tiktokapis.com/v2/user/info/?fields=open_id,display_name",
        )),
        // ⚠ 24 h on older pages, 2 h on newer: the shorter.
        access_token_lifetime: Some(2 * HOUR),
        classifier: Classifier::TikTok,
        ..base("tiktok")
    }
}

// GitHub OAuth App.
// Sources: docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps
// (endpoints, PKCE S256 supported, loopback redirect: "the port can be any" for
// `http://127.0.0.1/path`, errors come back as HTTP 200 with an `error` field unless
// Accept: application/json is sent — and even then with 200: bad_verification_code,
// incorrect_client_credentials, redirect_uri_mismatch); docs.github.com/en/apps/oauth-apps/
// building-oauth-apps/scopes-for-oauth-apps; token expiry: docs.github.com/en/authentication/
// keeping-your-account-and-data-secure/token-expiration-and-revocation (revoked after a year
// unused). Probe: docs.github.com/en/rest/users/users#get-the-authenticated-user.
// Device flow: the same page, section "Device flow" (POST github.com/login/device/code,
// the owner types the code at github.com/login/device; the token endpoint answers
// authorization_pending / slow_down / expired_token / access_denied as HTTP 200 errors;
// the app must have "Enable Device Flow" ticked, else device_flow_disabled).
fn github() -> Provider {
    Provider {
        auth_url: url("https://github.com/login/oauth/authorize"),
        token_url: url("https://github.com/login/oauth/access_token"),
        device_authorization_url: url("https://github.com/login/device/code"),
        default_scopes: scopes(&["read:user"]),
        client_auth: ClientAuth::Post,
        probe: Some(github_user_probe()),
        // OAuth App tokens do not expire (token-expiration page above).
        access_token_lifetime: None,
        classifier: Classifier::GitHub,
        ..base("github")
    }
}

fn github_user_probe() -> Probe {
    Probe::fixed(ProbeMethod::BearerGet, "https://api.github.com/user")
}

// GitHub App user access tokens (expiring tokens on).
// Sources: docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/
// generating-a-user-access-token-for-a-github-app (same endpoints, access 8 h,
// `refresh_token_expires_in` 6 months) and .../refreshing-user-access-tokens (a refresh
// returns a new refresh token; the old one is invalid; bad_refresh_token as HTTP 200).
// The loopback port rule for GitHub Apps is not documented as "any": fixed port is the safe
// default.
fn github_app() -> Provider {
    Provider {
        auth_url: url("https://github.com/login/oauth/authorize"),
        token_url: url("https://github.com/login/oauth/access_token"),
        client_auth: ClientAuth::Post,
        redirect: RedirectPolicy::new(
            "127.0.0.1",
            RedirectPort::Fixed(DEFAULT_FIXED_PORT),
            "/callback",
        ),
        rotates_refresh_token: true,
        refresh_token_lifetime: Some(Duration::from_secs(182 * DAY)),
        probe: Some(github_user_probe()),
        // User access tokens live 8 hours (generating-a-user-access-token page above).
        access_token_lifetime: Some(8 * HOUR),
        classifier: Classifier::GitHub,
        ..base("github-app")
    }
}

// Microsoft identity platform (Entra ID, personal accounts), tenant `common`; override the
// URLs for a single tenant.
// Sources: learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow
// (endpoints, PKCE, `offline_access`, a new refresh token on every refresh);
// learn.microsoft.com/en-us/entra/identity-platform/reply-url#localhost-exceptions
// (`http://localhost` with any port: the port is ignored; register
// `http://localhost/callback`); learn.microsoft.com/en-us/entra/identity-platform/
// refresh-tokens (90 days of inactivity, sliding, so no fixed lifetime here);
// learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes (AADSTS codes).
// Probe: learn.microsoft.com/en-us/graph/api/user-get (GET /me).
// Device flow: learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code
// (POST .../oauth2/v2.0/devicecode; polling errors authorization_pending,
// authorization_declined, bad_verification_code, expired_token as HTTP 400).
fn microsoft() -> Provider {
    Provider {
        auth_url: url("https://login.microsoftonline.com/common/oauth2/v2.0/authorize"),
        token_url: url("https://login.microsoftonline.com/common/oauth2/v2.0/token"),
        device_authorization_url: url(
            "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode",
        ),
        default_scopes: scopes(&["offline_access", "User.Read"]),
        client_auth: ClientAuth::Post,
        redirect: RedirectPolicy::new("localhost", RedirectPort::Any, "/callback"),
        rotates_refresh_token: true,
        probe: Some(Probe::fixed(
            ProbeMethod::BearerGet,
            "https://graph.microsoft.com/v1.0/me",
        )),
        classifier: Classifier::Microsoft,
        // The device-code page (learn.microsoft.com/en-us/entra/identity-platform/
        // v2-oauth2-device-code: `verification_uri` is https://microsoft.com/devicelogin).
        verification_hosts: scopes(&["microsoft.com", "www.microsoft.com", "login.microsoft.com"]),
        ..base("microsoft")
    }
}

// Spotify Authorization Code with PKCE.
// Sources: developer.spotify.com/documentation/web-api/tutorials/code-pkce-flow (endpoints,
// no secret with PKCE, refresh may return a new refresh token); developer.spotify.com/
// documentation/web-api/concepts/redirect_uri (loopback literal `http://127.0.0.1`, a
// registered URI without port matches any port, `localhost` not allowed).
// ⚠ 2026 change: refresh tokens end 6 months after first authorization, not extended;
// PKCE refresh tokens single-use. Probe: developer.spotify.com/documentation/web-api/
// reference/get-current-users-profile (GET /v1/me).
fn spotify() -> Provider {
    Provider {
        auth_url: url("https://accounts.spotify.com/authorize"),
        token_url: url("https://accounts.spotify.com/api/token"),
        default_scopes: scopes(&["user-read-private"]),
        client_auth: ClientAuth::Basic,
        rotates_refresh_token: true,
        refresh_token_lifetime: Some(Duration::from_secs(182 * DAY)),
        probe: Some(Probe::fixed(
            ProbeMethod::BearerGet,
            "https://api.spotify.com/v1/me",
        )),
        classifier: Classifier::Rfc6749,
        ..base("spotify")
    }
}

// Dropbox OAuth 2 with PKCE.
// Sources: developers.dropbox.com/oauth-guide (endpoints, `token_access_type=offline` for a
// refresh token that does not expire, PKCE, redirect URIs matched exactly including the
// port); www.dropbox.com/developers/documentation/http/documentation#auth-token-revoke and
// #users-get_current_account (probe: POST with JSON `null`).
fn dropbox() -> Provider {
    Provider {
        auth_url: url("https://www.dropbox.com/oauth2/authorize"),
        token_url: url("https://api.dropboxapi.com/oauth2/token"),
        revoke_url: url("https://api.dropboxapi.com/2/auth/token/revoke"),
        default_scopes: scopes(&["account_info.read"]),
        auth_params: params(&[("token_access_type", "offline")]),
        client_auth: ClientAuth::Post,
        redirect: RedirectPolicy::new(
            "127.0.0.1",
            RedirectPort::Fixed(DEFAULT_FIXED_PORT),
            "/callback",
        ),
        probe: Some(Probe::fixed(
            ProbeMethod::BearerPost,
            "https://api.dropboxapi.com/2/users/get_current_account",
        )),
        // Short-lived access tokens: 4 hours (oauth-guide, "expires_in": 14400).
        access_token_lifetime: Some(4 * HOUR),
        classifier: Classifier::Rfc6749,
        ..base("dropbox")
    }
}

// Slack OAuth v2 with token rotation on.
// Sources: api.slack.com/authentication/oauth-v2 (endpoints; errors as HTTP 200
// `{"ok":false,"error":...}`); api.slack.com/authentication/rotation (access 12 h, a new
// refresh token on each refresh, errors invalid_refresh_token / token_revoked /
// token_expired); api.slack.com/methods/oauth.v2.access; PKCE apps with a localhost
// redirect. ⚠ The exact loopback port rule is not documented: fixed port, `localhost`.
// Probe: api.slack.com/methods/auth.test.
fn slack() -> Provider {
    Provider {
        auth_url: url("https://slack.com/oauth/v2/authorize"),
        token_url: url("https://slack.com/api/oauth.v2.access"),
        revoke_url: url("https://slack.com/api/auth.revoke"),
        default_scopes: scopes(&["users:read"]),
        client_auth: ClientAuth::Post,
        redirect: RedirectPolicy::new(
            "localhost",
            RedirectPort::Fixed(DEFAULT_FIXED_PORT),
            "/callback",
        ),
        rotates_refresh_token: true,
        refresh_token_lifetime: Some(Duration::from_secs(30 * DAY)),
        probe: Some(Probe::fixed(
            ProbeMethod::SlackAuthTest,
            "https://slack.com/api/auth.test",
        )),
        // Rotation on: access tokens live 12 hours (rotation page above).
        access_token_lifetime: Some(12 * HOUR),
        classifier: Classifier::Slack,
        ..base("slack")
    }
}

// Any RFC 6749 / OpenID Connect provider: endpoints from the config or from discovery
// (OpenID Connect Discovery 1.0 section 4, RFC 8414). RFC 6749 section 2.3.1: servers MUST
// support HTTP Basic for clients with a secret. RFC 8252 section 7.3: loopback redirect on
// any port. Whether refresh tokens rotate is detected from the response.
fn generic() -> Provider {
    Provider {
        default_scopes: scopes(&["openid", "offline_access"]),
        ..base("generic")
    }
}

// Telegram bot token (pasted, never expires).
// Source: core.telegram.org/bots/api#making-requests and #getme (a revoked token answers
// 401 `{"ok":false,"error_code":401,"description":"Unauthorized"}`).
fn telegram() -> Provider {
    Provider {
        kind: CredentialKind::Paste,
        redirect: RedirectPolicy::loopback_any_port(),
        probe: Some(Probe::fixed(
            ProbeMethod::TelegramGetMe,
            "https://api.telegram.org",
        )),
        access_token_lifetime: None,
        classifier: Classifier::Rfc6749,
        paste_format: PasteFormat::Telegram,
        ..base("telegram")
    }
}

// GitHub personal access token (pasted; fine-grained tokens have an expiry the owner picks).
// Source: docs.github.com/en/rest/users/users#get-the-authenticated-user (401
// "Bad credentials" when revoked or expired).
fn github_pat() -> Provider {
    Provider {
        kind: CredentialKind::Paste,
        probe: Some(github_user_probe()),
        access_token_lifetime: None,
        classifier: Classifier::GitHub,
        paste_format: PasteFormat::GitHub,
        ..base("github-pat")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_well_formed() {
        for name in preset_names() {
            let p = preset(name).unwrap_or_else(|| panic!("preset {name} missing"));
            assert_eq!(&p.name, name);
            assert!(p.redirect.path.starts_with('/'), "{name}");
            if p.kind == CredentialKind::OAuth && *name != "generic" {
                assert_eq!(p.token_url.as_ref().unwrap().scheme(), "https", "{name}");
            }
            p.validate().unwrap_or_else(|e| {
                if *name != "generic" {
                    panic!("{name}: {e}")
                }
            });
        }
        assert!(preset("nope").is_none());
        assert_eq!(preset("twitter").unwrap().name, "x");
    }

    #[test]
    fn offline_parameters_are_in_the_presets() {
        let g = preset("google").unwrap();
        assert!(g
            .auth_params
            .contains(&("access_type".into(), "offline".into())));
        assert!(g.auth_params.contains(&("prompt".into(), "consent".into())));
        assert!(preset("x")
            .unwrap()
            .default_scopes
            .contains(&"offline.access".into()));
        assert!(preset("dropbox")
            .unwrap()
            .auth_params
            .contains(&("token_access_type".into(), "offline".into())));
        assert_eq!(preset("microsoft").unwrap().redirect.host, "localhost");
    }

    #[test]
    fn device_flow_presets_name_their_device_authorization_endpoint() {
        let url = |n: &str| {
            preset(n)
                .unwrap()
                .device_authorization_url
                .map(String::from)
        };
        assert_eq!(
            url("github").as_deref(),
            Some("https://github.com/login/device/code")
        );
        assert_eq!(
            url("microsoft").as_deref(),
            Some("https://login.microsoftonline.com/common/oauth2/v2.0/devicecode")
        );
        assert_eq!(
            url("google"),
            None,
            "Google's device flow needs another client type (TVs and Limited Input devices)"
        );
    }

    #[test]
    fn a_device_code_page_must_be_on_the_providers_own_site() {
        let ms = preset("microsoft").unwrap();
        assert!(ms.owns_page("https://microsoft.com/devicelogin"));
        assert!(ms.owns_page("https://login.microsoftonline.com/common/oauth2/deviceauth"));
        assert!(!ms.owns_page("https://microsoft.com.evil.example/devicelogin"));
        assert!(!ms.owns_page("https://evil.example/devicelogin"));
        let gh = preset("github").unwrap();
        assert!(gh.owns_page("https://github.com/login/device"));
        assert!(!gh.owns_page("https://microsoft.com/devicelogin"));
        assert!(!gh.owns_page("not a url"));
    }
}
