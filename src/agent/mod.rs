//! The agent daemon beside the user's agent: HTTPS API, pairing, checker, broker, alerts,
//! metrics.
//!
//! - [`config`]: `agent.toml` (and the commented example `tether agent init` writes);
//!   [`config_edit`]: `tether agent add`/`remove`, editing it in place with its comments;
//!   [`lint`]: `tether agent check`, the config and the machine, each problem with its fix;
//! - [`tls`]: the self-signed certificate and its fingerprint;
//! - [`auth`]: device and agent tokens (hashes only), pairing secrets, rate limit;
//! - [`credential`]: one credential at run time (state, cached token, single-flight lock);
//!   [`credential_set`]: the credentials by name, swapped whole on a reload;
//! - [`reload`]: SIGHUP (`systemctl reload`) applies agent.toml's credentials and alert
//!   channels without a restart;
//! - [`daemon`]: the shared state and its operations (refresh, probe, broker, re-auth);
//! - [`reauth`]: single-use re-auth sessions holding the PKCE verifier;
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

pub mod alerts;
pub mod api;
pub mod auth;
pub mod checker;
pub mod config;
pub mod config_edit;
pub mod conn_limit;
pub mod credential;
pub mod credential_set;
pub mod daemon;
pub mod file_watch;
pub mod intent;
pub mod lint;
pub mod metrics;
pub mod reauth;
pub mod reload;
pub mod schedule;
pub mod server;
pub mod tls;
pub mod vault_watch;

pub use daemon::{Daemon, DaemonError};
pub use server::{serve, ServeError};
