//! The registry of checker tasks, stored by the daemon: each credential's checker (so a
//! reload can stop the one of a removed or changed credential) and the lock that keeps
//! reloads one at a time. The tasks themselves are `keep_alive::checker`; a reload
//! (`agent::reload`) starts and stops them.

use parking_lot::Mutex;
use std::collections::BTreeMap;

/// Reloads one at a time, and every credential's checker task (to stop it on a reload).
#[derive(Debug, Default)]
pub(crate) struct CheckerRegistry {
    pub(in crate::agent) one_at_a_time: tokio::sync::Mutex<()>,
    pub(in crate::agent) tasks: Mutex<BTreeMap<String, tokio::task::AbortHandle>>,
}
