//! Fallback alert channels (webhook, ntfy, Telegram, e-mail) that need none of the agent's
//! OAuth credentials, with retries and per-channel health.
//!
//! The daemon builds one [`Alerter`] from the `[alerts]` section of agent.toml and an HTTP
//! client, and calls [`Alerter::send`] when a credential dies, is about to expire, recovers,
//! or stays dead for another [`Alerter::reminder_interval`]. Every channel gets the alert at
//! the same time; each is retried with exponential backoff on its own, so a dead channel
//! never holds up the others. [`Alerter::health`] feeds the `alerts` list of the health report.
//!
//! - [`alerter`]: the [`Alerter`] and its [`RetryPolicy`]: every channel at once, each
//!   retried on its own, with health.
//! - [`config`]: the `[alerts]` section.
//! - [`text`]: the [`Alert`] event and its rendering.
//! - `webhook`, `ntfy`, `telegram`, `email`: one file per channel.
//! - `secret`, `http`, `error`: channel secrets, the shared HTTP send, the error types.
//! - [`test_send`]: `tether agent alerts test`, a labelled test alert through each channel.
//! - [`damper`]: flap damping, so a credential that keeps dying and recovering sends one
//!   "flapping" alert, not two per loop.

pub mod alerter;
pub mod config;
pub mod damper;
mod email;
mod error;
mod http;
mod ntfy;
mod secret;
mod telegram;
pub mod test_send;
pub mod text;
mod webhook;

pub use alerter::{Alerter, ChannelOutcome, RetryPolicy, SendReport};
pub use config::{
    AlertsConfig, ChannelConfig, EmailConfig, NtfyConfig, TelegramConfig, TlsMode, WebhookConfig,
};
pub use error::{AlertsConfigError, ChannelError};
pub use secret::ChannelSecret;
pub use text::{Alert, AlertKind, AlertText};
