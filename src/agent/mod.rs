//! The agent daemon beside the user's agent: HTTPS API, pairing, checker, broker, alerts,
//! metrics.
//!
//! - [`config`]: `agent.toml`'s agent-wide settings, parsing and validation;
//!   [`credential_config`]: one `[[credentials]]` entry; [`config_example`]: the
//!   commented example `tether agent init` writes;
//!   [`config_edit`]: `tether agent add`/`remove`, editing it in place with its comments;
//!   [`lint`]: `tether agent check`, the config and the machine, each problem with its fix;
//!   [`resolve`]: the provider a credential's config describes (preset, overrides,
//!   discovery); [`vault_config`]: the vault it describes (locations, outputs);
//! - [`tls`]: the self-signed certificate and its fingerprint;
//! - [`auth`]: device and agent tokens (hashes only), pairing secrets, rate limit;
//! - [`credential`]: one credential at run time (state, cached token, single-flight lock);
//!   [`credential_set`]: the credentials by name, swapped whole on a reload;
//! - [`reload`]: SIGHUP (`systemctl reload`) applies agent.toml's credentials and alert
//!   channels without a restart;
//! - [`error`]: why the daemon could not be built, why a check or an API operation failed;
//! - [`daemon`]: the coordinator: the shared state, its accessors, shutdown, health;
//! - [`transition`]: the pure state transitions and the alert each change calls for;
//!   [`record`]: applying them (status, event, counter, alert) and dead reminders;
//! - [`refresh`]: the single-flight refresh, the commit to the vault, cut rotations;
//! - [`token_record`]: a token answer as a vault record (first grant, refresh);
//! - [`probe`]: checks, probes and the refresh test that confirms a probe's `gone`;
//! - [`broker`]: access tokens for the user's agent and its "token refused" report;
//! - [`reauth`]: single-use re-auth sessions holding the PKCE verifier;
//!   [`reauthorize`]: starting and completing a re-authorization, storing a pasted token;
//!   `account_pin`: the identity pin (stable ids compared, labels shown);
//! - [`challenge`]: what the agent says a human must do (QR code, device code, URL,
//!   message), its pending work and session reports; [`session`]: `kind = "session"`
//!   credentials and their staleness rule; [`agent_events`]: the agent's own event
//!   stream (`recovered`); [`device_flow`]: re-authorization by device code (RFC 8628),
//!   run by the daemon and shown as a challenge (started by itself for `reauth =
//!   "device"`); [`device_store`]: the sign-in in progress, kept on disk for a restart;
//!   [`human_api`]: their routes;
//! - [`challenge_news`]: the pure rule of whether a posted challenge is news to the
//!   owner (alert) or an update of what the companion shows.
//! - [`scopes`]: the granted scopes against the configured ones (a gap is `degraded`);
//! - [`file_watch`]: inotify on outputs and vault locations, missing directories through
//!   their nearest existing ancestor (wiped files restored at once);
//! - [`lease`]: the HA lease in OpenBao (one refresher per credential among daemons
//!   sharing it) and the follower's way of serving;
//! - [`intent`]: durable notes of refresh tokens being spent (a cut rotation is never
//!   replayed blindly);
//! - [`schedule`]: the pure, clock-driven schedule of probes and refresh tests;
//! - [`checker`]: the task per credential that follows the schedule, and the daemon's chores;
//! - [`api`]: the axum routes and handlers; [`api_error`]: `OpError` → status and JSON
//!   error; [`api_extract`]: bearer roles, bodies, credential names; [`server`]: TLS, background tasks, graceful shutdown;
//!   [`conn_limit`]: connection caps that keep places for token holders;
//! - [`vault_watch`]: the vault's own cadence (cheap check every few seconds, repairs at
//!   once), the output check, and the vault's health, events and alerts;
//! - [`metrics`]: Prometheus counters and the `/metrics` text; [`alerts`]: fallback alert
//!   channels;
//! - its own files are written with [`crate::files`].
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
