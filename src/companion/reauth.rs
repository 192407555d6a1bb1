//! One-click re-authorization: ask the daemon for a session, listen on loopback, open the
//! browser, relay the code to the daemon, and show the daemon's real answer in the tab.
//!
//! The daemon made the `state` and holds the PKCE verifier and client secret; this side
//! only carries `{code, state, redirect_uri}`, so the refresh token never crosses the
//! network. The browser tab is answered only after the daemon has answered, so "Done"
//! means the new tokens are stored. Paste-kind credentials use [`paste`].
//!
//! Before the browser opens, the daemon's URL passes [`super::consent::inspect`] and its
//! authorization server is compared with the one remembered for the credential.

use super::consent::{self, AuthorizationPin, ConsentTarget};
use crate::client::{AgentClient, ClientError};
use crate::oauth::{CallbackOutcome, ListenerError, LoopbackListener};
use crate::protocol::{CredentialHealth, ErrorCode, ReauthComplete, SecretPut};
use crate::secret::AccessToken;
use serde::Serialize;
use std::future::Future;
use std::time::Duration;

/// Default time to wait for the owner to finish in the browser: the listener's own.
pub use crate::oauth::DEFAULT_TIMEOUT;
/// Prefix of the line that carries the URL when no browser is opened (tests read it).
pub const OPEN_URL_PREFIX: &str = "open this URL: ";

/// The browser could not be opened (the URL is still shown, to open by hand).
#[derive(Debug, thiserror::Error)]
#[error("cannot open the browser")]
pub struct OpenError {
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl OpenError {
    /// An open that failed because of `source`.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> OpenError {
        OpenError {
            source: source.into(),
        }
    }
}

/// Opens the authorization URL for the owner.
pub trait Opener: Send + Sync {
    /// Opens `url`; an error is reported, and the URL is still shown so the owner can
    /// open it by hand.
    fn open(&self, url: &str) -> Result<(), OpenError>;
}

/// The system browser (`webbrowser` crate; honours `$BROWSER`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemBrowser;

impl Opener for SystemBrowser {
    fn open(&self, url: &str) -> Result<(), OpenError> {
        webbrowser::open(url).map_err(OpenError::new)
    }
}

/// Prints `open this URL: <url>` on its own line on stdout instead of opening a browser.
#[derive(Debug, Default, Clone, Copy)]
pub struct PrintUrl;

impl Opener for PrintUrl {
    fn open(&self, url: &str) -> Result<(), OpenError> {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{OPEN_URL_PREFIX}{url}")
            .and_then(|()| out.flush())
            .map_err(OpenError::new)
    }
}

/// Where a re-authorization is; for the tray's progress display.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum ReauthProgress {
    /// Asking the daemon for a session.
    Starting,
    /// The authorization URL passed the checks; the browser opens it next. Show the owner
    /// where they are sent and what is asked for.
    Opening {
        /// Authorization server, client and scopes.
        target: ConsentTarget,
    },
    /// The browser was opened (or the URL printed); waiting for the owner.
    WaitingForBrowser {
        /// The full authorization URL.
        url: String,
        /// Set when the browser could not be opened: open `url` by hand.
        open_error: Option<String>,
    },
    /// The owner came back; the daemon is exchanging and verifying the code.
    Verifying,
    /// The credential works again.
    Done {
        /// Its new health.
        credential: Box<CredentialHealth>,
    },
    /// It did not work.
    Failed {
        /// What failed and how to fix it.
        message: String,
    },
}

/// Options of one re-authorization.
#[derive(Debug, Clone, Copy)]
pub struct ReauthOptions {
    /// How long to wait for the browser callback.
    pub timeout: Duration,
    /// Accept an authorization server (host, path, client id) other than the one
    /// remembered for the credential; the owner said yes after seeing old and new.
    pub accept_new_server: bool,
    /// Let a sign-in as another account replace the credential's (`--new-account`).
    pub new_account: bool,
}

impl Default for ReauthOptions {
    fn default() -> Self {
        ReauthOptions {
            timeout: DEFAULT_TIMEOUT,
            accept_new_server: false,
            new_account: false,
        }
    }
}

/// A finished re-authorization.
#[derive(Debug, Clone)]
pub struct Reauthorized {
    /// The credential's new health.
    pub health: CredentialHealth,
    /// The authorization server it was granted by (to remember).
    pub server: AuthorizationPin,
}

/// Why a re-authorization did not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReauthError {
    /// Another re-authorization of the same credential is running.
    #[error(
        "a re-authorization of {agent}/{credential} is already running; finish or cancel it first"
    )]
    AlreadyRunning {
        /// The agent.
        agent: String,
        /// The credential.
        credential: String,
    },
    /// No re-authorization of that credential is running (nothing to cancel).
    #[error("no re-authorization of {agent} · {credential} is running")]
    NotRunning {
        /// The agent.
        agent: String,
        /// The credential.
        credential: String,
    },
    /// The credential is re-armed by pasting a token.
    #[error("{agent}/{credential} is not an oauth credential; paste a new token with `tether paste {agent}/{credential}`")]
    PasteKind {
        /// The agent.
        agent: String,
        /// The credential.
        credential: String,
    },
    /// The daemon sent an authorization URL we will not open.
    #[error("agent {agent} sent a sign-in url for {credential} that tether will not open: {reason}; nothing was opened. Check the credential's provider config on the agent's server, and the server itself")]
    BadAuthorizeUrl {
        /// The agent.
        agent: String,
        /// The credential.
        credential: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL names another authorization server or client than the credential's first
    /// authorization did.
    #[error("agent {agent} now sends the sign-in for {credential} to {new}, but its first authorization was at {old}; nothing was opened. If you changed the provider on the agent, accept the new one with `tether reauth {agent}/{credential} --accept-new-server` (or in the tray); otherwise the agent may be compromised: check its server")]
    ServerChanged {
        /// The agent.
        agent: String,
        /// The credential.
        credential: String,
        /// Remembered from the first authorization.
        old: Box<AuthorizationPin>,
        /// What the daemon sent now.
        new: Box<AuthorizationPin>,
    },
    /// The loopback listener failed, timed out or was cancelled, or the owner declined.
    #[error("re-authorization of {agent}/{credential}")]
    Listener {
        /// The agent.
        agent: String,
        /// The credential.
        credential: String,
        /// What happened.
        source: ListenerError,
    },
    /// Talking to the daemon failed, or it refused the code.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A worker thread died.
    #[error("re-authorization of {agent}/{credential} failed internally: {reason}")]
    Internal {
        /// The agent.
        agent: String,
        /// The credential.
        credential: String,
        /// What broke.
        reason: String,
    },
}

impl ReauthError {
    /// True when the owner (or the caller) cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(
            self,
            ReauthError::Listener {
                source: ListenerError::Cancelled,
                ..
            }
        )
    }
}

/// One browser re-authorization to run: `credential` on the agent behind `client`.
///
/// `pinned` is the authorization server remembered for the credential (none before its
/// first authorization): a URL naming another one is refused unless
/// `opts.accept_new_server`. Progress goes to `progress`.
pub struct ReauthRun<'a> {
    /// The agent.
    pub client: &'a AgentClient,
    /// The credential's name on the agent.
    pub credential: &'a str,
    /// The authorization server of the credential's first authorization.
    pub pinned: Option<&'a AuthorizationPin>,
    /// Opens the consent page.
    pub opener: &'a dyn Opener,
    /// Timeout, listener and acceptance choices.
    pub opts: ReauthOptions,
    /// Told each step.
    pub progress: &'a (dyn Fn(ReauthProgress) + Send + Sync),
}

/// Runs one browser re-authorization (see [`ReauthRun`]). `cancel` resolving cancels the
/// wait for the browser (the tab then gets an error page if it arrives later). Callers
/// keep one run per credential (the [`super::Companion`] handle does) and remember the
/// returned server.
pub async fn run(
    run: ReauthRun<'_>,
    cancel: impl Future<Output = ()>,
) -> Result<Reauthorized, ReauthError> {
    let progress = run.progress;
    let result = run_inner(run, cancel).await;
    match &result {
        Ok(r) => progress(ReauthProgress::Done {
            credential: Box::new(r.health.clone()),
        }),
        Err(e) => progress(ReauthProgress::Failed {
            message: crate::report::chain(e),
        }),
    }
    result
}

async fn run_inner(
    run: ReauthRun<'_>,
    cancel: impl Future<Output = ()>,
) -> Result<Reauthorized, ReauthError> {
    let ReauthRun {
        client,
        credential,
        pinned,
        opener,
        opts,
        progress,
    } = run;
    let agent = client.name().to_string();
    let internal = |reason: String| ReauthError::Internal {
        agent: agent.clone(),
        credential: credential.to_string(),
        reason,
    };
    let listener_err = |source: ListenerError| ReauthError::Listener {
        agent: agent.clone(),
        credential: credential.to_string(),
        source,
    };
    progress(ReauthProgress::Starting);
    let start = match client.start_reauth(credential).await {
        Err(e) if e.api_code() == Some(ErrorCode::WrongKind) => {
            return Err(ReauthError::PasteKind {
                agent,
                credential: credential.into(),
            })
        }
        r => r?,
    };
    // The URL goes to a browser: checked before anything is bound or opened.
    let (authorize, target) =
        consent::inspect(&start.authorize_url, &start.state).map_err(|unsafe_url| {
            ReauthError::BadAuthorizeUrl {
                agent: agent.clone(),
                credential: credential.to_string(),
                reason: unsafe_url.0,
            }
        })?;
    if let Some(old) = pinned {
        if *old != target.server && !opts.accept_new_server {
            return Err(ReauthError::ServerChanged {
                agent,
                credential: credential.into(),
                old: Box::new(old.clone()),
                new: Box::new(target.server),
            });
        }
    }
    let listener =
        LoopbackListener::bind(&start.redirect, start.state.clone()).map_err(listener_err)?;
    let redirect_uri = listener.redirect_uri();
    let url = authorize.with_redirect_uri(&redirect_uri).to_string();
    let server = target.server.clone();
    progress(ReauthProgress::Opening { target });

    // Never wait past the daemon's session end: a late code would be refused anyway.
    let session_left = (start.expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    let timeout = opts.timeout.min(session_left).max(Duration::from_secs(1));
    let canceller = listener.canceller();
    let mut wait = tokio::task::spawn_blocking(move || listener.wait(timeout));

    let open_error = opener.open(&url).err().map(|e| crate::report::chain(&e));
    progress(ReauthProgress::WaitingForBrowser {
        url: url.clone(),
        open_error,
    });

    tokio::pin!(cancel);
    let pending = tokio::select! {
        joined = &mut wait => joined.map_err(|e| internal(e.to_string()))?.map_err(listener_err)?,
        () = &mut cancel => {
            canceller.cancel();
            // The listener returns promptly once cancelled; its result no longer matters
            // unless a callback won the race.
            match wait.await {
                Ok(Ok(pending)) => pending,
                _ => return Err(listener_err(ListenerError::Cancelled)),
            }
        }
    };
    progress(ReauthProgress::Verifying);
    let (callback, responder) = pending.into_parts();
    let body = ReauthComplete {
        code: callback.code,
        state: callback.state,
        redirect_uri: callback.redirect_uri,
        new_account: opts.new_account,
    };
    let result = client.complete_reauth(&start.session, &body).await;
    let outcome = match &result {
        Ok(_) => CallbackOutcome::Success {
            title: format!("Done: {agent} · {credential} is working again"),
            detail: "The new authorization is stored on the agent.".into(),
        },
        Err(e) => CallbackOutcome::Failure {
            title: format!("{agent} · {credential} was not re-authorized"),
            detail: format!("{e}. {}", tab_advice(e.api_code(), &agent, credential)),
        },
    };
    // Answering writes to the browser's socket: keep it off the async threads.
    tokio::task::spawn_blocking(move || responder.respond(outcome))
        .await
        .map_err(|e| internal(e.to_string()))?;
    Ok(Reauthorized {
        health: result?,
        server,
    })
}

/// What the failure tab tells the owner to do next, after the daemon's message. A
/// wrong-account refusal already names the account to sign in with and the
/// `--new-account` way out, so "try again" would only send them back to the same account.
fn tab_advice(code: Option<ErrorCode>, agent: &str, credential: &str) -> String {
    match code {
        Some(ErrorCode::WrongAccount) => {
            "Nothing stored changed; close this tab and sign in with the account the credential belongs to.".into()
        }
        Some(ErrorCode::SessionExpired | ErrorCode::StateMismatch) => format!(
            "This sign-in session is over; close this tab and start again with `tether reauth {agent}/{credential}`."
        ),
        Some(ErrorCode::ProviderUnavailable) | None => {
            "Close this tab and try again in a moment.".into()
        }
        _ => format!("Close this tab and try again with `tether reauth {agent}/{credential}`."),
    }
}

/// Pushes a new token for a paste-kind credential; the daemon verifies it before storing.
/// A token of another account than the credential's is refused unless `new_account`.
pub async fn paste(
    client: &AgentClient,
    credential: &str,
    secret: AccessToken,
    new_account: bool,
) -> Result<CredentialHealth, ClientError> {
    client
        .put_secret(
            credential,
            &SecretPut {
                secret,
                new_account,
            },
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_account_tab_does_not_say_try_again() {
        let advice = tab_advice(Some(ErrorCode::WrongAccount), "studio", "youtube");
        assert!(!advice.contains("try again"), "{advice}");
        assert!(advice.contains("Nothing stored changed"), "{advice}");
    }

    #[test]
    fn an_expired_session_tab_says_how_to_start_again() {
        let advice = tab_advice(Some(ErrorCode::SessionExpired), "studio", "youtube");
        assert!(advice.contains("tether reauth studio/youtube"), "{advice}");
    }

    #[test]
    fn an_unreachable_provider_tab_says_try_again() {
        let advice = tab_advice(Some(ErrorCode::ProviderUnavailable), "studio", "youtube");
        assert!(advice.contains("try again"), "{advice}");
    }
}
