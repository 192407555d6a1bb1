//! The daemon's credentials by name, swapped whole on a config reload.
//!
//! Readers take a snapshot (an `Arc` of the map) and work on it without a lock held, so a
//! reload never waits for a request and a request never sees half a reload. A request that
//! got a credential before a reload finishes with it; the next one sees the new set.

use crate::agent::credential::runtime::Credential;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Credentials by name.
pub type CredentialMap = BTreeMap<String, Arc<Credential>>;

/// The current set of credentials.
#[derive(Debug, Default)]
pub struct CredentialSet {
    map: RwLock<Arc<CredentialMap>>,
}

impl CredentialSet {
    /// A set holding `map`.
    pub fn new(map: CredentialMap) -> CredentialSet {
        CredentialSet {
            map: RwLock::new(Arc::new(map)),
        }
    }

    /// The set as it is now.
    pub fn snapshot(&self) -> Arc<CredentialMap> {
        // Invariant: the lock only guards an Arc swap; a panic cannot leave it half-done.
        self.map.read().clone()
    }

    /// The credential called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Credential>> {
        self.snapshot().get(name).cloned()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.snapshot().is_empty()
    }

    /// Names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.snapshot().keys().cloned().collect()
    }

    /// Replaces the whole set (a reload).
    pub(crate) fn replace(&self, map: CredentialMap) {
        *self.map.write() = Arc::new(map);
    }
}
