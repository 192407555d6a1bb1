//! A re-authorization's progress as the tray window shows it: the step, the words, and
//! where the browser was sent. Made from the core's [`ReauthProgress`] reports, kept in
//! the [`super::snapshot::Snapshot`] so a window opened mid-flow shows the running step.

use super::consent::ConsentTarget;
use super::reauth::ReauthProgress;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A step of a running re-authorization, as the window shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Asking the agent for an authorization URL.
    Starting,
    /// The URL passed the checks; the browser opens the provider shown in `target`.
    Opening,
    /// The browser is open at the provider's consent page.
    Browser,
    /// The code came back; the agent exchanges and verifies it.
    Verifying,
    /// The credential works again.
    Done,
    /// It did not work (the message says why).
    Failed,
}

impl Step {
    /// True while the run goes on (the window offers "Cancel").
    pub fn running(self) -> bool {
        !matches!(self, Step::Done | Step::Failed)
    }
}

/// Progress of one re-authorization of `agent`/`credential`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Agent name.
    pub agent: String,
    /// Credential name.
    pub credential: String,
    /// Where it is.
    pub step: Step,
    /// The same in words.
    pub message: String,
    /// The consent URL, when the browser could not be opened (the owner opens it by hand).
    pub url: Option<String>,
    /// Where the browser is sent and what is asked for (from the `opening` step on).
    pub target: Option<ConsentTarget>,
    /// When this step was reached.
    pub at: DateTime<Utc>,
}

impl Progress {
    /// The window's view of the core's progress report, reached at `at`.
    pub fn of(agent: &str, credential: &str, p: &ReauthProgress, at: DateTime<Utc>) -> Progress {
        let target = match p {
            ReauthProgress::Opening { target } => Some(target.clone()),
            _ => None,
        };
        let (step, message, url) = match p {
            ReauthProgress::Starting => (
                Step::Starting,
                "Asking the agent for a sign-in link…".to_string(),
                None,
            ),
            ReauthProgress::Opening { target } => (
                Step::Opening,
                format!(
                    "Opening {}{} (client {}); it asks for {}.",
                    target.server.host,
                    target.server.path,
                    target.server.client_id,
                    scope_words(&target.scopes)
                ),
                None,
            ),
            ReauthProgress::WaitingForBrowser {
                open_error: None, ..
            } => (
                Step::Browser,
                "Waiting for you in the browser…".to_string(),
                None,
            ),
            ReauthProgress::WaitingForBrowser {
                url,
                open_error: Some(e),
            } => (
                Step::Browser,
                format!("The browser did not open ({e}); open the sign-in link by hand. Waiting…"),
                Some(url.clone()),
            ),
            ReauthProgress::Verifying => {
                (Step::Verifying, "The agent is verifying…".to_string(), None)
            }
            ReauthProgress::Done { .. } => (Step::Done, "Done: it works again.".to_string(), None),
            ReauthProgress::Failed { message } => (Step::Failed, message.clone(), None),
        };
        Progress {
            agent: agent.into(),
            credential: credential.into(),
            step,
            message,
            url,
            target,
            at,
        }
    }

    /// A finished run with words of its own (a pasted token that works).
    pub fn done(agent: &str, credential: &str, message: &str, at: DateTime<Utc>) -> Progress {
        Progress {
            agent: agent.into(),
            credential: credential.into(),
            step: Step::Done,
            message: message.into(),
            url: None,
            target: None,
            at,
        }
    }

    /// The line the window shows under the button: the words, the link to open by hand,
    /// and, while the owner is in the browser, where they were sent and what for.
    pub fn line(&self) -> String {
        let mut text = match &self.url {
            Some(url) => format!("{} {url}", self.message),
            None => self.message.clone(),
        };
        if let (Step::Browser, Some(t)) = (self.step, &self.target) {
            text.push_str(&format!(
                " (at {}, client {}, asking for {})",
                t.server.host,
                t.server.client_id,
                scope_words(&t.scopes)
            ));
        }
        text
    }
}

fn scope_words(scopes: &[String]) -> String {
    if scopes.is_empty() {
        "the provider's default access".to_string()
    } else {
        scopes.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::companion::consent::AuthorizationPin;

    #[test]
    fn progress_words_match_the_issue() {
        let now = Utc::now();
        let p = Progress::of(
            "studio",
            "youtube",
            &ReauthProgress::WaitingForBrowser {
                url: "u".into(),
                open_error: None,
            },
            now,
        );
        assert_eq!(p.message, "Waiting for you in the browser…");
        assert_eq!(p.url, None);
        assert!(p.step.running());
        let p = Progress::of("studio", "youtube", &ReauthProgress::Verifying, now);
        assert_eq!(p.message, "The agent is verifying…");
        let p = Progress::of(
            "studio",
            "youtube",
            &ReauthProgress::WaitingForBrowser {
                url: "https://idp/auth".into(),
                open_error: Some("no browser".into()),
            },
            now,
        );
        assert_eq!(p.url.as_deref(), Some("https://idp/auth"));
        assert_eq!(
            p.line(),
            "The browser did not open (no browser); open the sign-in link by hand. Waiting… https://idp/auth"
        );
        let failed = ReauthProgress::Failed {
            message: "x".into(),
        };
        assert!(!Progress::of("a", "b", &failed, now).step.running());
    }

    #[test]
    fn the_browser_line_names_the_provider_and_scopes() {
        let mut p = Progress::of(
            "studio",
            "youtube",
            &ReauthProgress::WaitingForBrowser {
                url: "u".into(),
                open_error: None,
            },
            Utc::now(),
        );
        p.target = Some(ConsentTarget {
            server: AuthorizationPin {
                host: "accounts.google.com".into(),
                path: "/o/oauth2/v2/auth".into(),
                client_id: "123.apps".into(),
            },
            scopes: vec![],
        });
        assert_eq!(
            p.line(),
            "Waiting for you in the browser… (at accounts.google.com, client 123.apps, asking for the provider's default access)"
        );
    }
}
