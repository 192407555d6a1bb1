//! The [`Alerter`]: every configured channel, sent to at once, each retried on its own
//! ([`RetryPolicy`]), with per-channel health for the health report.

use super::config::{AlertsConfig, ChannelConfig};
use super::error::{AlertsConfigError, ChannelError};
use super::text::{Alert, AlertText};
use crate::protocol::ChannelHealth;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::time::Duration;

/// How often and how patiently each channel is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, at least 1.
    pub attempts: u32,
    /// Wait before the second attempt; each later wait doubles (1 s, 2 s, 4 s by default).
    pub base_delay: Duration,
    /// Longest one attempt may take.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `n` (1-based).
    fn delay_after(&self, n: u32) -> Duration {
        // Capped shift: the policy never has more than a handful of attempts, but a config
        // with 40 must not overflow.
        self.base_delay.saturating_mul(1u32 << (n - 1).min(16))
    }
}

/// One channel, ready to send.
#[derive(Debug)]
enum Sender {
    Webhook(super::webhook::WebhookChannel),
    Ntfy(super::ntfy::NtfyChannel),
    Telegram(super::telegram::TelegramChannel),
    Email(super::email::EmailChannel),
}

#[derive(Debug)]
struct Channel {
    name: String,
    kind: &'static str,
    sender: Sender,
}

impl Channel {
    fn host(&self) -> &str {
        match &self.sender {
            Sender::Webhook(c) => c.host(),
            Sender::Ntfy(c) => c.host(),
            Sender::Telegram(c) => c.host(),
            Sender::Email(c) => c.host(),
        }
    }

    async fn attempt(
        &self,
        http: &reqwest::Client,
        alert: &Alert,
        text: &AlertText,
        timeout: Duration,
    ) -> Result<(), ChannelError> {
        let send = async {
            match &self.sender {
                Sender::Webhook(c) => c.send(http, alert, text, timeout).await,
                Sender::Ntfy(c) => c.send(http, alert, text, timeout).await,
                Sender::Telegram(c) => c.send(http, text, timeout).await,
                Sender::Email(c) => c.send(text).await,
            }
        };
        // The HTTP channels carry their own timeout; this one also bounds SMTP dialogues.
        match tokio::time::timeout(timeout, send).await {
            Ok(result) => result,
            Err(_) => Err(ChannelError::TimedOut {
                host: self.host().to_string(),
                secs: timeout.as_secs(),
            }),
        }
    }
}

/// The result of one alert on one channel.
#[derive(Debug)]
pub struct ChannelOutcome {
    /// Channel label.
    pub channel: String,
    /// `webhook`, `ntfy`, `telegram` or `email`.
    pub kind: &'static str,
    /// Attempts made.
    pub attempts: u32,
    /// `Ok` when delivered; otherwise the last attempt's error.
    pub result: Result<(), ChannelError>,
}

/// The result of one alert on every channel, in config order.
#[derive(Debug)]
pub struct SendReport {
    /// One entry per channel.
    pub outcomes: Vec<ChannelOutcome>,
}

impl SendReport {
    /// Channels that delivered.
    pub fn delivered(&self) -> usize {
        self.outcomes.iter().filter(|o| o.result.is_ok()).count()
    }

    /// True when every channel delivered (and vacuously when there are none).
    pub fn all_delivered(&self) -> bool {
        self.outcomes.iter().all(|o| o.result.is_ok())
    }
}

/// Sends alerts to every configured channel and keeps their health.
pub struct Alerter {
    channels: Vec<Channel>,
    http: reqwest::Client,
    retry: RetryPolicy,
    reminder_interval: Duration,
    /// Same order as `channels`. A std mutex: held only to copy or bump a few fields, never
    /// across an await.
    health: Mutex<Vec<ChannelHealth>>,
}

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerter")
            .field("channels", &self.channels)
            .field("retry", &self.retry)
            .field("reminder_interval", &self.reminder_interval)
            .finish_non_exhaustive()
    }
}

impl Alerter {
    /// Checks the config, reads every channel's secret and prepares the channels.
    /// Nothing is sent and no connection is opened.
    pub fn new(config: &AlertsConfig, http: reqwest::Client) -> Result<Alerter, AlertsConfigError> {
        if config.reminder_interval.as_secs() == 0 {
            return Err(AlertsConfigError::ZeroReminderInterval);
        }
        let mut names = HashSet::new();
        let mut channels = Vec::with_capacity(config.channels.len());
        for cfg in &config.channels {
            let name = cfg.name();
            if name.trim().is_empty() {
                return Err(AlertsConfigError::Invalid {
                    channel: name.to_string(),
                    problem: "the name is empty; give the channel a label".into(),
                });
            }
            if !names.insert(name) {
                return Err(AlertsConfigError::DuplicateName(name.to_string()));
            }
            let sender = match cfg {
                ChannelConfig::Webhook(c) => {
                    Sender::Webhook(super::webhook::WebhookChannel::new(c)?)
                }
                ChannelConfig::Ntfy(c) => Sender::Ntfy(super::ntfy::NtfyChannel::new(c)?),
                ChannelConfig::Telegram(c) => {
                    Sender::Telegram(super::telegram::TelegramChannel::new(c)?)
                }
                ChannelConfig::Email(c) => Sender::Email(super::email::EmailChannel::new(c)?),
            };
            channels.push(Channel {
                name: name.to_string(),
                kind: cfg.kind(),
                sender,
            });
        }
        let health = channels
            .iter()
            .map(|c| ChannelHealth {
                name: c.name.clone(),
                kind: c.kind.to_string(),
                ok: true,
                sent: 0,
                failed: 0,
                last_error: None,
            })
            .collect();
        Ok(Alerter {
            channels,
            http,
            retry: RetryPolicy::default(),
            reminder_interval: config.reminder_interval,
            health: Mutex::new(health),
        })
    }

    /// Replaces the retry policy (tests use millisecond delays).
    /// Zero attempts are read as one: an alert is always tried.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Alerter {
        self.retry = RetryPolicy {
            attempts: retry.attempts.max(1),
            ..retry
        };
        self
    }

    /// Time between reminders while a credential stays dead.
    pub fn reminder_interval(&self) -> Duration {
        self.reminder_interval
    }

    /// True when no channel is configured (the daemon may say so at start).
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// Sends `alert` to every channel at once, each with its own retries, and returns
    /// when all are done. Never fails as a whole: see each channel's outcome.
    pub async fn send(&self, alert: &Alert) -> SendReport {
        let text = alert.render();
        let sends = self
            .channels
            .iter()
            .enumerate()
            .map(|(i, ch)| self.send_one(i, ch, alert, &text));
        SendReport {
            outcomes: futures_util::future::join_all(sends).await,
        }
    }

    /// Health of every channel, in config order.
    pub fn health(&self) -> Vec<ChannelHealth> {
        self.health.lock().clone()
    }

    async fn send_one(
        &self,
        index: usize,
        channel: &Channel,
        alert: &Alert,
        text: &AlertText,
    ) -> ChannelOutcome {
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            let result = channel
                .attempt(&self.http, alert, text, self.retry.attempt_timeout)
                .await;
            match result {
                Ok(()) => break Ok(()),
                Err(e) if e.is_permanent() || attempts >= self.retry.attempts => break Err(e),
                Err(e) => {
                    let wait = self.retry.delay_after(attempts);
                    tracing::info!(
                        channel = %channel.name,
                        kind = channel.kind,
                        attempt = attempts,
                        "alert not delivered, retrying in {wait:?}: {}",
                        e.chain()
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        };
        self.record(index, &result);
        match &result {
            Ok(()) => tracing::info!(
                channel = %channel.name,
                kind = channel.kind,
                alert = alert.kind.as_str(),
                credential = %alert.credential,
                "alert delivered"
            ),
            Err(e) => tracing::warn!(
                channel = %channel.name,
                kind = channel.kind,
                alert = alert.kind.as_str(),
                credential = %alert.credential,
                attempts,
                "alert channel {} ({}) failed: {}",
                channel.name,
                channel.kind,
                e.chain()
            ),
        }
        ChannelOutcome {
            channel: channel.name.clone(),
            kind: channel.kind,
            attempts,
            result,
        }
    }

    fn record(&self, index: usize, result: &Result<(), ChannelError>) {
        let mut health = self.health.lock();
        // `health` has one entry per channel, built in `new` from the same list.
        let entry = &mut health[index];
        match result {
            Ok(()) => {
                entry.ok = true;
                entry.sent += 1;
            }
            Err(e) => {
                entry.ok = false;
                entry.failed += 1;
                entry.last_error = Some(e.chain());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::alerts::text::AlertKind;

    #[test]
    fn send_can_run_on_a_spawned_task() {
        // The daemon spawns alert sends; this fails to compile if the future is not Send.
        fn assert_send<T: Send>(_: &T) {}
        let alerter = Alerter::new(&AlertsConfig::default(), reqwest::Client::new())
            .expect("empty config is valid");
        let alert = Alert::vault(
            "studio",
            AlertKind::VaultTrouble,
            "1 of 2 locations holds every credential".into(),
            None,
            chrono::Utc::now(),
        );
        let fut = alerter.send(&alert);
        assert_send(&fut);
        fn assert_sync<T: Send + Sync>() {}
        assert_sync::<Alerter>();
    }

    #[test]
    fn backoff_doubles() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_after(1), Duration::from_secs(1));
        assert_eq!(p.delay_after(2), Duration::from_secs(2));
        assert_eq!(p.delay_after(3), Duration::from_secs(4));
        assert!(p.delay_after(40) >= Duration::from_secs(65_536));
    }

    #[test]
    fn duplicate_names_and_zero_reminder_are_rejected() {
        let cfg: AlertsConfig = toml::from_str(
            "[[channels]]\nname='a'\nkind='webhook'\nurl='https://x.example/'\n\
             [[channels]]\nname='a'\nkind='ntfy'\ntopic='t'\n",
        )
        .expect("valid toml");
        let err = Alerter::new(&cfg, reqwest::Client::new()).unwrap_err();
        assert!(
            matches!(err, AlertsConfigError::DuplicateName(ref n) if n == "a"),
            "{err}"
        );
        let cfg = AlertsConfig {
            reminder_interval: Duration::ZERO,
            channels: vec![],
        };
        assert!(matches!(
            Alerter::new(&cfg, reqwest::Client::new()),
            Err(AlertsConfigError::ZeroReminderInterval)
        ));
    }
}
