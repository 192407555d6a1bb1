//! The agent daemon beside the user's agent: HTTPS API, pairing, checker, broker, alerts,
//! metrics.
//!
//! - [`config`]: `agent.toml` (and the commented example `tether agent init` writes);
//! - [`tls`]: the self-signed certificate and its fingerprint;
//! - [`auth`]: device and agent tokens (hashes only), pairing secrets, rate limit;
//! - [`credential`]: one credential at run time (state, cached token, single-flight lock);
//! - [`daemon`]: the shared state and its operations (refresh, probe, broker, re-auth);
//! - [`reauth`]: single-use re-auth sessions holding the PKCE verifier;
//! - [`challenge`]: what the agent says a human must do (QR code, device code, URL,
//!   message), its pending work and session reports; [`session`]: `kind = "session"`
//!   credentials and their staleness rule; [`agent_events`]: the agent's own event
//!   stream (`recovered`); [`human_api`]: their routes;
//! - [`file_watch`]: inotify on outputs and vault locations (wiped files restored at once);
//! - [`intent`]: durable notes of refresh tokens being spent (a cut rotation is never
//!   replayed blindly);
//! - [`schedule`]: the pure, clock-driven schedule of probes and refresh tests;
//! - [`checker`]: the task per credential that follows the schedule, and the daemon's chores;
//! - [`api`]: the axum routes; [`server`]: TLS, background tasks, graceful shutdown;
//!   [`conn_limit`]: global and per-address connection caps;
//! - [`vault_watch`]: the vault's own cadence (cheap check every few seconds, repairs at
//!   once) and its health, events and alerts;
//! - [`metrics`]: Prometheus counters; [`alerts`]: fallback alert channels;
//! - its own files are written with [`crate::files`].
//!
//! Entry point: build a [`Daemon`] with [`Daemon::build`] and pass it to [`serve`] with a
//! bound listener and a shutdown future.

pub mod agent_events;
pub mod alerts;
pub mod api;
pub mod auth;
pub mod challenge;
pub mod checker;
pub mod config;
pub mod conn_limit;
pub mod credential;
pub mod daemon;
pub mod file_watch;
pub mod human_api;
pub mod intent;
pub mod metrics;
pub mod reauth;
pub mod schedule;
pub mod server;
pub mod session;
pub mod tls;
pub mod vault_watch;

pub use daemon::{Daemon, DaemonError};
pub use server::{serve, ServeError};
