//! The pure rules of a `kind = "session"` credential (the agent's own session, which
//! Tether cannot test): what health says about how it is watched, the error code of a
//! stale one, and the refusal of token operations. The task that applies the staleness
//! rule is `human::session`.

use crate::agent::config::CredentialConfig;
use crate::agent::error::OpError;
use crate::protocol::Cadence;

/// Error code of a session whose agent stopped reporting.
pub const SESSION_STALE: &str = "session_stale";

/// Token operations (access tokens, browser re-authorization) on a session credential
/// are refused with what to do instead.
pub(crate) fn refuse_token_ops(cfg: &CredentialConfig) -> Result<(), OpError> {
    if !cfg.is_session() {
        return Ok(());
    }
    Err(OpError::WrongKind {
        name: cfg.name.clone(),
        message: "this is a session credential: it holds no token, and the agent re-links it itself by posting a challenge (POST /v1/credentials/{name}/challenge) that the owner answers".into(),
    })
}

/// What health says about how a session credential is watched.
pub fn cadence(cfg: &CredentialConfig) -> Cadence {
    let note = match cfg.stale_after {
        Some(d) => format!(
            "the agent reports its session; dead when it has not reported for {}",
            crate::duration::format(d)
        ),
        None => "the agent reports its session (no staleness rule: set stale_after to notice an agent that stopped reporting)".into(),
    };
    Cadence {
        probe_interval_secs: None,
        refresh_interval_secs: 0,
        worst_case_detection_secs: cfg.stale_after.map_or(0, |d| d.as_secs()),
        mode: "agent_reports".into(),
        probe: None,
        note: Some(note),
    }
}
