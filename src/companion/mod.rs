//! The owner's side: config, keyring secrets, agent client, watcher, notifier, re-auth.
//!
//! [`Companion`] is the handle the CLI and the tray app use; every decision lives here so
//! the tray stays a thin layer:
//!
//! ```no_run
//! # async fn demo() -> Result<(), tether::companion::CompanionError> {
//! use std::sync::Arc;
//! use tether::companion::{Companion, notifier::DesktopNotifier, reauth::SystemBrowser};
//! let companion = Companion::from_env()?;               // TETHER_CONFIG_DIR / TETHER_SECRETS
//! let report = companion.status().await?;               // every agent and credential
//! let notifier = Arc::new(DesktopNotifier::new().expect("a notification server"));
//! let mut watcher = companion.watch(notifier, Some(Arc::new(SystemBrowser)))?;
//! while let Some(event) = watcher.next_event().await { /* update the tray */ }
//! # Ok(()) }
//! ```
//!
//! Modules: [`handle`] ([`Companion`] itself), [`challenge`] (an agent's challenge shown to
//! the owner: QR matrix and terminal text, countdown, notification texts), [`config`]
//! (companion.toml), [`secrets`] (device tokens in the keyring, announced
//! file fallback), [`policy`] (pure notification state machine), [`notice`]
//! (notification texts), [`local_time`] (a moment in the owner's words, for notices, status
//! and challenges), [`notifier`] (desktop and terminal), [`watcher`] (per-agent tasks),
//! [`reauth`] (one-click re-authorization and paste), [`consent`] (the checks an
//! authorization URL passes before the browser opens it), [`pair`], [`pair_link`] (a
//! `tether://pair` link another program opened, in words, for the pair dialog), [`status`],
//! [`terminal`] (daemon text made safe to print), [`tray`] (the pure tray model: worst
//! state, words, menu), [`snapshot`] (what the tray shows, updated by pure rules from
//! watch events, checks and re-auth progress), [`progress`] (a re-authorization's step in
//! words), [`dashboard`] (the window's rows: every word and time it shows), [`settings`]
//! (what the window's settings dialog edits, and its bounds), and [`error`]; the config's
//! durable writes are [`crate::files`]'s. [`client`]
//! and [`sse`] are re-exports of [`crate::client`], where the daemon client lives.

pub mod challenge;
pub mod config;
pub mod consent;
pub mod dashboard;
pub mod error;
pub mod handle;
pub mod local_time;
pub mod notice;
pub mod notifier;
pub mod pair;
pub mod pair_link;
pub mod policy;
pub mod progress;
pub mod reauth;
pub mod secrets;
pub mod settings;
pub mod snapshot;
pub mod status;
pub mod terminal;
pub mod tray;
pub mod watcher;

// The daemon's client lives in the crate root (the agent side uses it too); these keep
// the companion's paths.
pub use crate::client;
pub use crate::client::sse;

pub use error::CompanionError;
pub use handle::{parse_target, AgentCheck, Companion};
