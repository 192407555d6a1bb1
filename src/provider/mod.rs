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
//! - `spec.rs`: [`Provider`] and the types its fields use;
//! - `config.rs`: [`ProviderOverrides`], [`Provider::apply`], [`Provider::validate`],
//!   [`ProviderError`];
//! - `catalog.rs`: the presets; `classify.rs`: the token-endpoint error classifier;
//!   `policy_death.rs`: deaths a provider's policy caused, named;
//! - `discovery.rs`: OIDC / RFC 8414 metadata; `endpoint.rs`: the URL rule;
//! - `paste.rs`: the pasted token's shape; `probe.rs`: probe declarations.

mod catalog;
mod classify;
mod config;
mod discovery;
mod endpoint;
mod paste;
mod policy_death;
mod probe;
mod spec;

pub use catalog::{preset, preset_names};
pub(crate) use classify::info_scrubbed;
pub use classify::{
    classify_token_response, classify_token_response_scrubbed, Classified, Classifier, ErrorClass,
};
pub use config::{preset_or_error, ProviderError, ProviderOverrides};
pub use discovery::{discover, DiscoveryError};
pub use endpoint::{check_endpoint, is_loopback, EndpointError};
pub use paste::PasteFormat;
pub use probe::{Probe, ProbeMethod};
pub use spec::{ChannelLookup, ClientAuth, CredentialKind, PkceMode, Provider, RedirectPolicy};
// Its home is `crate::text` (protocol needs it too); the agent still calls it here.
#[cfg(daemon)]
pub(crate) use crate::text::clean_text;
