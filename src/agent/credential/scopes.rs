//! The scope check after every exchange and refresh: the scopes the provider says it
//! granted (`scope` in the token answer) against the configured ones. A grant that lacks
//! one (Google's granular consent lets the owner untick `youtube.upload`) is alive and
//! useless: the credential is `degraded` with "missing scope youtube.upload: re-authorize
//! and leave every box ticked" until a grant covers them all.

use crate::agent::credential::runtime::Credential;
use crate::protocol::ErrorInfo;

/// Error code of a grant without every configured scope.
pub const MISSING_SCOPE: &str = "missing_scope";

/// Configured scopes the grant lacks. An empty `granted` says nothing (the provider did
/// not list them); `offline_access` asks for a refresh token rather than naming an API,
/// and providers leave it out of the answer.
pub fn missing(configured: &[String], granted: &[String]) -> Vec<String> {
    if granted.is_empty() {
        return Vec::new();
    }
    configured
        .iter()
        .filter(|s| s.as_str() != "offline_access" && !granted.iter().any(|g| g == *s))
        .cloned()
        .collect()
}

/// `youtube.upload` for `https://www.googleapis.com/auth/youtube.upload`: what a consent
/// screen's checkbox says.
fn short(scope: &str) -> &str {
    scope.rsplit('/').next().unwrap_or(scope)
}

/// The error a credential shows while its grant lacks `missing`.
pub fn missing_error(missing: &[String]) -> ErrorInfo {
    let names: Vec<&str> = missing.iter().map(|s| short(s)).collect();
    let noun = if names.len() == 1 { "scope" } else { "scopes" };
    ErrorInfo {
        code: MISSING_SCOPE.into(),
        description: format!(
            "missing {noun} {}: re-authorize and leave every box ticked",
            names.join(", ")
        ),
    }
}

impl Credential {
    /// The scope error while the newest grant lacks a configured scope.
    pub(crate) fn scope_error(&self) -> Option<ErrorInfo> {
        let gap = self.scope_gap.lock();
        (!gap.is_empty()).then(|| missing_error(&gap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn names_what_is_missing_and_ignores_offline_access() {
        let up = "https://www.googleapis.com/auth/youtube.upload";
        let configured = v(&[up, "offline_access", "openid"]);
        assert_eq!(missing(&configured, &v(&["openid"])), v(&[up]));
        assert!(missing(&configured, &v(&[up, "openid"])).is_empty());
        assert!(missing(&configured, &[]).is_empty(), "no list, no verdict");
        assert_eq!(
            missing_error(&v(&[up])).description,
            "missing scope youtube.upload: re-authorize and leave every box ticked"
        );
    }
}
