//! The agent daemon beside the user's agent: HTTPS API, pairing, checker, broker, alerts,
//! metrics. One folder per concept, each a layer; every folder's `mod.rs` is its map.
//!
//! The rule every dependency obeys (checked in CI by `scripts/structure.py`): imports point
//! down the layers, and nothing imports in a circle.
//!
//! ```text
//! http/                                         the API (top: nothing in agent imports it)
//!   → keep_alive/, human/, vault_watch/, lease/hooks, reload   operations: impl Daemon
//!   → daemon.rs                                 the coordinator
//!   → credential/, alerts/, access/, metrics, error          what the daemon stores
//!     (with keep_alive/registry, vault_watch/state, lease/leases)
//!   → config/                                   agent.toml
//!   → the crate's other modules
//! ```
//!
//! A type stored in a field of [`Daemon`] or [`credential::Credential`] is defined below
//! `daemon.rs`, never in a file with `impl Daemon`; `pub use` appears only in a folder's
//! `mod.rs`, for its own files; only [`credential`] locks a credential's status.
//!
//! - [`config`]: `agent.toml`: settings, one credential's entry, the provider and vault it
//!   describes, the example, in-place edits, `tether agent check`;
//! - [`access`]: device and agent tokens, pairing, the TLS identity, connection caps,
//!   re-auth sessions;
//! - [`credential`]: one credential at run time, the one writer of its status, and its pure
//!   rules (transitions, schedule, scopes, session staleness);
//! - [`alerts`]: fallback alert channels, flap damping, `tether agent alerts test`;
//! - [`metrics`]: the counters; [`error`]: why the daemon could not be built, why a check
//!   or an operation failed;
//! - [`daemon`]: the coordinator: the shared state, its build, health, shutdown;
//! - [`keep_alive`]: the checker, probes and refresh tests, the single-flight refresh and
//!   its commit, cut rotations, the broker, applying each result;
//! - [`human`]: challenges, session credentials, re-authorization and its identity pin,
//!   device-code sign-in;
//! - [`vault_watch`]: the vault's cadence, output checks and wipe notices, the file watch;
//! - [`lease`]: the HA lease in OpenBao and the follower's way of serving;
//! - [`reload`]: SIGHUP applies agent.toml's credentials and alert channels;
//! - [`http`]: TLS, the accept loop, routes, event streams, `/metrics`.
//!
//! Entry point: build a [`Daemon`] with [`Daemon::build`] and pass it to [`serve`] with a
//! bound listener and a shutdown future.

pub mod access;
pub mod alerts;
pub mod config;
pub mod credential;
pub mod daemon;
pub mod error;
pub mod http;
pub mod human;
pub mod keep_alive;
pub mod lease;
pub mod metrics;
pub mod reload;
pub mod vault_watch;

pub use daemon::Daemon;
pub use error::{CheckError, DaemonError, OpError};
pub use http::server::{serve, ServeError};
