//! The defaults and limits of `agent.toml`, and how its durations read ("90s", "6h"),
//! shared by the agent-wide settings and each credential's.

use serde::Deserializer;
use std::time::Duration;

/// Default time between liveness probes.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(60);
/// Shortest probe interval accepted (providers rate-limit their introspection endpoints).
pub const MIN_PROBE_INTERVAL: Duration = Duration::from_secs(15);
/// Default time between full refresh tests.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(6 * 3600);
/// Default warning window before a known refresh-token end.
pub const DEFAULT_WARNING_WINDOW: Duration = Duration::from_secs(14 * 24 * 3600);
/// Default margin: access tokens are refreshed this long before they expire.
pub const DEFAULT_REFRESH_AHEAD: Duration = Duration::from_secs(120);
/// Default lifetime of a re-auth session.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(600);
/// Default interval of SSE heartbeats.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// Default interval of the vault's cheap check (free space, changed files).
pub const DEFAULT_VAULT_CHECK: Duration = Duration::from_secs(5);
/// Default time connections get to finish at shutdown, below systemd's 30 s stop timeout.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Default deadline for receiving a request's headers or its whole body.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub(in crate::agent::config) fn de_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Duration, D::Error> {
    crate::duration::humane::deserialize(d)
}

pub(in crate::agent::config) fn de_opt_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    crate::duration::humane::deserialize(d).map(Some)
}
