//! Connection limits: a global and a per-source cap on open connections, so idle, slow or
//! chatty connections from anyone on the network cannot exhaust the daemon (its file
//! descriptors are also what vault writes need) nor lock out its own clients.
//!
//! - A connection is *protected* (never closed to make room) only once it sent a request
//!   with a valid agent or device token. `/healthz` needs no token, so answering it proves
//!   nothing about the caller.
//! - [`RESERVED_FOR_AUTHENTICATED`] of the [`MAX_CONNECTIONS`] places can only be held by
//!   protected connections: unauthenticated ones share the rest.
//! - At a cap a new connection is not refused outright: an unauthenticated connection
//!   makes room, taken from the source holding the most of them, and among those the one
//!   with the least recent activity (connect or request). A flood from a few addresses
//!   thus evicts itself, while the agent's fresh connection from elsewhere gets in and
//!   becomes protected with its first request.
//! - An unauthenticated connection may send at most [`MAX_UNAUTHENTICATED_REQUESTS`]
//!   requests and stays open at most [`UNAUTHENTICATED_LIFETIME`], so it cannot keep a
//!   place by being busy.
//! - A source is an IPv4 address or an IPv6 /64: one host usually owns a whole /64, so
//!   per-address counting would let it take every place.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Most open connections at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Most open connections from one source (IPv4 address, IPv6 /64) at once.
pub const MAX_PER_ADDRESS: usize = 128;
/// Places only authenticated connections may hold: unauthenticated ones share
/// `MAX_CONNECTIONS - RESERVED_FOR_AUTHENTICATED`.
pub const RESERVED_FOR_AUTHENTICATED: usize = 64;
/// Most requests an unauthenticated connection may send; the last is answered with
/// `Connection: close`.
pub const MAX_UNAUTHENTICATED_REQUESTS: u32 = 32;
/// Longest an unauthenticated connection stays open (it finishes the request in flight).
pub const UNAUTHENTICATED_LIFETIME: Duration = Duration::from_secs(30);

/// Whom a per-source cap counts: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// One IPv4 address (IPv4-mapped IPv6 addresses count here too).
    V4(Ipv4Addr),
    /// The upper 64 bits of an IPv6 address.
    V6Net(u64),
}

impl Source {
    /// The source `addr` counts for.
    pub fn of(addr: IpAddr) -> Source {
        match addr {
            IpAddr::V4(a) => Source::V4(a),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4),
                None => Source::V6Net((u128::from(a) >> 64) as u64),
            },
        }
    }
}

/// One admitted connection.
#[derive(Debug)]
pub struct Slot {
    source: Source,
    since: Instant,
    /// The limiter's activity clock at this connection's last connect or request: a
    /// counter, not a time, so "least recent" has no ties.
    last_active: AtomicU64,
    clock: Arc<AtomicU64>,
    requests: AtomicU32,
    authenticated: AtomicBool,
    evict: Notify,
}

impl Slot {
    /// Records a request on this connection (activity); returns how many it has sent.
    pub fn request(&self) -> u32 {
        self.touch();
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn touch(&self) {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        self.last_active.store(now, Ordering::Relaxed);
    }

    /// Marks that the connection sent a request with a valid token: it is protected from
    /// now on, and the caps on unauthenticated connections no longer apply to it.
    pub fn authenticated(&self) {
        self.authenticated.store(true, Ordering::Relaxed);
    }

    /// True once a request on this connection carried a valid token.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated.load(Ordering::Relaxed)
    }

    /// False when an unauthenticated connection has used up its requests: the response
    /// in hand must close it.
    pub fn may_keep_alive(&self) -> bool {
        self.is_authenticated()
            || self.requests.load(Ordering::Relaxed) < MAX_UNAUTHENTICATED_REQUESTS
    }

    /// Resolves when an unauthenticated connection reached [`UNAUTHENTICATED_LIFETIME`];
    /// never for one that authenticated by then.
    pub async fn lifetime_over(&self) {
        tokio::time::sleep_until(self.since + UNAUTHENTICATED_LIFETIME).await;
        if self.is_authenticated() {
            std::future::pending::<()>().await;
        }
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
    clock: Arc<AtomicU64>,
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

/// The unauthenticated connection to close: with `only`, from that source; otherwise from
/// the source holding the most unauthenticated connections (ties: the one with the least
/// recent activity). Within the source, the least recently active one.
fn victim(slots: &HashMap<u64, Arc<Slot>>, only: Option<Source>) -> Option<u64> {
    let open = || {
        slots
            .iter()
            .filter(|(_, s)| !s.is_authenticated())
            .filter(move |(_, s)| only.is_none_or(|o| s.source == o))
    };
    // Per source: (unauthenticated connections, least recent activity, its id).
    let mut per_source: HashMap<Source, (usize, u64, u64)> = HashMap::new();
    for (id, s) in open() {
        let active = s.last_active.load(Ordering::Relaxed);
        let e = per_source.entry(s.source).or_insert((0, u64::MAX, *id));
        e.0 += 1;
        if active < e.1 {
            e.1 = active;
            e.2 = *id;
        }
    }
    per_source
        .into_values()
        .max_by_key(|(count, oldest, _)| (*count, std::cmp::Reverse(*oldest)))
        .map(|(_, _, id)| id)
}

impl Limiter {
    /// Admits a connection from `addr`, closing an unauthenticated connection to make room
    /// when a cap is reached (see the module doc). `None` when no unauthenticated
    /// connection can give way: the new one is refused.
    pub fn admit(self: &Arc<Self>, addr: IpAddr) -> Option<Admitted> {
        let source = Source::of(addr);
        let mut slots = self.slots.lock();
        let from_source = slots.values().filter(|s| s.source == source).count();
        let unauthenticated = slots.values().filter(|s| !s.is_authenticated()).count();
        let chosen = if from_source >= MAX_PER_ADDRESS {
            // The source makes room from its own connections, never from others'.
            Some(victim(&slots, Some(source))?)
        } else if slots.len() >= MAX_CONNECTIONS
            || unauthenticated >= MAX_CONNECTIONS - RESERVED_FOR_AUTHENTICATED
        {
            Some(victim(&slots, None)?)
        } else {
            None
        };
        if let Some(id) = chosen {
            // Invariant: `victim` found this id in the map under this lock.
            let slot = slots.remove(&id).expect("victim is in the map");
            // notify_one stores a permit: the connection closes even if it is not
            // waiting on `evicted` at this instant.
            slot.evict.notify_one();
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            source,
            since: Instant::now(),
            last_active: AtomicU64::new(0),
            clock: self.clock.clone(),
            requests: AtomicU32::new(0),
            authenticated: AtomicBool::new(false),
            evict: Notify::new(),
        });
        slot.touch();
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    impl Limiter {
        /// True while `slot` holds a place (it was not evicted).
        fn holds(&self, slot: &Arc<Slot>) -> bool {
            self.slots.lock().values().any(|s| Arc::ptr_eq(s, slot))
        }

        fn unauthenticated(&self) -> usize {
            let slots = self.slots.lock();
            slots.values().filter(|s| !s.is_authenticated()).count()
        }
    }

    #[tokio::test]
    async fn the_least_recently_active_connection_makes_room() {
        let l = Arc::new(Limiter::default());
        let a = ip("10.0.0.1");
        let mut held: Vec<Admitted> = (0..MAX_PER_ADDRESS).map(|_| l.admit(a).unwrap()).collect();
        // The first one is busy with (unauthenticated) requests; the second is idle since
        // its connect and is now the least recently active.
        held[0].slot.request();
        let busy = held[0].slot.clone();
        let idle = held[1].slot.clone();
        held.push(l.admit(a).unwrap());
        tokio::time::timeout(Duration::from_secs(1), idle.evicted())
            .await
            .expect("the idle one was told to close");
        assert!(l.holds(&busy));
        assert_eq!(l.evictions(), 1);
        assert_eq!(l.open(), MAX_PER_ADDRESS);
        // Another address is not limited by the first one's cap.
        assert!(l.admit(ip("10.0.0.2")).is_some());
    }

    #[test]
    fn answering_healthz_protects_nothing_a_token_does() {
        let l = Arc::new(Limiter::default());
        let a = ip("10.0.0.1");
        let held: Vec<Admitted> = (0..MAX_PER_ADDRESS).map(|_| l.admit(a).unwrap()).collect();
        for h in &held {
            h.slot.request();
        }
        // Requests without a token: one of them gives way.
        assert!(l.admit(a).is_some());
        assert_eq!(l.evictions(), 1);
        drop(held);
        let held: Vec<Admitted> = (0..MAX_PER_ADDRESS).map(|_| l.admit(a).unwrap()).collect();
        for h in &held {
            h.slot.request();
            h.slot.authenticated();
        }
        assert!(
            l.admit(a).is_none(),
            "refused when every place of the source is authenticated"
        );
        assert!(held.iter().all(|h| l.holds(&h.slot)));
        drop(held);
        assert_eq!(l.open(), 0);
    }

    #[test]
    fn places_are_reserved_for_authenticated_connections() {
        let l = Arc::new(Limiter::default());
        let unauth_cap = MAX_CONNECTIONS - RESERVED_FOR_AUTHENTICATED;
        let many = |i: usize, net: u8| ip(&format!("10.{net}.{}.{}", i / 200, i % 200));
        // Unauthenticated connections from many addresses fill their share.
        let held: Vec<Admitted> = (0..unauth_cap)
            .map(|i| l.admit(many(i, 1)).unwrap())
            .collect();
        // One more evicts one of them although the total is below the cap.
        let extra = l.admit(ip("10.2.0.1")).unwrap();
        assert_eq!(l.evictions(), 1);
        assert_eq!(l.open(), unauth_cap);
        // Connections that authenticate move into the reserved places.
        let mut auth = Vec::new();
        for i in 0..RESERVED_FOR_AUTHENTICATED {
            let c = l.admit(many(i, 3)).unwrap();
            c.slot.request();
            c.slot.authenticated();
            auth.push(c);
        }
        // However many unauthenticated newcomers follow, they only evict each other.
        let newcomers: Vec<Admitted> = (0..3 * MAX_CONNECTIONS)
            .map(|i| l.admit(many(i, 4)).unwrap())
            .collect();
        assert!(auth.iter().all(|c| l.holds(&c.slot)));
        assert!(l.unauthenticated() <= unauth_cap);
        assert!(l.open() <= MAX_CONNECTIONS);
        drop((held, extra, auth, newcomers));
    }

    #[test]
    fn a_flood_from_two_addresses_evicts_itself_not_the_newcomer() {
        let l = Arc::new(Limiter::default());
        let src = |i: usize| {
            ip(if i.is_multiple_of(2) {
                "127.0.0.2"
            } else {
                "127.0.0.3"
            })
        };
        let mut flood: Vec<Admitted> = (0..MAX_CONNECTIONS)
            .filter_map(|i| l.admit(src(i)))
            .collect();
        // The agent connects from elsewhere; then the flood goes on connecting and asking.
        let agent = l.admit(ip("127.0.0.1")).unwrap();
        for round in 0..4 * MAX_CONNECTIONS {
            for c in flood.iter().rev().take(8) {
                c.slot.request();
            }
            flood.push(l.admit(src(round)).expect("the flood can evict itself"));
        }
        assert!(l.holds(&agent.slot), "the newcomer kept its place");
        agent.slot.request();
        agent.slot.authenticated();
        for round in 0..4 * MAX_CONNECTIONS {
            flood.push(l.admit(src(round)).expect("the flood can evict itself"));
        }
        assert!(l.holds(&agent.slot));
    }

    #[test]
    fn an_ipv6_slash_64_is_one_source() {
        let l = Arc::new(Limiter::default());
        let held: Vec<Admitted> = (0..MAX_PER_ADDRESS)
            .map(|i| l.admit(ip(&format!("2001:db8:1:2::{:x}", i + 1))).unwrap())
            .collect();
        for h in &held {
            h.slot.authenticated();
        }
        // Every address of the same /64 is over the cap…
        assert!(l.admit(ip("2001:db8:1:2:ffff::1")).is_none());
        // …another /64 is not.
        assert!(l.admit(ip("2001:db8:1:3::1")).is_some());
        assert_eq!(
            Source::of(ip("::ffff:10.0.0.1")),
            Source::of(ip("10.0.0.1"))
        );
    }

    #[test]
    fn unauthenticated_connections_have_a_request_cap() {
        let l = Arc::new(Limiter::default());
        let c = l.admit(ip("10.0.0.1")).unwrap();
        for _ in 1..MAX_UNAUTHENTICATED_REQUESTS {
            c.slot.request();
            assert!(c.slot.may_keep_alive());
        }
        c.slot.request();
        assert!(
            !c.slot.may_keep_alive(),
            "the last allowed request closes it"
        );
        c.slot.authenticated();
        assert!(c.slot.may_keep_alive(), "no cap once authenticated");
    }

    #[tokio::test(start_paused = true)]
    async fn unauthenticated_connections_have_a_lifetime() {
        let l = Arc::new(Limiter::default());
        let anon = l.admit(ip("10.0.0.1")).unwrap();
        let agent = l.admit(ip("10.0.0.2")).unwrap();
        agent.slot.authenticated();
        let started = Instant::now();
        anon.slot.lifetime_over().await;
        assert_eq!(started.elapsed(), UNAUTHENTICATED_LIFETIME);
        let over = tokio::time::timeout(UNAUTHENTICATED_LIFETIME * 10, agent.slot.lifetime_over());
        assert!(
            over.await.is_err(),
            "an authenticated connection has no lifetime cap"
        );
    }
}
