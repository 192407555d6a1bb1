//! `tether status`: every paired agent and credential, as stable JSON or coloured text.
//!
//! The JSON shape (`schema` 1) is for scripts: fields are only ever added.

use super::local_time::when;
use crate::client::{AgentClient, ClientError, ContactClass};
use crate::protocol::{CredentialHealth, CredentialState, ErrorInfo, ReauthKind, VaultHealth};
use chrono::{DateTime, Local, Utc};
use serde::Serialize;

/// A contact attempt's outcome: the value, or its class and message.
pub type ContactResult<T> = Result<T, (ContactClass, String)>;

/// One agent to report on: local name, URL, and the outcome (a client, or a health report).
pub type AgentRow<T> = (String, String, ContactResult<T>);

/// Version of the JSON shape.
pub const STATUS_SCHEMA: u32 = 1;

/// One credential in the report.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialStatus {
    /// Name.
    pub name: String,
    /// Provider preset.
    pub provider: String,
    /// Account label, if known.
    pub account: Option<String>,
    /// State.
    pub state: CredentialState,
    /// In this state since.
    pub since: DateTime<Utc>,
    /// Last check.
    pub last_check: Option<DateTime<Utc>>,
    /// Last error.
    pub last_error: Option<ErrorInfo>,
    /// Refused access-token requests since it died.
    pub blocked_requests: u64,
    /// Known end of the refresh token.
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// How it is re-armed.
    pub reauth: ReauthKind,
    /// How the daemon checks it, in words, when no probe is in force ("no probe for this
    /// provider: checked by refresh tests every 6h; ...").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked: Option<String>,
    /// With several daemons sharing OpenBao: this daemon's role and the lease, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ha: Option<String>,
}

impl From<&CredentialHealth> for CredentialStatus {
    fn from(c: &CredentialHealth) -> Self {
        CredentialStatus {
            name: c.name.clone(),
            provider: c.provider.clone(),
            account: c.account.clone(),
            state: c.state,
            since: c.since,
            last_check: c.last_check,
            last_error: c.last_error.clone(),
            blocked_requests: c.blocked_requests,
            refresh_expires_at: c.refresh_expires_at,
            reauth: c.reauth,
            checked: c
                .cadence
                .as_ref()
                .filter(|c| c.mode == "refresh_tests")
                .and_then(|c| c.note.clone()),
            ha: c.ha.as_ref().map(|h| h.phrase()),
        }
    }
}

/// One agent in the report.
#[derive(Debug, Clone, Serialize)]
pub struct AgentStatus {
    /// Local name.
    pub name: String,
    /// URL.
    pub url: String,
    /// Contact result.
    pub contact: ContactClass,
    /// The contact error, when not ready.
    pub error: Option<String>,
    /// Daemon version, when reachable.
    pub version: Option<String>,
    /// Credentials (empty when not reachable).
    pub credentials: Vec<CredentialStatus>,
    /// The agent's vault (`None` when not reachable, or from a daemon that does not say).
    pub vault: Option<VaultHealth>,
    /// The last run of each credential's `on_change` hook.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub on_change: Vec<crate::protocol::HookHealth>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// [`STATUS_SCHEMA`].
    pub schema: u32,
    /// True when every agent answered, no credential is dead and no vault is degraded.
    pub ok: bool,
    /// Every paired agent.
    pub agents: Vec<AgentStatus>,
}

impl StatusReport {
    /// Builds the report from per-agent results.
    pub fn from_results(results: Vec<AgentRow<crate::protocol::HealthReport>>) -> StatusReport {
        let agents: Vec<AgentStatus> = results
            .into_iter()
            .map(|(name, url, r)| match r {
                Ok(h) => AgentStatus {
                    name,
                    url,
                    contact: ContactClass::Ready,
                    error: None,
                    version: Some(h.version),
                    credentials: h.credentials.iter().map(CredentialStatus::from).collect(),
                    vault: h.vault,
                    on_change: h.on_change,
                },
                Err((class, message)) => AgentStatus {
                    name,
                    url,
                    contact: class,
                    error: Some(message),
                    version: None,
                    credentials: Vec::new(),
                    vault: None,
                    on_change: Vec::new(),
                },
            })
            .collect();
        let ok = agents.iter().all(|a| {
            a.contact == ContactClass::Ready
                && a.credentials
                    .iter()
                    .all(|c| c.state != CredentialState::Dead)
                && a.vault
                    .as_ref()
                    .is_none_or(|v| v.state == CredentialState::Ok)
        });
        StatusReport {
            schema: STATUS_SCHEMA,
            ok,
            agents,
        }
    }

    /// Human-readable text; ANSI colours only when `color`. Text from the daemon passes
    /// [`super::terminal::safe`], so the only escape sequences are our colours.
    pub fn render(&self, color: bool, now: DateTime<Local>) -> String {
        use super::terminal::safe;
        let paint = |code: &str, s: &str| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        if self.agents.is_empty() {
            return "no agents paired; run `tether agent pair` on the agent's server, then `tether pair CODE` here\n".into();
        }
        let mut out = String::new();
        for a in &self.agents {
            let contact = match a.contact {
                ContactClass::Ready => paint(
                    "32",
                    &format!(
                        "reachable (tether {})",
                        safe(a.version.as_deref().unwrap_or("?"))
                    ),
                ),
                ContactClass::Unreachable => paint("1;31", "unreachable"),
                ContactClass::Unauthorized => paint("1;31", "not paired any more"),
                ContactClass::ProtocolMismatch => paint("1;33", "version mismatch"),
            };
            out.push_str(&format!(
                "{}  {}  {}\n",
                paint("1", &safe(&a.name)),
                safe(&a.url),
                contact
            ));
            if let Some(e) = &a.error {
                out.push_str(&format!("  {}\n", safe(e)));
            }
            let width = a
                .credentials
                .iter()
                .map(|c| c.name.len())
                .max()
                .unwrap_or(0);
            for c in &a.credentials {
                let state = format!("{:<9}", c.state.as_str());
                let state = match c.state {
                    CredentialState::Ok => paint("32", &state),
                    CredentialState::Dead => paint("1;31", &state),
                    CredentialState::Expiring | CredentialState::Degraded => paint("33", &state),
                    CredentialState::Unchecked | CredentialState::Unknown => paint("2", &state),
                };
                let mut line = format!(
                    "  {:<width$}  {state} since {}",
                    safe(&c.name),
                    when(c.since, now)
                );
                if c.blocked_requests > 0 {
                    line.push_str(&format!("  {} refused", c.blocked_requests));
                }
                if let Some(e) = &c.last_error {
                    line.push_str(&format!("  {}", safe(&e.to_string())));
                }
                if c.state == CredentialState::Dead {
                    line.push_str(&match c.reauth {
                        ReauthKind::Oauth => {
                            format!("  → tether reauth {}/{}", a.name, safe(&c.name))
                        }
                        ReauthKind::Paste => {
                            format!("  → tether paste {}/{}", a.name, safe(&c.name))
                        }
                        ReauthKind::None | ReauthKind::Unknown => String::new(),
                    });
                }
                out.push_str(&line);
                out.push('\n');
                // No probe in force: say how (and how rarely) it is checked.
                if let Some(note) = &c.checked {
                    out.push_str(&format!("  {:<width$}  {}\n", "", paint("2", &safe(note))));
                }
                if let Some(ha) = &c.ha {
                    out.push_str(&format!("  {:<width$}  {}\n", "", paint("2", &safe(ha))));
                }
            }
            for run in a.on_change.iter().filter(|r| !r.ok) {
                out.push_str(&format!(
                    "  {}  {}: {} ({})\n",
                    paint("33", "on_change failed"),
                    safe(&run.credential),
                    safe(&run.result),
                    when(run.at, now)
                ));
            }
            if let Some(v) = &a.vault {
                if let Some(trouble) = v.trouble_summary() {
                    out.push_str(&format!(
                        "  {}  {trouble} — {} since {}\n",
                        paint("33", "vault degraded"),
                        v.copies_phrase(a.credentials.len()),
                        when(v.since, now)
                    ));
                }
                if let Some(r) = &v.last_repair {
                    out.push_str(&format!("  vault repairs: {}; last: {r}\n", v.repairs));
                }
            }
        }
        out
    }
}

/// Asks every agent for its health, concurrently. Each entry is (name, url, client or
/// the reason there is none).
pub async fn collect(clients: Vec<AgentRow<AgentClient>>) -> StatusReport {
    let futures = clients.into_iter().map(|(name, url, c)| async move {
        let r = match c {
            Ok(client) => client
                .health()
                .await
                .map_err(|e: ClientError| (e.class(), crate::report::chain(&e))),
            Err(e) => Err(e),
        };
        (name, url, r)
    });
    StatusReport::from_results(futures_util::future::join_all(futures).await)
}
