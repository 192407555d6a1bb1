//! The companion's error type: one enum the CLI and the tray can match on, with a stable
//! machine-readable [`CompanionError::code`] for the UI.

use super::config::ConfigError;
use super::reauth::ReauthError;
use super::secrets::SecretsError;
use crate::client::ClientError;
use crate::protocol::PairingCodeError;

/// Everything a companion operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompanionError {
    /// The config file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The device-token store.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// Talking to an agent.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A pairing code that cannot be read.
    #[error(transparent)]
    PairingCode(#[from] PairingCodeError),
    /// A re-authorization.
    #[error(transparent)]
    Reauth(#[from] ReauthError),
    /// No agent of that name is paired.
    #[error("no paired agent named `{name}` (paired: {known}); see `tether status`, or pair it with `tether pair CODE`")]
    UnknownAgent {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: String,
    },
    /// `AGENT/CREDENTIAL` was malformed.
    #[error("`{0}` is not AGENT/CREDENTIAL; write it like studio/youtube")]
    BadTarget(String),
    /// A local agent name cannot be used.
    #[error("`{0}` cannot be used as an agent name here: use 1-64 letters, digits, `.`, `_` or `-`; choose one with --name")]
    BadAgentName(String),
    /// Pairing would replace an agent and the owner did not confirm.
    #[error("agent {name} is already paired ({url}); not replaced. Confirm, or pass --yes to replace it")]
    NotReplaced {
        /// The existing agent.
        name: String,
        /// Its URL.
        url: String,
    },
    /// A pasted secret was empty.
    #[error("the new token for {0} is empty; paste the whole token (or pipe it in: `tether paste {0} < token.txt`)")]
    EmptySecret(String),
    /// A credential name that no agent can have (checked before anything is sent).
    #[error("`{credential}` on agent {agent} is not a credential name: use lower-case letters, digits, `_` and `-`")]
    BadCredentialName {
        /// The agent.
        agent: String,
        /// The name given.
        credential: String,
    },
    /// Settings out of range; nothing was written.
    #[error(transparent)]
    Settings(#[from] super::settings::OutOfRange),
    /// Pairing would replace an agent: the question to ask the owner (old and new URL
    /// and certificate); nothing was redeemed or written.
    #[error("{0}")]
    ConfirmReplace(String),
}

impl CompanionError {
    /// A stable code for user interfaces (`{code, message}`).
    pub fn code(&self) -> &'static str {
        use crate::client::ContactClass;
        match self {
            CompanionError::Config(_) => "config",
            CompanionError::Secrets(_) => "secrets",
            CompanionError::Client(e) | CompanionError::Reauth(ReauthError::Client(e)) => match e {
                ClientError::CertificateMismatch { .. } => "certificate_mismatch",
                // The window offers "another account on purpose" for this refusal.
                ClientError::Api { error, .. }
                    if error.code == crate::protocol::ErrorCode::WrongAccount =>
                {
                    "wrong_account"
                }
                ClientError::Api { .. } => "agent_refused",
                _ => match e.class() {
                    ContactClass::Unauthorized => "unauthorized",
                    ContactClass::ProtocolMismatch => "protocol_mismatch",
                    _ => "unreachable",
                },
            },
            CompanionError::PairingCode(_) => "bad_pairing_code",
            CompanionError::Reauth(e) if e.is_cancelled() => "cancelled",
            CompanionError::Reauth(ReauthError::AlreadyRunning { .. }) => "already_running",
            CompanionError::Reauth(ReauthError::NotRunning { .. }) => "not_running",
            CompanionError::Reauth(ReauthError::PasteKind { .. }) => "paste_kind",
            CompanionError::Reauth(ReauthError::BadAuthorizeUrl { .. }) => "bad_authorize_url",
            CompanionError::Reauth(ReauthError::ServerChanged { .. }) => "server_changed",
            CompanionError::Reauth(_) => "reauth_failed",
            CompanionError::UnknownAgent { .. } => "unknown_agent",
            CompanionError::BadTarget(_) => "bad_target",
            CompanionError::BadAgentName(_) => "bad_agent_name",
            CompanionError::NotReplaced { .. } => "not_replaced",
            CompanionError::EmptySecret(_) => "empty_secret",
            CompanionError::BadCredentialName { .. } | CompanionError::Settings(_) => "bad_input",
            CompanionError::ConfirmReplace(_) => "confirm_replace",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every level of `e`'s chain, outermost first.
    fn levels(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
        std::iter::successors(Some(e), |e| e.source())
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn a_refusal_of_another_account_has_its_own_code_for_the_window() {
        use crate::protocol::{ApiError, ErrorCode};
        let api = |code| {
            CompanionError::Client(ClientError::Api {
                agent: "studio".into(),
                status: 409,
                error: ApiError {
                    code,
                    message: "this is @other_bot".into(),
                    hint: None,
                },
            })
        };
        assert_eq!(api(ErrorCode::WrongAccount).code(), "wrong_account");
        assert_eq!(api(ErrorCode::WrongKind).code(), "agent_refused");
    }

    #[test]
    fn a_companion_error_chain_prints_each_cause_once() {
        let cases = [
            CompanionError::Config(ConfigError::Write {
                path: "/home/o/.config/tether/companion.toml".into(),
                source: std::io::Error::other("disk quota exceeded"),
            }),
            CompanionError::Reauth(ReauthError::Listener {
                agent: "studio".into(),
                credential: "youtube".into(),
                source: crate::oauth::ListenerError::Io {
                    port: 8765,
                    source: std::io::Error::other("address already in use"),
                },
            }),
        ];
        for e in cases {
            let levels = levels(&e);
            // What the CLI prints (`{err:#}`): every cause, each once.
            let printed = format!("{:#}", anyhow::Error::new(e));
            println!("{printed}");
            for (i, level) in levels.iter().enumerate() {
                if let Some(inner) = levels.get(i + 1) {
                    assert!(
                        !level.contains(inner.as_str()),
                        "{level:?} repeats its source {inner:?}"
                    );
                }
                assert_eq!(printed.matches(level.as_str()).count(), 1, "{printed}");
            }
            assert!(levels.len() >= 2, "{levels:?}");
        }
    }
}
