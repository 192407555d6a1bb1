//! The daemon's HTTPS API: the top layer, which nothing else in `agent` imports.
//!
//! - [`server`]: TLS, the accept loop, background tasks, graceful shutdown;
//! - [`routes`]: the axum routes (built from `API_PREFIX`) and handlers;
//! - [`human_routes`]: the challenge and session routes;
//! - [`metrics_page`]: the `/metrics` text (counters and gauges of the current state);
//! - [`events`]: the companion's event stream and the agent's own (`recovered`);
//! - [`extract`]: bearer roles, bodies, credential names;
//! - [`error_reply`]: `OpError` → status and JSON error.

pub mod error_reply;
pub mod events;
pub mod extract;
pub mod human_routes;
pub mod metrics_page;
pub mod routes;
pub mod server;

pub use server::{serve, ServeError};
