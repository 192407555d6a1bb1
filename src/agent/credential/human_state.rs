//! The human side of a credential ([`HumanState`]): its open challenge, the work the
//! agent reports waiting and its last report, and the errors a credential shows while a
//! human must act. The rules of who may post or resolve a challenge are
//! `human::challenge`.

use crate::agent::error::CheckError;
use crate::oauth::{ErrorClass, OAuthError};
use crate::protocol::{Challenge, ErrorInfo, PendingWork, PostedChallenge};

/// Error code of a credential that waits for the owner to answer a challenge.
pub const HUMAN_NEEDED: &str = "human_needed";
/// Error code of a session the agent reports broken (without a challenge yet).
pub const SESSION_DOWN: &str = "session_down";

/// The agent's side of a credential: its open challenge, pending work, last report.
#[derive(Debug, Clone, Default)]
pub struct HumanState {
    /// The open challenge.
    pub challenge: Option<PostedChallenge>,
    /// Work the agent reports waiting.
    pub pending: Option<PendingWork>,
    /// When the agent last reported on its session (`session` credentials).
    pub last_report: Option<tokio::time::Instant>,
    /// When the agent last posted a challenge (posts are rate-limited).
    pub last_post: Option<tokio::time::Instant>,
}

/// `human_needed: scan the QR code with your phone`.
pub fn human_needed(c: &Challenge) -> ErrorInfo {
    ErrorInfo {
        code: HUMAN_NEEDED.into(),
        description: format!("human needed: {}", c.need_words()),
    }
}

/// A check error that makes the credential `dead` with `info`.
pub(crate) fn dead_error(provider: &str, info: ErrorInfo) -> CheckError {
    CheckError::Provider(OAuthError {
        provider: provider.to_string(),
        class: ErrorClass::Dead,
        info,
    })
}
