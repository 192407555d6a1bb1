//! Tether keeps an autonomous agent's OAuth credentials alive, and gets a human to
//! re-authorize in one click when one dies.
//!
//! The crate is the map; each module has one job:
//!
//! - [`secret`]: newtypes for every secret (tokens, client secrets, device tokens) that
//!   redact themselves in `Debug` and `Display`.
//! - [`duration`]: durations as written in config files (`90s`, `6h`, `1h30m`).
//! - [`files`]: atomic, durable, private (0600/0700) writes of small state files.
//! - [`pin`]: the daemon's certificate fingerprint and the client TLS that pins it.
//! - [`client`]: the HTTPS client for one agent daemon (pinned, typed errors, events).
//! - [`protocol`]: the wire types shared by the agent daemon and the companion, versioned.
//! - [`vault`]: credential records kept in several locations with atomic,
//!   generation-numbered writes, reconcile/repair, history, and rendered output files.
//! - [`provider`]: the provider catalog (endpoints, quirks, error classification, probes).
//! - [`oauth`]: authorization requests with PKCE, the loopback listener, exchange and refresh.
//! - [`agent`]: the daemon beside the user's agent: HTTPS API, pairing, checker, broker,
//!   alerts, metrics.
//! - [`companion`]: the owner's side: config, keyring secrets, agent client, watcher,
//!   notifier, one-click re-auth, status.
//! - [`demo`]: `tether demo`, with a small, plainly labelled demo authorization server.
//! - [`report`]: an error and its causes on one line.
//! - `text`: text from outside (a provider's error, an agent's words) made fit to show,
//!   below `protocol` and `provider`, which both use it.
//! - [`cli`]: the `tether` command line, a thin layer over the modules above.
//! - [`platform`]: what differs between Linux, macOS and Windows, and the errors for what
//!   a platform lacks. `agent`, `vault` and `demo` are built for Linux only
//!   (`cfg(daemon)`, set by `build.rs`).
//!
//! Locks: every synchronous lock in the crate is a `parking_lot` lock, which does not
//! poison. Each one guards state that is updated in single steps (a swap, an insert, a
//! counter), so a panic in one request leaves nothing half-written for the next; its guard
//! is not `Send`, so the compiler refuses one held across an `.await` in a spawned task.
//!
//! See ARCHITECTURE.md for how the pieces talk to each other.

#[cfg(daemon)]
pub mod agent;
pub mod cli;
pub mod client;
pub mod companion;
#[cfg(daemon)]
pub mod demo;
pub mod duration;
pub mod files;
pub mod oauth;
pub mod pin;
pub mod platform;
pub mod protocol;
pub mod provider;
pub mod report;
pub mod secret;
mod text;
#[cfg(daemon)]
pub mod vault;
