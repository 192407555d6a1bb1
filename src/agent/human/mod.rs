//! Where a human must act: challenges, session credentials, re-authorization, device codes.
//!
//! - [`challenge`]: what the agent says a human must do (QR code, device code, URL,
//!   message): who may post, replace or resolve it, rates, origin, reports;
//! - [`challenge_news`]: pure: whether a posted challenge is news to the owner;
//! - [`session`]: `kind = "session"` credentials and their staleness rule;
//! - [`reauthorize`]: starting and completing a re-authorization, storing a pasted token;
//! - [`account_pin`]: the identity pin (stable ids compared, labels shown);
//! - [`device_flow`]: re-authorization by device code (RFC 8628), shown as a challenge;
//! - [`device_store`]: the device sign-in in progress, kept on disk for a restart.

pub mod account_pin;
pub mod challenge;
pub mod challenge_news;
pub mod device_flow;
pub mod device_store;
pub mod reauthorize;
pub mod session;
