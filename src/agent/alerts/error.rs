//! Errors of the alerts module: a bad `[alerts]` config, and one channel's failed send.

use std::path::PathBuf;

/// Why the `[alerts]` section cannot be used. Raised once, when the daemon starts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertsConfigError {
    /// A channel entry is wrong; `problem` says how.
    #[error("alert channel {channel:?} in agent.toml: {problem}")]
    Invalid {
        /// Channel label.
        channel: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// The `[alerts]` table does not parse (a typo in a key, a wrong type).
    #[error("the [alerts] section of agent.toml is not valid; fix it (`tether agent check` names the line)")]
    Parse(#[source] toml::de::Error),
    /// Two channels share a name, so health could not tell them apart.
    #[error("two alert channels in agent.toml are named {0:?}; give each [[alerts.channels]] entry its own name")]
    DuplicateName(String),
    /// The secret file could not be read.
    #[error("alert channel {channel:?}: could not read the {what} from {path}; create the file (mode 0600) or fix the path in agent.toml")]
    SecretFile {
        /// Channel label.
        channel: String,
        /// What the secret is.
        what: &'static str,
        /// The file named in the config.
        path: PathBuf,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// The secret's environment variable is not set (or not UTF-8).
    #[error("alert channel {channel:?}: environment variable {var} holding the {what} is not set; export it for the daemon or use a file instead")]
    SecretEnv {
        /// Channel label.
        channel: String,
        /// What the secret is.
        what: &'static str,
        /// The variable named in the config.
        var: String,
    },
    /// `reminder_interval = 0` would send a reminder in a tight loop.
    #[error("alerts reminder_interval in agent.toml must be at least one second, e.g. \"6h\"")]
    ZeroReminderInterval,
}

/// Why one channel did not deliver one alert (after one attempt).
///
/// No variant holds a URL: Telegram's carries the bot token and webhook URLs are secrets
/// in themselves, so only host names appear.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// No HTTP answer: connection refused, DNS, TLS, timeout.
    #[error("could not reach {host}")]
    Unreachable {
        /// Host (and port) that was tried.
        host: String,
        /// The transport error, with its URL removed.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{host} refused the alert with HTTP {status}: {detail}")]
    Rejected {
        /// Host (and port) that answered.
        host: String,
        /// HTTP status code.
        status: u16,
        /// The start of the answer's body (secrets scrubbed).
        detail: String,
    },
    /// The SMTP server refused or could not be reached.
    #[error("smtp server {host} did not take the e-mail")]
    Smtp {
        /// SMTP host and port.
        host: String,
        /// lettre's error.
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// The e-mail could not be put together.
    #[error("could not build the e-mail")]
    Email(#[source] lettre::error::Error),
    /// The attempt took longer than the retry policy's per-attempt timeout.
    #[error("no answer from {host} within {secs} s")]
    TimedOut {
        /// Host (and port) that was tried.
        host: String,
        /// The timeout.
        secs: u64,
    },
}

impl ChannelError {
    /// True when retrying cannot help (bad token, unknown chat, malformed request):
    /// 4xx answers other than 408 and 429, and permanent SMTP replies (5xx).
    pub fn is_permanent(&self) -> bool {
        match self {
            ChannelError::Rejected { status, .. } => {
                (400..500).contains(status) && *status != 408 && *status != 429
            }
            ChannelError::Smtp { source, .. } => source.is_permanent(),
            ChannelError::Email(_) => true,
            ChannelError::Unreachable { .. } | ChannelError::TimedOut { .. } => false,
        }
    }

    /// The message with every source appended: `could not reach h: error sending request: ...`.
    pub fn chain(&self) -> String {
        crate::report::chain(self)
    }
}
