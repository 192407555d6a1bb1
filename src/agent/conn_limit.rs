//! Connection limits: a global and a per-address cap on open connections, so idle or
//! half-sent connections from anyone on the network cannot exhaust the daemon (its file
//! descriptors are also what vault writes need).
//!
//! At the cap a new connection is not refused outright: the oldest connection that has
//! not yet sent a request (idle since its TCP connect, stuck in its TLS handshake, or
//! sending headers slowly) is closed to make room. A real client sends its request at
//! once, so the agent's next request gets in even while an attacker holds hundreds of
//! idle connections; connections that have been served stay until they close (the
//! header-read deadline ends idle keep-alive ones).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Most open connections at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Most open connections from one address at once.
pub const MAX_PER_ADDRESS: usize = 128;

/// One admitted connection.
#[derive(Debug)]
pub struct Slot {
    addr: IpAddr,
    since: Instant,
    served: AtomicBool,
    evict: Notify,
}

impl Slot {
    /// Marks that the connection sent a request (it is no longer a candidate for eviction).
    pub fn served(&self) {
        self.served.store(true, Ordering::Relaxed);
    }

    /// Resolves when the connection was chosen to make room for a new one.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

/// The open connections.
#[derive(Debug, Default)]
pub struct Limiter {
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    next: AtomicU64,
    evictions: AtomicU64,
}

/// Held for as long as the connection is open; frees its place when dropped.
#[derive(Debug)]
pub struct Admitted {
    limiter: Arc<Limiter>,
    id: u64,
    /// The connection's slot.
    pub slot: Arc<Slot>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        // Invariant: the map is only touched in these short, non-panicking sections.
        self.limiter.slots.lock().remove(&self.id);
    }
}

impl Limiter {
    /// Admits a connection from `addr`, closing the oldest never-served connection (from
    /// that address first, when it is the one over its cap) to make room. `None` when
    /// every place is held by a connection that has been served: the new one is refused.
    pub fn admit(self: &Arc<Self>, addr: IpAddr) -> Option<Admitted> {
        let mut slots = self.slots.lock();
        let from_addr = slots.values().filter(|s| s.addr == addr).count();
        let over_addr = from_addr >= MAX_PER_ADDRESS;
        let over_all = slots.len() >= MAX_CONNECTIONS;
        if over_addr || over_all {
            let victim = slots
                .iter()
                .filter(|(_, s)| !s.served.load(Ordering::Relaxed))
                .filter(|(_, s)| !over_addr || s.addr == addr)
                .min_by_key(|(_, s)| s.since)
                .map(|(id, _)| *id)?;
            // Invariant: the victim was just found in the map under this lock.
            let slot = slots.remove(&victim).expect("victim is in the map");
            // notify_one stores a permit: the connection closes even if it is not
            // waiting on `evicted` at this instant.
            slot.evict.notify_one();
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            addr,
            since: Instant::now(),
            served: AtomicBool::new(false),
            evict: Notify::new(),
        });
        slots.insert(id, slot.clone());
        Some(Admitted {
            limiter: self.clone(),
            id,
            slot,
        })
    }

    /// Open connections.
    pub fn open(&self) -> usize {
        self.slots.lock().len()
    }

    /// Connections closed to make room so far.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_oldest_idle_connection_makes_room() {
        let l = Arc::new(Limiter::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mut held: Vec<Admitted> = (0..MAX_PER_ADDRESS).map(|_| l.admit(a).unwrap()).collect();
        let first = held[0].slot.clone();
        let served = held[1].slot.clone();
        served.served();
        // One more from the same address: the oldest never-served one goes.
        held.push(l.admit(a).unwrap());
        tokio::time::timeout(std::time::Duration::from_secs(1), first.evicted())
            .await
            .expect("the oldest idle connection was told to close");
        assert_eq!(l.evictions(), 1);
        assert_eq!(l.open(), MAX_PER_ADDRESS);
        // Another address is not limited by the first one's cap.
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.admit(b).is_some());
    }

    #[test]
    fn served_connections_are_never_evicted() {
        let l = Arc::new(Limiter::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let held: Vec<Admitted> = (0..MAX_PER_ADDRESS).map(|_| l.admit(a).unwrap()).collect();
        for h in &held {
            h.slot.served();
        }
        assert!(
            l.admit(a).is_none(),
            "refused when every place is a served connection"
        );
        drop(held);
        assert_eq!(l.open(), 0);
    }
}
