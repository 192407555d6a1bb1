//! The vault's health as the owner hears it ([`VaultWatch`]): what the daemon stores of
//! the vault's watch, kept current after every vault operation. Each transition waits
//! here as a [`Pending`] notice until the cadence task (`vault_watch::cadence`) sends it
//! once as an event and an alert.

use crate::protocol::{CredentialState, LocationHealth, VaultHealth};
use chrono::Utc;
use parking_lot::Mutex;
use std::collections::BTreeSet;
use tokio::sync::Notify;

/// Something the owner should hear about, waiting for the watch task to send it.
#[derive(Debug)]
pub enum Pending {
    /// The vault's state changed (ok ↔ degraded, or the set of failing locations).
    Transition {
        previous: CredentialState,
        health: VaultHealth,
    },
    /// A copy or an output was repaired (no state change).
    Repaired(VaultHealth),
}

#[derive(Debug)]
struct State {
    health: VaultHealth,
    pending: Vec<Pending>,
    /// Problems already logged, so a lasting one is logged once.
    logged: BTreeSet<String>,
}

/// The vault's health and the transitions not yet announced.
#[derive(Debug)]
pub struct VaultWatch {
    state: Mutex<State>,
    /// Wakes the watch task when something is pending.
    pub(in crate::agent::vault_watch) kick: Notify,
}

fn failing_key(h: &VaultHealth) -> Vec<(String, Option<String>)> {
    h.failing
        .iter()
        .map(|l| (l.name.clone(), l.code.clone()))
        .collect()
}

impl VaultWatch {
    /// The watch over `locations` as the vault opened them, with the repairs made at open.
    pub fn new(locations: &[LocationHealth], repairs_at_open: &[String]) -> VaultWatch {
        let mut health = VaultHealth {
            state: CredentialState::Ok,
            since: Utc::now(),
            locations_ok: 0,
            locations_total: 0,
            failing: Vec::new(),
            repairs: repairs_at_open.len() as u64,
            last_repair: repairs_at_open.last().cloned(),
        };
        apply(&mut health, locations);
        VaultWatch {
            state: Mutex::new(State {
                health,
                pending: Vec::new(),
                logged: BTreeSet::new(),
            }),
            kick: Notify::new(),
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, State> {
        // Only plain data behind the lock: a panic elsewhere leaves it usable.
        self.state.lock()
    }

    /// The vault's health now.
    pub fn health(&self) -> VaultHealth {
        self.lock().health.clone()
    }

    /// Takes the locations' health after a vault operation; a transition is queued.
    pub fn observe(&self, locations: &[LocationHealth]) {
        let mut st = self.lock();
        let before = st.health.clone();
        apply(&mut st.health, locations);
        if failing_key(&before) != failing_key(&st.health) {
            if st.health.state != before.state {
                st.health.since = Utc::now();
            }
            for l in &st.health.failing {
                if !before.failing.iter().any(|b| b.name == l.name) {
                    tracing::warn!(
                        "vault: {} {}: {}",
                        l.name,
                        crate::protocol::location_problem_words(l.code.as_deref()),
                        l.error.as_deref().unwrap_or("no detail")
                    );
                }
            }
            for b in &before.failing {
                if !st.health.failing.iter().any(|l| l.name == b.name) {
                    tracing::info!("vault: {} works again", b.name);
                }
            }
            let health = st.health.clone();
            st.pending.push(Pending::Transition {
                previous: before.state,
                health,
            });
            drop(st);
            self.kick.notify_one();
        }
    }

    /// Counts repairs (lines as in the health report's `repaired`); queued as an event.
    pub fn repaired(&self, lines: &[String]) {
        if lines.is_empty() {
            return;
        }
        let mut st = self.lock();
        st.health.repairs += lines.len() as u64;
        st.health.last_repair = lines.last().cloned();
        let health = st.health.clone();
        st.pending.push(Pending::Repaired(health));
        drop(st);
        self.kick.notify_one();
    }

    /// Logs the problems a reconcile could not fix, each once while it lasts.
    pub fn problems(&self, problems: &[String]) {
        let mut st = self.lock();
        let now: BTreeSet<String> = problems.iter().cloned().collect();
        for p in now.difference(&st.logged) {
            tracing::warn!("vault: {p}");
        }
        st.logged = now;
    }

    pub fn take_pending(&self) -> Vec<Pending> {
        std::mem::take(&mut self.lock().pending)
    }
}

/// Recomputes `h` from the locations (state, counts, failing list).
fn apply(h: &mut VaultHealth, locations: &[LocationHealth]) {
    h.failing = locations.iter().filter(|l| !l.ok).cloned().collect();
    h.locations_total = locations.len() as u32;
    h.locations_ok = (locations.len() - h.failing.len()) as u32;
    h.state = if h.failing.is_empty() {
        CredentialState::Ok
    } else {
        CredentialState::Degraded
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(name: &str, ok: bool) -> LocationHealth {
        LocationHealth {
            name: name.into(),
            ok,
            error: (!ok).then(|| format!("no space left on the device holding {name}")),
            code: (!ok).then(|| "no_space".into()),
        }
    }

    #[test]
    fn one_transition_per_change_not_per_check() {
        let w = VaultWatch::new(&[loc("primary /p", true), loc("backup 1 /b", true)], &[]);
        assert_eq!(w.health().state, CredentialState::Ok);
        let full = [loc("primary /p", false), loc("backup 1 /b", true)];
        w.observe(&full);
        w.observe(&full);
        w.observe(&full);
        let p = w.take_pending();
        assert_eq!(p.len(), 1, "{p:?}");
        let h = w.health();
        assert_eq!(h.state, CredentialState::Degraded);
        assert_eq!(h.trouble_summary().unwrap(), "primary /p is full", "{h:?}");
        assert_eq!(
            h.copies_phrase(1),
            "the credential is stored in 1 of 2 places"
        );
        w.observe(&[loc("primary /p", true), loc("backup 1 /b", true)]);
        let p = w.take_pending();
        assert!(
            matches!(&p[..], [Pending::Transition { previous: CredentialState::Degraded, health }] if health.state == CredentialState::Ok),
            "{p:?}"
        );
    }

    #[test]
    fn repairs_are_counted() {
        let w = VaultWatch::new(&[loc("primary /p", true)], &["repaired a".into()]);
        assert_eq!(w.health().repairs, 1);
        w.repaired(&["repaired b".into(), "repaired c".into()]);
        let h = w.health();
        assert_eq!(h.repairs, 3);
        assert_eq!(h.last_repair.as_deref(), Some("repaired c"));
        assert_eq!(h.state, CredentialState::Ok);
    }
}
