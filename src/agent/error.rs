//! The daemon's errors: why it could not be built ([`DaemonError`]), why a check or
//! refresh failed ([`CheckError`], shared by every caller of one single-flight refresh),
//! and why an API operation failed ([`OpError`], which the HTTP layer maps to a status;
//! [`RedirectMismatch`] is one of them).
//! A [`CheckError`] becomes an [`OpError`] in one place, [`CheckError::into_op`].

use crate::agent::access::reauth_sessions::SessionError;
use crate::oauth::OAuthError;
use crate::protocol::ErrorInfo;
use crate::provider;

/// Why the daemon could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The config is not usable.
    #[error(transparent)]
    Config(#[from] crate::agent::config::ConfigError),
    /// The TLS identity could not be loaded or made.
    #[error(transparent)]
    Tls(#[from] crate::agent::access::tls::TlsError),
    /// The token store could not be opened.
    #[error(transparent)]
    Auth(#[from] crate::agent::access::auth::AuthError),
    /// The vault could not be opened.
    #[error("failed to open the vault")]
    Vault(#[from] crate::vault::VaultError),
    /// A credential's provider is not usable.
    #[error("credential {credential}: its provider is not usable")]
    Provider {
        /// The credential.
        credential: String,
        /// The cause.
        #[source]
        source: provider::ProviderError,
    },
    /// The `[alerts]` section is not usable (its own error names the channel or the
    /// parse error, and the fix).
    #[error(transparent)]
    Alerts(#[from] crate::agent::alerts::AlertsConfigError),
    /// A directory in the state directory cannot be made.
    #[error("cannot create {path}; check the permissions of the state directory")]
    StateDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Why an API operation failed; the HTTP layer maps each to a status and `ApiError`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// No credential of that name.
    #[error("credential {0} is not configured on this agent")]
    UnknownCredential(String),
    /// The credential is dead; the request was refused and counted.
    #[error("credential {name} on agent {agent} is dead ({error}); run `tether reauth {agent}/{name}`", error = ErrorInfo { code: code.clone(), description: description.clone() })]
    Dead {
        /// Agent name.
        agent: String,
        /// Credential.
        name: String,
        /// Error code.
        code: String,
        /// Description.
        description: String,
    },
    /// No token stored yet.
    #[error(
        "credential {name} on agent {agent} has no token yet; run `tether reauth {agent}/{name}`"
    )]
    NoToken {
        /// Agent name.
        agent: String,
        /// Credential.
        name: String,
    },
    /// The provider refused or failed.
    #[error("credential {name}")]
    Provider {
        /// Credential.
        name: String,
        /// The classified error.
        source: OAuthError,
    },
    /// The vault could not store the result.
    #[error("credential {name}: {message}")]
    Vault {
        /// Credential.
        name: String,
        /// What failed.
        message: String,
    },
    /// A re-auth session problem.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A re-authorization signed in as another account than the credential's.
    #[error("this is {got}; {agent} · {name} belongs to {expected}: {}", account_fix(*.pasted, agent, name))]
    WrongAccount {
        /// Agent name.
        agent: String,
        /// Credential.
        name: String,
        /// The account the credential belongs to.
        expected: String,
        /// The account just signed in (or whose token was pasted).
        got: String,
        /// A pasted token rather than a sign-in: the fix is another paste.
        pasted: bool,
    },
    /// The operation does not fit the credential's kind.
    #[error("credential {name}: {message}")]
    WrongKind {
        /// Credential.
        name: String,
        /// What to do instead.
        message: String,
    },
    /// The agent may not do this to the credential's challenge (its config does not let
    /// the agent ask the owner, or the open challenge is the daemon's own).
    #[error("credential {name}: {why}")]
    ChallengeRefused {
        /// Credential.
        name: String,
        /// What is refused and the setting or step that would allow it.
        why: String,
    },
    /// Too many requests of one kind for one credential.
    #[error("credential {name}: {what}; retry in {retry_after_secs} s")]
    RateLimited {
        /// Credential.
        name: String,
        /// What was too frequent.
        what: &'static str,
        /// When to try again.
        retry_after_secs: u64,
    },
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// A posted challenge breaks a rule of its kind.
    #[error(transparent)]
    BadChallenge(#[from] crate::protocol::ChallengeError),
    /// The companion's `redirect_uri` does not fit the provider's rule.
    #[error(transparent)]
    Redirect(#[from] RedirectMismatch),
    /// The daemon is shutting down.
    #[error("the daemon is shutting down; retry in a moment")]
    ShuttingDown,
}

/// A `redirect_uri` that does not fit the provider's redirect rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redirect_uri {uri:?} does not fit the provider's rule ({rule}): {why}")]
pub struct RedirectMismatch {
    /// The redirect URI the companion sent.
    pub uri: String,
    /// The rule, as `http://host:port/path`.
    pub rule: String,
    /// What does not fit.
    pub why: &'static str,
}

/// A vault read or write that failed: what was being done, and why. The vault's own error
/// (which names the location and how to fix it) is kept whole as the source, so health
/// and the API print the reason and the fix with it (`report::chain`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}")]
pub struct VaultFailure {
    /// What was being done, or what is wrong when the vault itself is fine.
    pub what: String,
    /// The vault's error, when there is one.
    #[source]
    pub source: Option<std::sync::Arc<crate::vault::VaultError>>,
}

impl VaultFailure {
    /// A failure with no vault error behind it (a follower with no fresh token, a state
    /// directory that cannot be written).
    pub fn plain(what: impl Into<String>) -> VaultFailure {
        VaultFailure {
            what: what.into(),
            source: None,
        }
    }

    /// True when a daemon sharing the vault committed a newer generation (HA).
    pub fn is_stale(&self) -> bool {
        matches!(
            self.source.as_deref(),
            Some(crate::vault::VaultError::Stale { .. })
        )
    }
}

/// Why a check or refresh failed, in a form that can be shared by every caller that
/// waited on the same single-flight refresh.
#[derive(Debug, Clone)]
pub enum CheckError {
    /// The provider answered (or could not be reached): classified.
    Provider(crate::oauth::OAuthError),
    /// The vault holds no token for this credential yet.
    NoToken,
    /// The vault could not be read, or the new generation could not be stored anywhere.
    Vault(VaultFailure),
    /// Not committed: a daemon sharing the vault committed a newer generation since this
    /// one read the record it refreshed (HA, a lost lease).
    Superseded(String),
    /// The daemon is shutting down.
    ShuttingDown,
}

impl CheckError {
    /// The error as shown in health (code and description, never a secret).
    pub fn info(&self) -> ErrorInfo {
        match self {
            CheckError::Provider(e) => e.info.clone(),
            CheckError::NoToken => ErrorInfo {
                code: "no_token".into(),
                description: "no token is stored for this credential yet; re-authorize it".into(),
            },
            CheckError::Vault(f) => ErrorInfo {
                code: "vault_write_failed".into(),
                description: crate::report::chain(f),
            },
            CheckError::Superseded(m) => ErrorInfo {
                code: "superseded".into(),
                description: m.clone(),
            },
            CheckError::ShuttingDown => ErrorInfo {
                code: "shutting_down".into(),
                description: "the daemon is shutting down".into(),
            },
        }
    }

    /// True when the grant is gone.
    pub fn is_dead(&self) -> bool {
        matches!(self, CheckError::Provider(e) if e.is_dead())
    }
}

impl CheckError {
    /// The API error for this failure of credential `name` on agent `agent`: the one
    /// conversion every operation uses (the broker, re-authorization, paste).
    pub fn into_op(self, agent: &str, name: &str) -> OpError {
        match self {
            CheckError::Provider(source) => OpError::Provider {
                name: name.to_string(),
                source,
            },
            CheckError::NoToken => OpError::NoToken {
                agent: agent.to_string(),
                name: name.to_string(),
            },
            CheckError::Vault(f) => OpError::Vault {
                name: name.to_string(),
                message: crate::report::chain(&f),
            },
            CheckError::Superseded(message) => OpError::Vault {
                name: name.to_string(),
                message,
            },
            CheckError::ShuttingDown => OpError::ShuttingDown,
        }
    }
}

/// How the owner gets past a wrong-account refusal: the right account, or on purpose.
fn account_fix(pasted: bool, agent: &str, name: &str) -> String {
    if pasted {
        format!("paste a token of that account, or run `tether paste {agent}/{name} --new-account` to replace it")
    } else {
        format!("sign in with that account, or run `tether reauth {agent}/{name} --new-account` to replace it")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_vault_failure_keeps_the_vault_errors_reason_and_fix() {
        let vault = crate::vault::VaultError::NoUsableLocation {
            details: vec!["/srv/vault: disk full".into()],
        };
        let fix = vault.to_string();
        let e = CheckError::Vault(VaultFailure {
            what: "cannot store credential youtube's new token in the vault".into(),
            source: Some(Arc::new(vault)),
        });
        let shown = e.info().description;
        assert!(
            shown.starts_with("cannot store credential youtube's new token in the vault: "),
            "{shown}"
        );
        assert!(
            shown.contains(&fix),
            "health keeps the cause and its fix: {shown}"
        );
        let OpError::Vault { message, .. } = e.into_op("studio", "youtube") else {
            panic!("a vault failure is a vault error for the API");
        };
        assert!(
            message.contains("disk full") && message.contains("fix at least one"),
            "{message}"
        );
    }
}
