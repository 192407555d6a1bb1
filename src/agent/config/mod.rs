//! What `agent.toml` says, read, checked and edited. The bottom layer of the agent: it
//! imports nothing else of `agent`.
//!
//! - [`agent`]: the agent-wide settings, parsing and validation ([`AgentConfig`]);
//! - [`defaults`]: the defaults and limits, and how durations read;
//! - [`error`]: why the file could not be used ([`ConfigError`]);
//! - [`credential`]: one `[[credentials]]` entry ([`CredentialConfig`]);
//! - [`resolve`]: the provider an entry describes (preset, overrides, discovery);
//! - [`vault`]: the vault it describes (locations, outputs);
//! - [`on_change`]: what runs after a credential's token or state changed (a program, a
//!   systemd reload, a signal);
//! - [`example`]: the commented example `tether agent init` writes;
//! - [`edit`]: `tether agent add`/`remove`, editing the file in place with its comments;
//! - [`lint`]: `tether agent check`, the config and the machine, each problem with its fix.

pub mod agent;
pub mod credential;
pub mod defaults;
pub mod edit;
pub mod error;
pub mod example;
pub mod lint;
pub mod on_change;
pub mod resolve;
pub mod vault;

pub use agent::{parse, parse_str, AgentConfig, AgentVaultConfig, TlsConfig};
pub use credential::{
    CredentialConfig, CredentialConfigKind, OutputConfig, OutputKind, ReauthMode,
};
pub use defaults::{
    DEFAULT_HEARTBEAT, DEFAULT_PROBE_INTERVAL, DEFAULT_REFRESH_AHEAD, DEFAULT_REFRESH_INTERVAL,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_SESSION_TTL, DEFAULT_SHUTDOWN_GRACE, DEFAULT_VAULT_CHECK,
    DEFAULT_WARNING_WINDOW, MIN_PROBE_INTERVAL,
};
pub use error::ConfigError;
pub use example::EXAMPLE;
