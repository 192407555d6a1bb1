//! OAuth flows: authorization requests with PKCE, the loopback listener, exchange, refresh,
//! liveness probes and paste-token verification.
//!
//! The flow is split in two halves because the agent daemon holds the secrets:
//!
//! 1. the side that will own the token (the daemon) calls [`AuthorizationRequest::new`]
//!    and keeps the [`PendingAuthorization`] (random `state` and the single-use
//!    [`PkceVerifier`]); the [`AuthorizationUrl`] it returns has no `redirect_uri`;
//! 2. the side with the browser (the companion) binds a [`LoopbackListener`] for the
//!    provider's [`RedirectRequirement`](crate::protocol::RedirectRequirement), adds its
//!    `redirect_uri` with [`AuthorizationUrl::with_redirect_uri`], opens the browser and
//!    [`LoopbackListener::wait`]s for exactly one callback with the expected state;
//! 3. the owner of the verifier calls [`exchange`]; the listener's browser tab answers only
//!    when the caller passes the real outcome to [`PendingCallback::respond`].
//!
//! [`refresh`] spends a refresh token and returns the new [`TokenSet`] (rotated refresh
//! token included). Every token-endpoint failure is an [`OAuthError`] classified as
//! [`ErrorClass::Dead`], [`ErrorClass::Transient`] or [`ErrorClass::Misconfigured`] by the
//! provider's [`Classifier`](crate::provider::Classifier). [`probe`] asks "is this grant
//! still alive?" without minting anything; [`verify_paste`] checks a pasted token.
//!
//! # API
//!
//! - [`ClientCredentials`] `{client_id, client_secret: Option<ClientSecret>}`;
//!   [`http_client`] / [`http_client_with_timeouts`];
//! - [`AuthorizationRequest::new`]`(&provider, &client, &scopes)` →
//!   `(`[`PendingAuthorization`]` {state, verifier}, `[`AuthorizationUrl`]`)`;
//!   [`AuthorizationUrl::parse`], [`AuthorizationUrl::with_redirect_uri`];
//! - [`LoopbackListener::bind`]`(&RedirectRequirement, state)`, `.redirect_uri()`,
//!   `.local_addr()`, `.canceller()` → [`Canceller::cancel`], `.wait(timeout)` →
//!   [`PendingCallback`] (`.code()`, `.state()`, `.redirect_uri()`, `.respond(outcome)`,
//!   `.into_parts()` → ([`Callback`], [`Responder`])) or [`ListenerError`];
//! - [`exchange`]`(&http, &provider, &client, code, verifier, redirect_uri)` and
//!   [`refresh`]`(&http, &provider, &client, &refresh_token)` → [`TokenSet`] or [`OAuthError`]
//!   `{provider, class, info}`;
//! - [`probe`]`(&http, &provider, &client, &access_token)` → [`ProbeOutcome`];
//!   [`probe_account`] adds the account ([`Identity`]: a stable id the pin compares and a
//!   label for display); [`verify_paste`]`(&http, &provider, &secret)` → account or
//!   [`OAuthError`];
//! - [`device`]: RFC 8628 device authorization (start, poll);
//!   [`id_token`]: the account an OpenID Connect `id_token` names (what is and is not
//!   validated is written there); [`youtube`]: the channel a YouTube grant acts as.
//!
//! I/O comes from the caller: every call takes a `reqwest::Client` (build it with
//! [`http_client`]: rustls, no redirects, bounded timeouts, `Accept: application/json`).
//!
//! Token requests are made with reqwest directly, not with the oauth2 crate's token
//! requests: oauth2's typed errors drop the body of an HTTP 200 answer that is an error
//! (GitHub's `bad_refresh_token`, Slack's `ok:false`), and classification needs it. oauth2
//! is used for PKCE verifiers and challenges and for building the authorization URL.
//!
//! # Files
//!
//! - `client.rs`: [`ClientCredentials`];
//! - `authorize.rs`: the request and its URL; `pkce.rs`: the verifier;
//! - `listener.rs` with `listener/sockets.rs` and `listener/error.rs`: the loopback
//!   listener, the sockets it binds and [`ListenerError`]; `page.rs`: the browser tab's page;
//! - `token.rs`: exchange and refresh requests, [`TokenSet`]; `http.rs`: the HTTP client;
//! - `probe.rs`: liveness probes and paste verification; `identity.rs`: [`Identity`];
//!   `device.rs`; `id_token.rs`;
//! - `error.rs`: [`OAuthError`].

mod authorize;
mod client;
pub mod device;
mod error;
mod http;
pub mod id_token;
mod identity;
mod listener;
pub(crate) mod page;
mod pkce;
mod probe;
mod token;
pub mod youtube;

pub use crate::provider::ErrorClass;
pub use authorize::{AuthorizationRequest, AuthorizationUrl, PendingAuthorization};
pub use client::ClientCredentials;
pub use error::OAuthError;
pub use http::{http_client, http_client_with_timeouts};
pub use identity::Identity;
pub use listener::{
    Callback, CallbackOutcome, Canceller, ListenerError, LoopbackListener, PendingCallback,
    Responder, DEFAULT_TIMEOUT,
};
pub use pkce::PkceVerifier;
pub use probe::{introspect_refresh_token, probe, probe_account, verify_paste, ProbeOutcome};
pub use token::{exchange, refresh, TokenSet};
