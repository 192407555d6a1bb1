//! Why the listener ended without a usable callback: its own file because both the
//! listener and its sockets fail with it.

use crate::protocol::ErrorInfo;
use std::time::Duration;

/// Why the listener ended without a usable callback.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenerError {
    /// The owner clicked "Cancel" / "Deny" on the consent page.
    #[error("authorization declined in the browser; start again and click Allow to grant access")]
    Declined,
    /// The provider redirected back with an error other than `access_denied`.
    #[error("the provider refused the authorization: {0}")]
    Provider(ErrorInfo),
    /// No valid callback arrived in time.
    #[error("no sign-in callback arrived within {} s; start the authorization again", .0.as_secs())]
    TimedOut(Duration),
    /// [`Canceller::cancel`](super::Canceller::cancel) was called.
    #[error("the authorization was cancelled")]
    Cancelled,
    /// The fixed port the provider requires is taken.
    #[error("port {port} on 127.0.0.1 is in use, and the provider only accepts redirects to that port; close the program using it (`ss -ltnp 'sport = :{port}'` shows it) or register another port with the provider and set redirect_port")]
    PortInUse {
        /// The port.
        port: u16,
    },
    /// The redirect requirement cannot be served from 127.0.0.1.
    #[error("cannot listen for a redirect to host `{0}`: only 127.0.0.1 and localhost are served (loopback only); set redirect_host to 127.0.0.1")]
    UnsupportedHost(String),
    /// The callback path is not a path.
    #[error("redirect path `{0}` must start with `/`")]
    BadPath(String),
    /// Binding or serving failed for another reason.
    #[error("loopback listener on 127.0.0.1:{port} failed")]
    Io {
        /// The port (0 before binding).
        port: u16,
        /// The I/O error.
        source: std::io::Error,
    },
}
