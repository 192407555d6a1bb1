//! The HA lease: daemons sharing an OpenBao location (`ha = true`) elect, per credential,
//! the one that may talk to the provider.
//!
//! The lease is a KV v2 secret `<prefix>/_leases/<credential>` holding the holder's id,
//! when it was taken and renewed, its time to live and, while a refresh token is being
//! spent, which one. Every change is a check-and-set write against the version read last,
//! so two daemons cannot both take or renew it.
//!
//! Time is measured on each daemon's own monotonic clock, never compared across machines:
//! the holder counts its lease from the moment it *sent* the renewal, a follower from the
//! moment it first *saw* that version, so the follower's deadline is never earlier than the
//! holder's. The holder renews every third of the TTL and starts a refresh only with the
//! lease just renewed (the write that also records the token being spent), and gives the
//! provider call less time than the lease has left. A follower takes over when it has seen
//! no new version for TTL + [`GRACE`], or at once when the holder released it (a clean
//! shutdown). A takeover that finds a spend recorded hands it to the daemon's refresh
//! intents, so a token whose answer died with the old holder is never presented blindly.
//!
//! Followers serve the newest generation they read from the vault (`hooks::follow_recorded`); a lost
//! lease mid-refresh is caught by the vault's check-and-set (`Vault::commit_after`).
//!
//! - [`leases`]: the lease itself ([`Leases`]: take, renew, release, the record of a spend);
//! - [`hooks`]: the daemon's side (the lease task, a follower's way of serving, the
//!   holder's spend, health).

pub mod hooks;
pub mod leases;

pub use hooks::run;
pub use leases::for_vault;
pub use leases::{daemon_id, LeaseRole, LeaseView, Leases, Spend, SpendRefused, Tick};
