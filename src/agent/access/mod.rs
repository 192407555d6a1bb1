//! Who may talk to the daemon and with what: below the daemon, which stores each of these.
//!
//! - [`auth`]: device and agent tokens (hashes only), pairing secrets, rate limit;
//! - [`tls`]: the self-signed certificate and its fingerprint;
//! - [`conn_limit`]: connection caps that keep places for token holders;
//! - [`reauth_sessions`]: single-use re-auth sessions holding the PKCE verifier.

pub mod auth;
pub mod conn_limit;
pub mod reauth_sessions;
pub mod tls;
