//! `tether agent alerts test [CHANNEL]`: one clearly labelled test alert through every
//! channel of an agent.toml (or one of them), with each channel's result.
//!
//! It builds the channels exactly as the daemon does (same config section, same secrets),
//! so a channel that delivers here delivers when a credential dies. It runs beside the
//! daemon, not through it: a daemon that cannot start is when this is most needed.

use super::alerter::{Alerter, RetryPolicy, SendReport};
use super::config::AlertsConfig;
use super::error::AlertsConfigError;
use super::text::Alert;
use crate::agent::config::AgentConfig;
use std::time::Duration;

/// Tries per channel: one retry catches a blip; a channel that needs more is worth
/// knowing about.
pub const TEST_RETRY: RetryPolicy = RetryPolicy {
    attempts: 2,
    base_delay: Duration::from_secs(1),
    attempt_timeout: Duration::from_secs(15),
};

/// Why no test alert was sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertsTestError {
    /// The config has no channel.
    #[error("agent {agent} has no alert channels; add an [[alerts.channels]] entry (webhook, ntfy, telegram or email) to the config")]
    NoChannels {
        /// The agent.
        agent: String,
    },
    /// No channel of that name.
    #[error("agent {agent} has no alert channel {channel} (it has: {known})")]
    UnknownChannel {
        /// The agent.
        agent: String,
        /// The name asked for.
        channel: String,
        /// The names it has.
        known: String,
    },
    /// A channel cannot be built (a missing secret file, a bad URL).
    #[error(transparent)]
    Config(#[from] AlertsConfigError),
}

/// Sends a test alert from `cfg`'s agent through `channel` or every channel, each with
/// [`TEST_RETRY`] (or `retry`), and reports each result.
pub async fn send_test(
    cfg: &AgentConfig,
    channel: Option<&str>,
    http: reqwest::Client,
    retry: Option<RetryPolicy>,
) -> Result<SendReport, AlertsTestError> {
    let mut alerts = AlertsConfig::from_table(cfg.alerts.as_ref())?;
    if alerts.channels.is_empty() {
        return Err(AlertsTestError::NoChannels {
            agent: cfg.name.clone(),
        });
    }
    if let Some(name) = channel {
        let known: Vec<String> = alerts
            .channels
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        alerts.channels.retain(|c| c.name() == name);
        if alerts.channels.is_empty() {
            return Err(AlertsTestError::UnknownChannel {
                agent: cfg.name.clone(),
                channel: name.to_string(),
                known: known.join(", "),
            });
        }
    }
    let alerter = Alerter::new(&alerts, http)?.with_retry(retry.unwrap_or(TEST_RETRY));
    Ok(alerter
        .send(&Alert::test(&cfg.name, chrono::Utc::now()))
        .await)
}
