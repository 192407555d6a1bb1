//! A credential's state as both sides name it, how a dead one is re-armed, a provider's
//! error as the owner sees it, and the rule for credential names.

use serde::{Deserialize, Serialize};

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
    fn state_severity_orders_worst_last() {
        assert!(CredentialState::Dead.severity() > CredentialState::Degraded.severity());
        assert!(CredentialState::Expiring.severity() > CredentialState::Ok.severity());
    }
}
