//! HTTP client for one agent daemon: pinned-certificate TLS, typed errors, and the
//! Ready / Unauthorized / ProtocolMismatch / Unreachable classification. Used by the
//! companion (devices) and by `tether token` (the user's agent).
//!
//! Files: `connection.rs` ([`AgentClient`], [`AgentEndpoint`], the URL rule and the request
//! helpers), `companion.rs` (the companion's calls: pair, health, re-auth, events),
//! `broker.rs` (the user's agent's calls: access tokens, the refusal report), `error.rs`
//! ([`ClientError`], [`ContactClass`]), [`sse`] (event-stream decoding); the pin itself is
//! [`crate::pin`].
//!
//! With a fingerprint (from the pairing code), the TLS verifier accepts exactly the
//! certificate whose DER hashes to it — no CA, no name check — and still verifies the
//! handshake signatures with the ring provider's algorithms, so only the holder of that
//! certificate's key can talk to us. Without one, normal CA validation (webpki roots)
//! applies. Plain `http://` is accepted only for loopback hosts.

mod broker;
mod companion;
mod connection;
mod error;
pub mod sse;

pub use broker::BROKER_TIMEOUT;
pub use connection::{
    check_url, is_loopback, AgentClient, AgentEndpoint, CONNECT_TIMEOUT, MAX_REPLY_BYTES,
    REQUEST_TIMEOUT,
};
pub use error::{ClientError, ContactClass, UpgradeSide};
// The pin lives in `crate::pin` (the daemon uses it too); these keep the client's paths.
pub use crate::pin::{pin_mismatch, pinned_tls_config, Fingerprint};
