//! The error of every token-endpoint call: its class (dead / transient / misconfigured) and
//! the provider's code and description, never a secret.

use crate::protocol::ErrorInfo;
use crate::provider::ErrorClass;
use std::fmt;

/// A failed exchange, refresh or paste verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The provider preset name, for messages.
    pub provider: String,
    /// What the failure means.
    pub class: ErrorClass,
    /// The provider's error code and description (or Tether's, for transport failures).
    pub info: ErrorInfo,
}

impl OAuthError {
    pub(crate) fn new(provider: &str, class: ErrorClass, code: &str, description: &str) -> Self {
        OAuthError {
            provider: provider.to_owned(),
            class,
            info: ErrorInfo {
                code: code.to_owned(),
                description: description.to_owned(),
            },
        }
    }

    /// True when the grant is gone and a human must re-authorize.
    pub fn is_dead(&self) -> bool {
        self.class == ErrorClass::Dead
    }

    /// True for network trouble, 5xx, rate limits and malformed answers.
    pub fn is_transient(&self) -> bool {
        matches!(self.class, ErrorClass::Transient { .. })
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.info.description.is_empty() {
            self.info.code.clone()
        } else {
            format!("{} ({})", self.info.description, self.info.code)
        };
        match self.class {
            ErrorClass::Dead => write!(
                f,
                "{}: the grant is gone: {what}; re-authorize to get a new one",
                self.provider
            ),
            ErrorClass::Transient { retry_after } => {
                write!(f, "{}: temporary failure: {what}", self.provider)?;
                match retry_after {
                    Some(d) => write!(f, "; retry after {} s", d.as_secs()),
                    None => f.write_str("; it will be retried"),
                }
            }
            ErrorClass::Misconfigured => write!(
                f,
                "{}: the provider rejected the client configuration: {what}; check the client id, client secret, redirect URI and scopes",
                self.provider
            ),
        }
    }
}

impl std::error::Error for OAuthError {}
