//! OpenBao (or HashiCorp Vault) as a vault location: a KV version 2 mount on a secrets
//! engine the team already runs, beside the directory locations.
//!
//! - [`config`]: `[[vault.locations]] kind = "openbao"` (address, mount, prefix, login,
//!   CA file, HA lease settings);
//! - [`client`]: a small blocking KV v2 client over reqwest (token or AppRole login,
//!   check-and-set writes, versions, capabilities); `relogin`: when it may log in again
//!   after a 403 (once per token, then backing off) — the refused AppRole token is revoked;
//! - [`location`]: the [`Location`](crate::vault::Location) over it: one secret per
//!   credential, one version per generation, check-and-set commits.
//!
//! The HA lease that elects one refresher per credential lives with the daemon
//! (`agent::lease::leases`) and uses the same client.

pub mod client;
pub mod config;
pub mod location;
mod relogin;

pub use client::{KvClient, KvError};
pub use config::{AppRoleConfig, LocationConfig, OpenBaoConfig};
pub use location::OpenBaoLocation;
