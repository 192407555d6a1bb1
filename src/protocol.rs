//! Wire types shared by the agent daemon and the companion, and the protocol version.
//!
//! Both sides use these types, so a change here is a change to the protocol. New fields
//! are `#[serde(default)]` so an older peer still parses a newer reply; anything that
//! breaks that rule bumps [`PROTOCOL_VERSION`].

use crate::secret::{AccessToken, ApiToken, AuthorizationCode, PairingSecret};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod human;
pub use human::{
    Challenge, PendingWork, PostedChallenge, SessionReport, MAX_CHALLENGE_TEXT, MAX_QR_PAYLOAD,
};

/// Version of the HTTP protocol spoken under [`API_PREFIX`]. Every health reply carries it.
pub const PROTOCOL_VERSION: u32 = 1;
/// Every authenticated route lives under this prefix.
pub const API_PREFIX: &str = "/v1";
/// Largest request body the daemon accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The URL scheme of pairing links (`tether://pair?...`).
pub const PAIR_LINK_PREFIX: &str = "tether://pair?";

/// Health of one credential, worst last so `max()` gives the worst state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialState {
    /// Never checked since the daemon started.
    Unchecked,
    /// The last check worked.
    Ok,
    /// Works, but the refresh token has a known end inside the warning window.
    Expiring,
    /// Transient trouble (network, 5xx, rate limit); retried with backoff, not dead.
    Degraded,
    /// The provider said the grant is gone: a human must re-authorize.
    Dead,
    /// A state this side does not know (a newer peer's): shown as `unknown`, never a reason
    /// to refuse the whole reply.
    #[serde(other)]
    Unknown,
}

impl CredentialState {
    /// Rank for "worst state" decisions (tray colour, exit codes).
    pub fn severity(self) -> u8 {
        match self {
            CredentialState::Ok => 0,
            CredentialState::Unchecked | CredentialState::Unknown => 1,
            CredentialState::Expiring => 2,
            CredentialState::Degraded => 3,
            CredentialState::Dead => 4,
        }
    }

    /// Lower-case name as used on the wire and in texts.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialState::Unchecked => "unchecked",
            CredentialState::Ok => "ok",
            CredentialState::Expiring => "expiring",
            CredentialState::Degraded => "degraded",
            CredentialState::Dead => "dead",
            CredentialState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for CredentialState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a dead credential is brought back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReauthKind {
    /// Browser consent through the loopback listener.
    Oauth,
    /// The owner pastes a new token (Telegram bot token, GitHub PAT).
    Paste,
    /// Tether cannot re-arm it.
    None,
    /// A way this side does not know (a newer peer's).
    #[serde(other)]
    Unknown,
}

/// A provider's error, as shown to the owner: never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// Machine-readable code, e.g. `invalid_grant`.
    pub code: String,
    /// Human-readable description from the provider or from Tether.
    pub description: String,
}

impl std::fmt::Display for ErrorInfo {
    /// `code: description`, or the code alone when the provider sent no description
    /// (never a dangling separator).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.description.trim();
        if d.is_empty() {
            f.write_str(self.code.trim())
        } else {
            write!(f, "{}: {d}", self.code.trim())
        }
    }
}

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
}

/// One server-sent event from `GET /v1/events` (the SSE `data:` line is this JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// Events are built, sent and dropped at once; boxing the big variant would only add an
// allocation per state change.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// A credential changed state (or its details changed).
    StateChanged {
        /// The agent's name.
        agent: String,
        /// The state before.
        previous: CredentialState,
        /// The credential now.
        credential: CredentialHealth,
    },
    /// The vault's health changed: a location failed or recovered, or a copy was repaired.
    /// (Older companions skip event types they do not know.)
    VaultChanged {
        /// The agent's name.
        agent: String,
        /// The vault now.
        vault: VaultHealth,
    },
    /// A credential that was dead works again. Sent only on the agent's own stream
    /// (`GET /v1/events` with an agent token), so the agent resumes at once.
    Recovered {
        /// The agent's name.
        agent: String,
        /// The credential.
        credential: String,
        /// The work the agent said was waiting.
        #[serde(default)]
        pending: Option<PendingWork>,
        /// When it recovered.
        at: DateTime<Utc>,
    },
    /// Sent every few seconds so the companion knows the stream is alive.
    Heartbeat {
        /// Server time.
        at: DateTime<Utc>,
    },
}

/// `POST /v1/pair` request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairRequest {
    /// The single-use secret from the pairing code.
    pub secret: PairingSecret,
    /// A label for the device (host name of the laptop).
    pub device_name: String,
}

/// `POST /v1/pair` reply.
#[derive(Debug, Serialize, Deserialize)]
pub struct PairResponse {
    /// The agent's name.
    pub agent: String,
    /// Id of the new device, for `tether agent revoke`.
    pub device_id: String,
    /// Long-lived device token; the daemon keeps only its hash.
    pub device_token: ApiToken,
    /// Daemon protocol version.
    pub protocol: u32,
    /// Daemon version.
    pub version: String,
}

/// Port rule for the loopback redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedirectPort {
    /// Any free port (bind port 0).
    Any,
    /// Exactly this port (the provider matches the registered URI exactly).
    Fixed(u16),
}

/// Where the companion must listen for the provider's redirect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectRequirement {
    /// Host name to put in `redirect_uri` (`127.0.0.1`, or `localhost` for Microsoft).
    pub host: String,
    /// Port rule.
    pub port: RedirectPort,
    /// Path of the callback, e.g. `/callback`.
    pub path: String,
}

/// `POST /v1/credentials/{name}/reauth` reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReauthStart {
    /// Session id for the completion call.
    pub session: String,
    /// The credential being re-authorized.
    pub credential: String,
    /// Authorization URL without `redirect_uri`; the companion appends it.
    pub authorize_url: String,
    /// The `state` the provider will echo; the listener checks it.
    pub state: String,
    /// Where to listen.
    pub redirect: RedirectRequirement,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}

/// `POST /v1/reauth/{session}/complete` request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReauthComplete {
    /// The authorization code from the redirect.
    pub code: AuthorizationCode,
    /// The `state` from the redirect.
    pub state: String,
    /// The exact `redirect_uri` used in the authorization request.
    pub redirect_uri: String,
    /// Replace the credential's account by the one just signed in (`--new-account`);
    /// sent only when true, so older daemons still read the request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_account: bool,
}

/// `PUT /v1/credentials/{name}/secret` request (paste-kind credentials).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretPut {
    /// The new token.
    pub secret: AccessToken,
}

/// `GET /v1/credentials/{name}/access-token` reply.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessTokenReply {
    /// The credential name.
    pub credential: String,
    /// A fresh access token.
    pub access_token: AccessToken,
    /// Usually `Bearer`.
    pub token_type: String,
    /// When it stops working, if known.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// `POST /v1/credentials/{name}/rejected` request (agent token): "the API refused the
/// access token you gave me". Every field is optional; an empty body is fine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectedReport {
    /// The HTTP status the API answered (401, 403, ...).
    #[serde(default)]
    pub status: Option<u16>,
    /// What the API said, for the daemon's log (never a secret: do not send the token).
    #[serde(default)]
    pub detail: Option<String>,
    /// Jobs waiting because of it (0 clears).
    #[serde(default)]
    pub pending: Option<u64>,
    /// When the oldest waiting job was queued.
    #[serde(default)]
    pub oldest: Option<DateTime<Utc>>,
    /// What the jobs are, plural noun ("uploads").
    #[serde(default)]
    pub what: Option<String>,
}

/// `POST /v1/credentials/{name}/rejected` reply: the credential after one confirming
/// refresh test and, while it is alive, a fresh access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct RejectedReply {
    /// The credential's health after the confirming refresh test.
    pub credential: CredentialHealth,
    /// A fresh access token, when the credential is alive.
    #[serde(default)]
    pub token: Option<AccessTokenReply>,
}

/// Machine-readable error codes in [`ApiError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// No or unknown token.
    Unauthorized,
    /// A token of the wrong role.
    Forbidden,
    /// Unknown credential, session or route.
    NotFound,
    /// Malformed request.
    BadRequest,
    /// Body over [`MAX_BODY_BYTES`].
    PayloadTooLarge,
    /// Too many attempts.
    RateLimited,
    /// The credential is dead; re-authorize.
    CredentialDead,
    /// The re-auth session is unknown, used or expired.
    SessionExpired,
    /// The `state` did not match.
    StateMismatch,
    /// The provider refused (code and description in the message).
    ProviderError,
    /// The provider could not be reached or failed transiently.
    ProviderUnavailable,
    /// The operation does not apply to this credential (e.g. paste on an OAuth one).
    WrongKind,
    /// A re-authorization signed in as another account than the credential's.
    WrongAccount,
    /// Anything else.
    Internal,
    /// A code this side does not know (a newer daemon's).
    #[serde(other)]
    Unknown,
}

/// Every error reply from the daemon: `{code, message}` plus an optional hint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// What failed, on which object.
    pub message: String,
    /// How to fix it.
    #[serde(default)]
    pub hint: Option<String>,
}

/// The contents of a pairing code: `tether://pair?url=...&fp=...&secret=...`.
#[derive(Debug, Clone)]
pub struct PairingCode {
    /// Base URL of the daemon, e.g. `https://studio.example:7443`.
    pub url: String,
    /// Hex SHA-256 fingerprint of the daemon's certificate (DER), if it uses its own.
    pub fingerprint: Option<String>,
    /// The single-use secret.
    pub secret: PairingSecret,
}

/// Why a pairing code could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PairingCodeError {
    /// Not a `tether://pair?` link.
    #[error("not a pairing code: it must start with `{PAIR_LINK_PREFIX}`; copy the whole line printed by `tether agent pair`")]
    WrongPrefix,
    /// A required field is missing.
    #[error("pairing code has no `{0}` field; copy the whole line printed by `tether agent pair`")]
    Missing(&'static str),
}

impl PairingCode {
    /// Renders the code as a `tether://pair?` link.
    pub fn to_link(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("url", &self.url);
        if let Some(fp) = &self.fingerprint {
            q.append_pair("fp", fp);
        }
        q.append_pair("secret", self.secret.secret());
        format!("{PAIR_LINK_PREFIX}{}", q.finish())
    }

    /// Parses a `tether://pair?` link.
    pub fn parse(code: &str) -> Result<Self, PairingCodeError> {
        let query = code
            .trim()
            .strip_prefix(PAIR_LINK_PREFIX)
            .ok_or(PairingCodeError::WrongPrefix)?;
        let (mut url, mut fp, mut secret) = (None, None, None);
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "url" => url = Some(v.into_owned()),
                "fp" => fp = Some(v.into_owned()),
                "secret" => secret = Some(PairingSecret::new(v.into_owned())),
                _ => {}
            }
        }
        Ok(PairingCode {
            url: url.ok_or(PairingCodeError::Missing("url"))?,
            fingerprint: fp,
            secret: secret.ok_or(PairingCodeError::Missing("secret"))?,
        })
    }
}

/// True when `name` is a valid credential name: `[a-z0-9][a-z0-9_-]{0,63}`.
pub fn valid_credential_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_info_never_dangles_a_separator() {
        let e = |c: &str, d: &str| ErrorInfo {
            code: c.into(),
            description: d.into(),
        };
        assert_eq!(e("invalid_grant", "").to_string(), "invalid_grant");
        assert_eq!(e("invalid_grant", "  ").to_string(), "invalid_grant");
        assert_eq!(
            e("invalid_grant", "Token has been expired or revoked.").to_string(),
            "invalid_grant: Token has been expired or revoked."
        );
    }

    #[test]
    fn credential_names() {
        assert!(valid_credential_name("youtube"));
        assert!(valid_credential_name("x_main-2"));
        assert!(!valid_credential_name(""));
        assert!(!valid_credential_name("-x"));
        assert!(!valid_credential_name("../etc"));
        assert!(!valid_credential_name("a/b"));
        assert!(!valid_credential_name("a\0b"));
        assert!(!valid_credential_name("YouTube"));
        assert!(!valid_credential_name(&"a".repeat(65)));
        assert!(valid_credential_name(&"a".repeat(64)));
    }

    #[test]
    fn pairing_code_round_trip() {
        let code = PairingCode {
            url: "https://127.0.0.1:7443".into(),
            fingerprint: Some("ab".repeat(32)),
            secret: PairingSecret::new("s3cr&t"),
        };
        let parsed = PairingCode::parse(&code.to_link()).unwrap();
        assert_eq!(parsed.url, code.url);
        assert_eq!(parsed.fingerprint, code.fingerprint);
        assert_eq!(parsed.secret.secret(), "s3cr&t");
        assert!(PairingCode::parse("https://x").is_err());
    }

    #[test]
    fn state_severity_orders_worst_last() {
        assert!(CredentialState::Dead.severity() > CredentialState::Degraded.severity());
        assert!(CredentialState::Expiring.severity() > CredentialState::Ok.severity());
    }

    #[test]
    fn redirect_port_wire_form() {
        assert_eq!(
            serde_json::to_string(&RedirectPort::Any).unwrap(),
            "\"any\""
        );
        assert_eq!(
            serde_json::to_string(&RedirectPort::Fixed(8765)).unwrap(),
            "{\"fixed\":8765}"
        );
    }
}
