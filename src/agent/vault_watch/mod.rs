//! The vault's own watch: its cadence, the output check, wipe notices and the file watch.
//!
//! - [`cadence`]: a cheap check every few seconds, repairs at once, the vault's health,
//!   events and alerts; an `output_wiped` notice at most hourly per output;
//! - [`state`]: the vault's health as the owner hears it, stored by the daemon;
//! - [`file_watch`]: inotify on outputs and vault locations, missing directories through
//!   their nearest existing ancestor (wiped files restored at once).

pub mod cadence;
pub mod file_watch;
pub mod state;
