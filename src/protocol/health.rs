//! The health report (`GET /v1/health`) and its parts: per credential, per vault
//! location, the vault as a whole, alert channels and the HA lease.

use super::human::{PendingWork, PostedChallenge};
use super::state::{CredentialState, ErrorInfo, ReauthKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which checks run for a credential and how soon a death is noticed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Cadence {
    /// Seconds between liveness probes; `None` when the provider has no probe.
    #[serde(default)]
    pub probe_interval_secs: Option<u64>,
    /// Seconds between full refresh tests.
    #[serde(default)]
    pub refresh_interval_secs: u64,
    /// Worst-case seconds from a revocation to `dead`, as the daemon's schedule computes
    /// it (the longest gap between checks that see a revocation, plus a confirming refresh).
    #[serde(default)]
    pub worst_case_detection_secs: u64,
    /// `probe` (a liveness probe is in force) or `refresh_tests` (only refresh tests).
    #[serde(default)]
    pub mode: String,
    /// The probe in force, in words (`introspection (id.example/token/introspection)`).
    #[serde(default)]
    pub probe: Option<String>,
    /// The cadence and why, for the owner ("no probe for this provider: checked by refresh
    /// tests every 6h; set probe_url or refresh_interval").
    #[serde(default)]
    pub note: Option<String>,
}

/// The last liveness probe of a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeHealth {
    /// When the probe ran.
    pub at: DateTime<Utc>,
    /// `alive`, `gone` (confirmed or not by a refresh test), or `transient`.
    pub result: String,
    /// Detail for the owner (provider error code, HTTP status).
    #[serde(default)]
    pub detail: Option<String>,
}

/// Everything the companion needs to know about one credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialHealth {
    /// Credential name, `[a-z0-9][a-z0-9_-]{0,63}`.
    pub name: String,
    /// Provider preset name (`google`, `x`, ...).
    pub provider: String,
    /// Account label, if known (e.g. the channel name).
    #[serde(default)]
    pub account: Option<String>,
    /// Current state.
    pub state: CredentialState,
    /// When the credential entered `state`.
    pub since: DateTime<Utc>,
    /// When the last check (probe or refresh test) finished.
    #[serde(default)]
    pub last_check: Option<DateTime<Utc>>,
    /// The last error, if the last check failed.
    #[serde(default)]
    pub last_error: Option<ErrorInfo>,
    /// Access-token requests refused since the credential died.
    #[serde(default)]
    pub blocked_requests: u64,
    /// Known end of the refresh token.
    #[serde(default)]
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// How the credential is re-armed.
    pub reauth: ReauthKind,
    /// Newest vault generation.
    #[serde(default)]
    pub generation: u64,
    /// Check cadence and expected detection time.
    #[serde(default)]
    pub cadence: Option<Cadence>,
    /// The last liveness probe.
    #[serde(default)]
    pub last_probe: Option<ProbeHealth>,
    /// With several daemons sharing an OpenBao location (`ha = true`): this daemon's role
    /// for the credential and the lease's state. `None` for a daemon on its own.
    #[serde(default)]
    pub ha: Option<Box<HaHealth>>,
    /// What the owner must do for the agent, while the agent says a human is needed.
    #[serde(default)]
    pub challenge: Option<PostedChallenge>,
    /// Work the agent reports waiting.
    #[serde(default)]
    pub pending: Option<PendingWork>,
    /// True for `kind = "session"` credentials: no token, health is the agent's report.
    #[serde(default)]
    pub session: bool,
    /// True when the daemon can re-authorize it by device code (its provider has a device
    /// authorization endpoint): `POST .../device-reauth` starts one. Older daemons never
    /// say so, and their companions offer only the browser.
    #[serde(default)]
    pub device_reauth: bool,
}

impl CredentialHealth {
    /// A credential's health with only what every reply carries; the optional parts are at
    /// the defaults a reply without them parses to (nothing blocked, no error, no
    /// challenge). Callers set what they know with struct update syntax.
    pub fn new(
        name: impl Into<String>,
        provider: impl Into<String>,
        state: CredentialState,
        since: DateTime<Utc>,
        reauth: ReauthKind,
    ) -> CredentialHealth {
        CredentialHealth {
            name: name.into(),
            provider: provider.into(),
            account: None,
            state,
            since,
            last_check: None,
            last_error: None,
            blocked_requests: 0,
            refresh_expires_at: None,
            reauth,
            generation: 0,
            cadence: None,
            last_probe: None,
            ha: None,
            challenge: None,
            pending: None,
            session: false,
            device_reauth: false,
        }
    }
}

/// One credential's HA lease as one daemon sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HaHealth {
    /// `holder` (this daemon refreshes and commits) or `follower` (it serves the newest
    /// generation the holder committed).
    pub role: String,
    /// The holder's id, as last read from OpenBao.
    #[serde(default)]
    pub holder: Option<String>,
    /// This daemon's id.
    pub me: String,
    /// Seconds since the current holder took the lease.
    #[serde(default)]
    pub lease_age_secs: Option<f64>,
    /// Seconds since the lease was last renewed.
    #[serde(default)]
    pub renewed_secs_ago: Option<f64>,
    /// The last error talking to OpenBao about the lease.
    #[serde(default)]
    pub error: Option<String>,
}

impl HaHealth {
    /// In words, for `tether status` and the tray: "holder, lease 42s old" or "follower
    /// of studio@b#12-x, lease 42s old, renewed 1s ago".
    pub fn phrase(&self) -> String {
        let secs = |s: f64| format!("{}s", s.round() as u64);
        let mut out = match (self.role.as_str(), &self.holder) {
            ("holder", _) => "HA holder (refreshes here)".to_string(),
            (_, Some(h)) => format!("HA follower of {h}"),
            _ => "HA follower (no holder yet)".to_string(),
        };
        if let Some(a) = self.lease_age_secs {
            out.push_str(&format!(", lease {} old", secs(a)));
        }
        if let Some(r) = self.renewed_secs_ago {
            out.push_str(&format!(", renewed {} ago", secs(r)));
        }
        if let Some(e) = &self.error {
            out.push_str(&format!("; OpenBao: {e}"));
        }
        out
    }
}

/// Health of one vault location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationHealth {
    /// Location label: role and path (`primary /var/lib/tether/vault`, `backup 1 /mnt/b`).
    pub name: String,
    /// Whether the last write or read there worked and it has room for the next one.
    pub ok: bool,
    /// What went wrong there, if anything.
    #[serde(default)]
    pub error: Option<String>,
    /// Machine-readable kind of trouble: `no_space`, `read_only`, `permission_denied`,
    /// `missing`, `not_a_directory`, `io`; for OpenBao also `unreachable`, `stale`,
    /// `remote_error`; `None` while ok.
    #[serde(default)]
    pub code: Option<String>,
}

/// Kind of trouble in [`LocationHealth::code`], in words: "primary /x **is full**".
pub fn location_problem_words(code: Option<&str>) -> &'static str {
    match code {
        Some("no_space") => "is full",
        Some("read_only") => "is read-only",
        Some("permission_denied") => "cannot be written (permission denied)",
        Some("missing") => "is missing",
        Some("not_a_directory") => "is not a directory",
        _ => "is failing",
    }
}

/// The vault as a whole, as the owner hears about it: `degraded` while any location fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultHealth {
    /// `ok`, or `degraded` while a location fails (the others still hold every credential).
    pub state: CredentialState,
    /// When the vault entered `state`.
    pub since: DateTime<Utc>,
    /// Locations that hold every credential's newest generation and can take the next.
    pub locations_ok: u32,
    /// Configured locations.
    pub locations_total: u32,
    /// The failing locations.
    #[serde(default)]
    pub failing: Vec<LocationHealth>,
    /// Repairs since the daemon started (wiped, damaged or missing copies rewritten).
    #[serde(default)]
    pub repairs: u64,
    /// The newest repair, in words.
    #[serde(default)]
    pub last_repair: Option<String>,
}

impl VaultHealth {
    /// "primary /x is full" for the first failing location (plus "and N more").
    pub fn trouble_summary(&self) -> Option<String> {
        let first = self.failing.first()?;
        let mut s = format!(
            "{} {}",
            first.name,
            location_problem_words(first.code.as_deref())
        );
        if self.failing.len() > 1 {
            s.push_str(&format!(" (and {} more)", self.failing.len() - 1));
        }
        Some(s)
    }

    /// "the credential is stored in 2 of 3 places".
    pub fn copies_phrase(&self, credentials: usize) -> String {
        let what = if credentials == 1 {
            "the credential is"
        } else {
            "credentials are"
        };
        format!(
            "{what} stored in {} of {} places",
            self.locations_ok, self.locations_total
        )
    }
}

/// Health of one alert channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelHealth {
    /// Channel label from the config.
    pub name: String,
    /// `webhook`, `ntfy`, `telegram`, `email`.
    pub kind: String,
    /// Whether the last send worked (true before any send).
    pub ok: bool,
    /// Alerts delivered.
    #[serde(default)]
    pub sent: u64,
    /// Sends that failed after all retries.
    #[serde(default)]
    pub failed: u64,
    /// The last failure.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// The last run of a credential's `on_change` hook (what tells the agent its token
/// changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookHealth {
    /// The credential.
    pub credential: String,
    /// When it ran.
    pub at: DateTime<Utc>,
    /// The generation it announced.
    pub generation: u64,
    /// The credential's state it announced.
    pub state: CredentialState,
    /// True when it worked.
    pub ok: bool,
    /// What happened ("agent-reload exited 0 in 40 ms"), or why it failed and the fix.
    pub result: String,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// The agent's name (e.g. `studio`).
    pub agent: String,
    /// Daemon version (crate version).
    pub version: String,
    /// [`PROTOCOL_VERSION`] of the daemon.
    pub protocol: u32,
    /// Every credential.
    pub credentials: Vec<CredentialHealth>,
    /// Every vault location.
    #[serde(default)]
    pub locations: Vec<LocationHealth>,
    /// Every alert channel.
    #[serde(default)]
    pub alerts: Vec<ChannelHealth>,
    /// What the vault repaired since start (human-readable lines).
    #[serde(default)]
    pub repaired: Vec<String>,
    /// The vault as a whole (absent from daemons before it was added).
    #[serde(default)]
    pub vault: Option<VaultHealth>,
    /// The last `on_change` run of each credential that has one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_change: Vec<HookHealth>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_is_what_a_reply_with_only_the_required_fields_parses_to() {
        let since = Utc::now();
        let parsed: CredentialHealth = serde_json::from_value(serde_json::json!({
            "name": "youtube", "provider": "google", "state": "dead",
            "since": since, "reauth": "oauth",
        }))
        .unwrap();
        let built = CredentialHealth::new(
            "youtube",
            "google",
            CredentialState::Dead,
            since,
            ReauthKind::Oauth,
        );
        assert_eq!(built, parsed);
    }
}
