//! Integration tests for `tether::provider` and `tether::oauth`: end-to-end flows against
//! the real oidc-provider, the loopback listener, token-endpoint classification and probes
//! against providers' documented answers served on loopback, and secret hygiene.

mod authorize;
pub mod canned;
mod classify;
mod cli;
mod e2e;
mod endpoints;
mod listener;
mod probes;
mod redaction;
