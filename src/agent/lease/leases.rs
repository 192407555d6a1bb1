//! The lease itself ([`Leases`]): take, renew, release, the record of a spend, each a
//! check-and-set write (the rules are in the folder's map, `lease/mod.rs`).

use crate::vault::openbao::{KvClient, KvError};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sub-path of the location's prefix that holds the leases (not a credential name, so
/// the vault never lists it).
pub const LEASE_DIR: &str = "_leases";

/// Margin a follower adds to the TTL before taking over (renewal latency, scheduling).
pub const GRACE: Duration = Duration::from_secs(1);

/// What the lease secret holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseRecord {
    holder: String,
    acquired_at: DateTime<Utc>,
    renewed_at: DateTime<Utc>,
    ttl_ms: u64,
    #[serde(default)]
    released: bool,
    #[serde(default)]
    spending: Option<Spend>,
}

/// Why a refresh token may not be spent now ([`Leases::begin_spend`]); nothing was spent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpendRefused {
    /// Another daemon holds the lease (or none does yet).
    #[error("this daemon does not hold the HA lease")]
    NotHolder,
    /// The renewal that records the spend failed, so the lease may have changed hands.
    #[error("the HA lease was lost{}", .openbao.as_deref().map(|e| format!(" (OpenBao: {e})")).unwrap_or_default())]
    Lost {
        /// What OpenBao answered, when it was an error.
        openbao: Option<String>,
    },
    /// The blocking task that renews the lease did not finish (it panicked).
    #[error("the HA lease's renewal task failed")]
    TaskFailed,
}

/// A refresh token being spent by the holder (no secret: a generation and a short hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    /// Generation whose refresh token is being presented.
    pub generation: u64,
    /// [`crate::vault::history::token_id`] of that refresh token.
    pub token_id: String,
    /// When the spend began.
    pub started_at: DateTime<Utc>,
}

/// This daemon's role for one credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseRole {
    /// It holds the lease: it refreshes and commits.
    Holder,
    /// Another daemon holds it (or nobody could be asked yet): it serves what it reads.
    Follower,
}

#[derive(Debug)]
struct State {
    role: LeaseRole,
    /// Lease secret version last seen (0: none).
    version: u64,
    /// When `version` was first seen (a follower's lapse clock).
    observed_at: Instant,
    /// The lease as read last.
    record: Option<LeaseRecord>,
    /// Holder only: the lease is ours until then (counted from sending the renewal).
    held_until: Option<Instant>,
    /// Holder only: when the last renewal was sent.
    renewed: Option<Instant>,
    /// Holder only: the spend recorded in the lease.
    spending: Option<Spend>,
    /// The last error talking to OpenBao.
    error: Option<String>,
}

/// What one round of [`Leases::tick`] did, for the daemon to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tick {
    /// Nothing changed.
    Same,
    /// This daemon took the lease; `inherited` is a spend the previous holder left.
    Acquired {
        /// A refresh token the previous holder was spending when it stopped.
        inherited: Option<Spend>,
    },
    /// This daemon lost the lease (another took it, or it could not renew in time).
    Lost,
}

/// The leases of one daemon, one per HA credential.
#[derive(Debug)]
pub struct Leases {
    client: Arc<KvClient>,
    prefix: String,
    me: String,
    ttl: Duration,
    states: Mutex<HashMap<String, State>>,
}

/// Role, holder and lease age of one credential, for health.
#[derive(Debug, Clone)]
pub struct LeaseView {
    /// This daemon's role.
    pub role: LeaseRole,
    /// The holder's id as last read.
    pub holder: Option<String>,
    /// This daemon's id.
    pub me: String,
    /// Seconds since the current holder took the lease.
    pub age_secs: Option<f64>,
    /// Seconds since the lease was last renewed (by its clock).
    pub renewed_secs_ago: Option<f64>,
    /// The last error talking to OpenBao about the lease.
    pub error: Option<String>,
}

impl Leases {
    /// Leases under `prefix` for the daemon `me` (an id unique to this process).
    pub fn new(client: Arc<KvClient>, prefix: &str, me: String, ttl: Duration) -> Leases {
        Leases {
            client,
            prefix: prefix.trim_matches('/').to_string(),
            me,
            ttl,
            states: Mutex::new(HashMap::new()),
        }
    }

    /// What health says of this daemon's lease on `name`.
    pub fn ha_health(&self, name: &str) -> crate::protocol::HaHealth {
        let v = self.view(name);
        crate::protocol::HaHealth {
            role: match v.role {
                LeaseRole::Holder => "holder".into(),
                LeaseRole::Follower => "follower".into(),
            },
            holder: v.holder,
            me: v.me,
            lease_age_secs: v.age_secs,
            renewed_secs_ago: v.renewed_secs_ago,
            error: v.error,
        }
    }

    /// This daemon's id.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The lease's time to live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{LEASE_DIR}/{name}", self.prefix)
    }

    fn states(&self) -> parking_lot::MutexGuard<'_, HashMap<String, State>> {
        // Plain data updated in single steps: a panic elsewhere leaves it consistent.
        self.states.lock()
    }

    /// How long this daemon still holds `name`'s lease (`None`: it does not).
    pub fn holds(&self, name: &str) -> Option<Duration> {
        let states = self.states();
        let s = states.get(name)?;
        if s.role != LeaseRole::Holder {
            return None;
        }
        s.held_until?.checked_duration_since(Instant::now())
    }

    /// Role and lease age for health.
    pub fn view(&self, name: &str) -> LeaseView {
        let states = self.states();
        let s = states.get(name);
        let now = Utc::now();
        let secs = |t: DateTime<Utc>| ((now - t).num_milliseconds().max(0) as f64) / 1000.0;
        LeaseView {
            role: match s {
                Some(s)
                    if s.role == LeaseRole::Holder
                        && s.held_until.is_some_and(|t| t > Instant::now()) =>
                {
                    LeaseRole::Holder
                }
                _ => LeaseRole::Follower,
            },
            holder: s.and_then(|s| s.record.as_ref()).map(|r| r.holder.clone()),
            me: self.me.clone(),
            age_secs: s
                .and_then(|s| s.record.as_ref())
                .map(|r| secs(r.acquired_at)),
            renewed_secs_ago: s
                .and_then(|s| s.record.as_ref())
                .map(|r| secs(r.renewed_at)),
            error: s.and_then(|s| s.error.clone()),
        }
    }

    fn write(&self, name: &str, rec: &LeaseRecord, cas: u64) -> Result<u64, KvError> {
        // Serializing plain strings, numbers and times cannot fail.
        let data = serde_json::to_value(rec).expect("a lease record serializes");
        self.client.write(&self.path(name), &data, Some(cas))
    }

    /// One round for `name` (blocking: call it off the runtime): read the lease, renew it
    /// when held and due, take it when it lapsed or was released.
    /// A spend the previous holder left is handed to `inherit` *before* this daemon
    /// counts as the holder, so no refresh can start before it is noted.
    pub fn tick(&self, name: &str, inherit: impl FnOnce(&Spend)) -> Tick {
        let now = Instant::now();
        let read = self.client.read(&self.path(name), None);
        let (version, record) = match read {
            Ok(Some((v, data))) => (
                v,
                serde_json::from_value::<LeaseRecord>(serde_json::Value::Object(data)).ok(),
            ),
            Ok(None) => match self.client.metadata(&self.path(name)) {
                Ok(m) => (m.map(|m| m.current_version).unwrap_or(0), None),
                Err(e) => return self.failed(name, e),
            },
            Err(e) => return self.failed(name, e),
        };
        let mut states = self.states();
        let st = states.entry(name.to_string()).or_insert(State {
            role: LeaseRole::Follower,
            version,
            observed_at: now,
            record: None,
            held_until: None,
            renewed: None,
            spending: None,
            error: None,
        });
        st.error = None;
        if version != st.version {
            st.version = version;
            st.observed_at = now;
        }
        st.record = record.clone();
        let ours = record
            .as_ref()
            .is_some_and(|r| r.holder == self.me && !r.released);
        if st.role == LeaseRole::Holder {
            if !ours {
                st.role = LeaseRole::Follower;
                st.held_until = None;
                st.spending = None;
                return Tick::Lost;
            }
            let due = st
                .renewed
                .is_none_or(|t| now.duration_since(t) >= self.ttl / 3);
            if !due {
                return Tick::Same;
            }
            let rec = LeaseRecord {
                renewed_at: Utc::now(),
                spending: st.spending.clone(),
                ..record.expect("ours implies a record")
            };
            drop(states);
            return self.renew(name, rec, version, now);
        }
        // A follower (or a daemon that has not held it yet).
        let lapsed = match &record {
            None => true,
            Some(r) if r.released => true,
            Some(_) => now.duration_since(st.observed_at) >= self.ttl + GRACE,
        };
        if !lapsed {
            return Tick::Same;
        }
        let inherited = record
            .as_ref()
            .filter(|r| r.holder != self.me)
            .and_then(|r| r.spending.clone());
        let rec = LeaseRecord {
            holder: self.me.clone(),
            acquired_at: Utc::now(),
            renewed_at: Utc::now(),
            ttl_ms: self.ttl.as_millis() as u64,
            released: false,
            spending: None,
        };
        drop(states);
        match self.write(name, &rec, version) {
            Ok(v) => {
                if let Some(spend) = &inherited {
                    inherit(spend);
                }
                let mut states = self.states();
                let st = states.get_mut(name).expect("state made above");
                st.role = LeaseRole::Holder;
                st.version = v;
                st.observed_at = now;
                st.held_until = Some(now + self.ttl);
                st.renewed = Some(now);
                st.spending = None;
                st.record = Some(rec);
                tracing::info!(
                    "credential {name}: took the HA lease (this daemon refreshes it now)"
                );
                Tick::Acquired { inherited }
            }
            Err(KvError::CasMismatch { .. }) => Tick::Same,
            Err(e) => self.failed(name, e),
        }
    }

    fn renew(&self, name: &str, rec: LeaseRecord, cas: u64, sent: Instant) -> Tick {
        match self.write(name, &rec, cas) {
            Ok(v) => {
                let mut states = self.states();
                if let Some(st) = states.get_mut(name) {
                    st.version = v;
                    st.observed_at = sent;
                    st.held_until = Some(sent + self.ttl);
                    st.renewed = Some(sent);
                    st.record = Some(rec);
                }
                Tick::Same
            }
            Err(KvError::CasMismatch { .. }) => {
                let mut states = self.states();
                if let Some(st) = states.get_mut(name) {
                    st.role = LeaseRole::Follower;
                    st.held_until = None;
                    st.spending = None;
                }
                tracing::warn!("credential {name}: lost the HA lease to another daemon");
                Tick::Lost
            }
            Err(e) => self.failed(name, e),
        }
    }

    /// OpenBao did not answer: a holder keeps the lease only until it runs out.
    fn failed(&self, name: &str, e: KvError) -> Tick {
        let mut states = self.states();
        let st = states.entry(name.to_string()).or_insert(State {
            role: LeaseRole::Follower,
            version: 0,
            observed_at: Instant::now(),
            record: None,
            held_until: None,
            renewed: None,
            spending: None,
            error: None,
        });
        st.error = Some(e.to_string());
        if st.role == LeaseRole::Holder && st.held_until.is_none_or(|t| t <= Instant::now()) {
            st.role = LeaseRole::Follower;
            st.held_until = None;
            tracing::warn!(
                "credential {name}: the HA lease ran out because OpenBao cannot be written ({e}); not refreshing until it can"
            );
            return Tick::Lost;
        }
        Tick::Same
    }

    /// Before a refresh token is presented: renews the lease with the spend recorded in
    /// it (blocking). Returns how long the lease now lasts; an error when this daemon
    /// does not hold it any more or OpenBao cannot be written (then nothing is spent).
    pub fn begin_spend(&self, name: &str, spend: Spend) -> Result<Duration, SpendRefused> {
        let sent = Instant::now();
        let (rec, cas) = {
            let states = self.states();
            let Some(st) = states.get(name).filter(|s| s.role == LeaseRole::Holder) else {
                return Err(SpendRefused::NotHolder);
            };
            let Some(r) = st.record.clone() else {
                return Err(SpendRefused::NotHolder);
            };
            (
                LeaseRecord {
                    renewed_at: Utc::now(),
                    spending: Some(spend.clone()),
                    ..r
                },
                st.version,
            )
        };
        match self.renew(name, rec, cas, sent) {
            Tick::Same if self.holds(name).is_some() => {
                if let Some(st) = self.states().get_mut(name) {
                    st.spending = Some(spend);
                }
                Ok(self.ttl)
            }
            _ => Err(SpendRefused::Lost {
                openbao: self.states().get(name).and_then(|s| s.error.clone()),
            }),
        }
    }

    /// After the spend's answer is committed (or known not to have rotated): the next
    /// renewal records no spend. Renewed at once so a takeover does not see a stale one.
    pub fn end_spend(&self, name: &str) {
        let (rec, cas) = {
            let mut states = self.states();
            let Some(st) = states.get_mut(name) else {
                return;
            };
            st.spending = None;
            let Some(r) = st.record.clone().filter(|_| st.role == LeaseRole::Holder) else {
                return;
            };
            (
                LeaseRecord {
                    renewed_at: Utc::now(),
                    spending: None,
                    ..r
                },
                st.version,
            )
        };
        let _ = self.renew(name, rec, cas, Instant::now());
    }

    /// At shutdown: gives every held lease back, so a follower takes over at once.
    pub fn release_all(&self) {
        let held: Vec<(String, LeaseRecord, u64)> = self
            .states()
            .iter()
            .filter(|(_, s)| s.role == LeaseRole::Holder && s.spending.is_none())
            .filter_map(|(n, s)| Some((n.clone(), s.record.clone()?, s.version)))
            .collect();
        for (name, rec, cas) in held {
            let rec = LeaseRecord {
                released: true,
                renewed_at: Utc::now(),
                ..rec
            };
            match self.write(&name, &rec, cas) {
                Ok(_) => tracing::info!("credential {name}: released the HA lease"),
                Err(e) => tracing::warn!(
                    "credential {name}: cannot release the HA lease ({e}); it lapses by itself"
                ),
            }
        }
    }
}

/// A unique id for this daemon process: agent name, host, pid and a random part (two
/// daemons behind one agent name are told apart; a restart is a new holder).
pub fn daemon_id(agent: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!(
        "{agent}@{host}#{}-{}",
        std::process::id(),
        &crate::secret::random_token(4)
    )
}
/// The leases for a vault with an OpenBao location marked `ha = true`.
pub fn for_vault(vault: &crate::vault::Vault, agent: &str) -> Option<Arc<Leases>> {
    let (cfg, client) = vault.openbao().filter(|(c, _)| c.ha)?;
    let me = daemon_id(agent);
    tracing::info!(
        "HA: this daemon is {me}; leases under {}/{}/{LEASE_DIR}",
        client.mount(),
        cfg.prefix
    );
    Some(Arc::new(Leases::new(
        client,
        &cfg.prefix,
        me,
        cfg.lease_ttl,
    )))
}
