//! Simulated life of the checker's schedule: 30 days per provider shape on a virtual
//! clock, against a model of the provider (access tokens that really expire, rotation,
//! revocations at random instants, 5xx spells, daemon restarts, re-authorization a while
//! after each death).
//!
//! The schedule under test is the daemon's real one (`tether::agent::credential::schedule`); the
//! provider is a model, because 30 days cannot pass on a real server. The real-time test
//! against oidc-provider (`lifetimes.rs`) shows the same rules on the wire.

use std::time::Duration;
use tether::agent::credential::schedule::{
    refresh_ahead, Action, Observation, Phase, RefreshReason, Schedule, ScheduleConfig, TokenLife,
    BACKOFF_MAX, MIN_GAP, PROBE_JITTER, PROBE_MARGIN, REFRESH_JITTER,
};
use tokio::time::Instant;

const DAY: Duration = Duration::from_secs(24 * 3600);
const HOUR: Duration = Duration::from_secs(3600);

/// One provider shape.
#[derive(Debug, Clone, Copy)]
struct Shape {
    name: &'static str,
    /// The real lifetime of access tokens (`None`: they never expire).
    lifetime: Option<Duration>,
    /// Whether the token answer carries `expires_in`; without it the daemon assumes
    /// `assumed` (the preset's default lifetime).
    sends_expires_in: bool,
    assumed: Option<Duration>,
    rotates: bool,
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "google: 1 h, not rotating",
        lifetime: Some(HOUR),
        sends_expires_in: true,
        assumed: Some(HOUR),
        rotates: false,
    },
    Shape {
        name: "x: 2 h, rotating",
        lifetime: Some(Duration::from_secs(2 * 3600)),
        sends_expires_in: true,
        assumed: Some(Duration::from_secs(2 * 3600)),
        rotates: true,
    },
    Shape {
        name: "github-app: 8 h, rotating",
        lifetime: Some(Duration::from_secs(8 * 3600)),
        sends_expires_in: true,
        assumed: Some(Duration::from_secs(8 * 3600)),
        rotates: true,
    },
    Shape {
        name: "tiktok: 24 h, rotating",
        lifetime: Some(DAY),
        sends_expires_in: true,
        assumed: Some(Duration::from_secs(2 * 3600)),
        rotates: true,
    },
    Shape {
        name: "github: no expiry",
        lifetime: None,
        sends_expires_in: false,
        assumed: None,
        rotates: false,
    },
    Shape {
        name: "generic: expires_in absent (really 1 h)",
        lifetime: Some(HOUR),
        sends_expires_in: false,
        assumed: Some(HOUR),
        rotates: false,
    },
];

/// A tiny deterministic generator for the scenario (revocation instants, spells).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, d: Duration) -> Duration {
        Duration::from_secs(self.next() % d.as_secs().max(1))
    }
}

/// The provider model.
struct Provider {
    shape: Shape,
    /// The real end of the access token in use.
    token_end: Option<Instant>,
    revoked: bool,
    outages: Vec<(Instant, Instant)>,
    refreshes: u64,
    probes: u64,
    probes_with_dead_token: u64,
}

impl Provider {
    fn down(&self, t: Instant) -> bool {
        self.outages.iter().any(|(a, b)| *a <= t && t < *b)
    }

    fn issue(&mut self, now: Instant) -> TokenLife {
        let shape = self.shape;
        self.token_end = shape.lifetime.map(|l| now + l);
        let told = if shape.sends_expires_in {
            shape.lifetime
        } else {
            shape.assumed
        };
        TokenLife {
            expires_at: told.map(|l| now + l),
            lifetime: told,
        }
    }

    fn run(&mut self, action: Action, now: Instant) -> Observation {
        match action {
            Action::Probe => {
                self.probes += 1;
                if self.down(now) {
                    return Observation::ProbeTransient;
                }
                if self.token_end.is_some_and(|e| e <= now) {
                    // A probe with an expired token says "gone" on a live grant: the old
                    // checker's failure mode.
                    self.probes_with_dead_token += 1;
                    return Observation::ProbeGone;
                }
                if self.revoked {
                    Observation::ProbeGone
                } else {
                    Observation::ProbeAlive
                }
            }
            Action::Refresh(_) => {
                self.refreshes += 1;
                if self.down(now) {
                    Observation::Transient
                } else if self.revoked {
                    Observation::Dead
                } else {
                    Observation::Refreshed(self.issue(now))
                }
            }
        }
    }
}

struct Report {
    /// Refreshes the broker made for the agent (outside the checker).
    broker_refreshes: u64,
    detections: Vec<Duration>,
    refreshes_per_day: f64,
    max_actions_per_hour: u64,
    unneeded_rotations: u64,
    probes_with_dead_token: u64,
}

/// How the agent and the config shape a simulated life besides the provider.
#[derive(Debug, Clone, Copy)]
struct Life {
    /// The agent asks the broker for a token at random moments, on average this often.
    /// The broker refreshes (outside the checker) when the token is inside its margin.
    broker_every: Option<Duration>,
    /// The config's `keep_fresh`: with it off the broker does most of the refreshing.
    keep_fresh: bool,
}

/// The daemon's defaults, with no agent traffic.
const QUIET: Life = Life {
    broker_every: None,
    keep_fresh: true,
};

/// Runs 30 days of `shape` with `probe` and returns what happened.
fn live(shape: Shape, probe: Option<Duration>, seed: u64) -> Report {
    live_with(shape, probe, seed, QUIET)
}

/// [`live`] with the agent's traffic and config of `life`.
fn live_with(shape: Shape, probe: Option<Duration>, seed: u64, life: Life) -> Report {
    let cfg = ScheduleConfig {
        probe_interval: probe,
        refresh_interval: Duration::from_secs(6 * 3600),
        refresh_ahead: Duration::from_secs(120),
        keep_fresh: life.keep_fresh,
    };
    let mut rng = Rng(seed);
    let t0 = Instant::now();
    let end = t0 + 30 * DAY;
    let mut provider = Provider {
        shape,
        token_end: None,
        revoked: false,
        outages: Vec::new(),
        refreshes: 0,
        probes: 0,
        probes_with_dead_token: 0,
    };
    // A 5xx/429 spell of up to 40 minutes every few days.
    let mut t = t0 + DAY;
    while t < end {
        let start = t + rng.below(2 * DAY);
        provider.outages.push((
            start,
            start + Duration::from_secs(60) + rng.below(40 * 60 * Duration::from_secs(1)),
        ));
        t = start + 3 * DAY;
    }
    // Revocations at random instants, each well away from a spell (the spell case has its
    // own test), and two daemon restarts.
    let mut revocations = Vec::new();
    let mut t = t0 + 12 * HOUR;
    while t < end - DAY {
        let at = t + rng.below(2 * DAY);
        if !provider
            .outages
            .iter()
            .any(|(a, b)| at + 2 * HOUR > *a && at < *b + 2 * HOUR)
        {
            revocations.push(at);
        }
        t = at + DAY;
    }
    let restarts = [
        t0 + 7 * DAY + rng.below(DAY),
        t0 + 19 * DAY + rng.below(DAY),
    ];

    let initial = provider.issue(t0);
    let mut sched = Schedule::new(cfg, t0, Some(initial), seed);
    let mut now = t0;
    let mut revoked_at: Option<Instant> = None;
    let mut reauth_at: Option<Instant> = None;
    let (mut next_rev, mut next_restart) = (0usize, 0usize);
    let mut detections = Vec::new();
    let mut actions_per_hour = std::collections::BTreeMap::<u64, u64>::new();
    let mut unneeded_rotations = 0;
    let mut token = Some(initial);
    let mut applied = 0usize;
    // The agent's next token request, and what the broker's refresh found that the
    // checker has not followed yet (the checker sleeps through it).
    let mut next_ask = life.broker_every.map(|e| t0 + rng.below(2 * e));
    let mut landed: Option<Observation> = None;
    let mut broker_refreshes = 0u64;
    while now < end {
        assert!(sched.in_flight().is_none(), "never two actions in flight");
        let next = sched.next().expect("a next action while none is in flight");
        assert!(next.at >= now, "{}: time went back", shape.name);
        // Outside events due before the next action come first.
        let event_at = [
            revocations.get(next_rev).copied(),
            restarts.get(next_restart).copied(),
            reauth_at,
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(at) = next_ask.filter(|a| *a <= next.at && event_at.is_none_or(|e| *a <= e)) {
            now = at;
            next_ask = life.broker_every.map(|e| at + MIN_GAP + rng.below(2 * e));
            // The broker's rule: refresh when the token is inside the (clamped) margin.
            let stale = token.and_then(|t| t.expires_at).is_some_and(|e| {
                let ahead = refresh_ahead(cfg.refresh_ahead, token.and_then(|t| t.lifetime));
                e <= now + ahead
            });
            if stale && !matches!(sched.phase(), Phase::Dead | Phase::NoToken) {
                broker_refreshes += 1;
                let outcome = provider.run(Action::Refresh(RefreshReason::Interval), now);
                if let Observation::Refreshed(t) = outcome {
                    token = Some(t);
                }
                if outcome == Observation::Dead {
                    if let Some(r) = revoked_at.take() {
                        detections.push(now.duration_since(r));
                        reauth_at = Some(now + HOUR);
                    }
                }
                landed = Some(outcome);
            }
            continue;
        }
        if let Some(at) = event_at.filter(|at| *at <= next.at) {
            now = at;
            if Some(at) == revocations.get(next_rev).copied() {
                next_rev += 1;
                // Only a live grant can be revoked (not one awaiting its re-authorization).
                if revoked_at.is_none() && reauth_at.is_none() && !provider.revoked {
                    provider.revoked = true;
                    revoked_at = Some(at);
                    applied += 1;
                }
            } else if Some(at) == restarts.get(next_restart).copied() {
                next_restart += 1;
                // A restart keeps the vault (the token) and loses the schedule.
                sched = Schedule::new(cfg, now, token, seed ^ at.duration_since(t0).as_secs());
            } else {
                reauth_at = None;
                provider.revoked = false;
                let t = provider.issue(now);
                token = Some(t);
                sched.verified(now, t);
            }
            continue;
        }
        now = next.at;
        // The checker wakes at its planned instant and follows what landed meanwhile
        // before it acts (the rule under test: no action from a replaced token).
        if let Some(o) = landed.take() {
            sched.follow(now, o);
            if sched.next().is_some_and(|n| n.at > now) {
                continue;
            }
        }
        let action = sched
            .due(now)
            .expect("the next action is due at its instant");
        *actions_per_hour
            .entry(now.duration_since(t0).as_secs() / 3600)
            .or_default() += 1;
        if let (Action::Refresh(reason), true) = (action, shape.rotates) {
            // A rotating token is spent only when the schedule needs it: inside the
            // refresh-ahead margin, for a probe, to confirm, to retry, at start without a
            // probe, or for the periodic refresh test.
            let inside_margin = token.and_then(|t| t.expires_at).is_some_and(|e| {
                let ahead = refresh_ahead(cfg.refresh_ahead, token.and_then(|t| t.lifetime));
                now + ahead + MIN_GAP >= e
            });
            let ok = match reason {
                RefreshReason::AheadOfExpiry => inside_margin,
                RefreshReason::TokenForProbe => token
                    .and_then(|t| t.expires_at)
                    .is_some_and(|e| e <= now + probe.unwrap_or_default() + PROBE_MARGIN),
                RefreshReason::Start => probe.is_none(),
                _ => true,
            };
            if !ok {
                unneeded_rotations += 1;
            }
        }
        let outcome = provider.run(action, now);
        if let Observation::Refreshed(t) = outcome {
            token = Some(t);
        }
        if outcome == Observation::Dead {
            if let Some(r) = revoked_at.take() {
                detections.push(now.duration_since(r));
                // The owner re-authorizes an hour later.
                reauth_at = Some(now + HOUR);
            }
        }
        sched.observe(now, outcome);
    }
    assert!(
        revoked_at.is_none(),
        "{}: a revocation was never detected",
        shape.name
    );
    assert_eq!(
        detections.len(),
        applied,
        "{}: every revocation is detected",
        shape.name
    );
    Report {
        broker_refreshes,
        detections,
        refreshes_per_day: provider.refreshes as f64 / 30.0,
        max_actions_per_hour: actions_per_hour.values().copied().max().unwrap_or(0),
        unneeded_rotations,
        probes_with_dead_token: provider.probes_with_dead_token,
    }
}

/// Refresh tests a day the rules allow: one per token lifetime (less the clamped margin)
/// or per refresh interval, whichever comes first, plus retries in spells, confirmations,
/// restarts and re-authorizations.
fn refresh_budget(shape: Shape) -> f64 {
    let interval = Duration::from_secs(6 * 3600).mul_f64(1.0 - REFRESH_JITTER);
    let told = if shape.sends_expires_in {
        shape.lifetime
    } else {
        shape.assumed
    };
    let every = match told {
        Some(l) => l
            .saturating_sub(refresh_ahead(Duration::from_secs(120), Some(l)))
            .min(interval),
        None => interval,
    };
    DAY.as_secs_f64() / every.as_secs_f64() * 1.1 + 4.0
}

#[test]
fn thirty_days_of_every_provider_shape() {
    let probe = Duration::from_secs(60);
    for (i, shape) in SHAPES.iter().enumerate() {
        let r = live(*shape, Some(probe), 0x5eed_0000 + i as u64);
        let worst = r.detections.iter().max().copied().unwrap_or_default();
        let bound = probe.mul_f64(1.0 + PROBE_JITTER) + MIN_GAP;
        let budget = refresh_budget(*shape);
        println!(
            "{:<42} revocations {:>2}  worst detection {:>5.1} s (bound {:.1} s)  refreshes/day {:>5.1} (budget {:.1})  max actions/hour {}",
            shape.name,
            r.detections.len(),
            worst.as_secs_f64(),
            bound.as_secs_f64(),
            r.refreshes_per_day,
            budget,
            r.max_actions_per_hour
        );
        assert!(
            r.detections.len() >= 8,
            "{}: too few revocations",
            shape.name
        );
        assert!(
            worst <= bound,
            "{}: a revocation took {worst:?} to detect (bound {bound:?})",
            shape.name
        );
        assert!(
            r.refreshes_per_day <= budget,
            "{}: {:.1} refreshes a day (budget {budget:.1})",
            shape.name,
            r.refreshes_per_day
        );
        // A handful per probe interval: one probe a minute plus the odd refresh.
        assert!(
            r.max_actions_per_hour <= 70,
            "{}: {} actions in one hour",
            shape.name,
            r.max_actions_per_hour
        );
        assert_eq!(r.unneeded_rotations, 0, "{}", shape.name);
        // The probe always had a usable token when the assumed lifetime is the real one.
        if shape.sends_expires_in || shape.assumed == shape.lifetime {
            assert_eq!(r.probes_with_dead_token, 0, "{}", shape.name);
        }
    }
}

#[test]
fn without_a_probe_refresh_tests_carry_detection() {
    // Credentials with no probe: the refresh-ahead cadence (1-hour tokens) or the refresh
    // interval (tokens without expiry) bounds detection, as health says.
    for shape in [SHAPES[0], SHAPES[4]] {
        let r = live(shape, None, 77);
        let cfg = ScheduleConfig {
            probe_interval: None,
            refresh_interval: Duration::from_secs(6 * 3600),
            refresh_ahead: Duration::from_secs(120),
            keep_fresh: true,
        };
        let told = shape.lifetime;
        let bound = Schedule::worst_case_detection(&cfg, told);
        let worst = r.detections.iter().max().copied().unwrap_or_default();
        println!(
            "{:<42} no probe: worst detection {:.0} s (health says {:.0} s)",
            shape.name,
            worst.as_secs_f64(),
            bound.as_secs_f64()
        );
        assert!(worst <= bound, "{}: {worst:?} > {bound:?}", shape.name);
    }
}

#[test]
fn a_revocation_during_an_outage_is_found_when_it_ends() {
    // Provider down for 30 minutes; the grant is revoked 5 minutes into the spell.
    let cfg = ScheduleConfig {
        probe_interval: Some(Duration::from_secs(60)),
        refresh_interval: Duration::from_secs(6 * 3600),
        refresh_ahead: Duration::from_secs(120),
        keep_fresh: true,
    };
    let t0 = Instant::now();
    let mut provider = Provider {
        shape: SHAPES[1],
        token_end: None,
        revoked: false,
        outages: vec![(t0 + HOUR, t0 + HOUR + Duration::from_secs(1800))],
        refreshes: 0,
        probes: 0,
        probes_with_dead_token: 0,
    };
    let token = provider.issue(t0);
    let mut sched = Schedule::new(cfg, t0, Some(token), 11);
    let revoke_at = t0 + HOUR + Duration::from_secs(300);
    let mut now;
    let mut refreshes_in_spell = 0;
    loop {
        let next = sched.next().unwrap();
        now = next.at;
        provider.revoked = now >= revoke_at;
        let action = sched.due(now).unwrap();
        if provider.down(now) && matches!(action, Action::Refresh(_)) {
            refreshes_in_spell += 1;
        }
        let outcome = provider.run(action, now);
        sched.observe(now, outcome);
        if outcome == Observation::Dead {
            break;
        }
        assert!(now < t0 + 4 * HOUR, "never detected");
    }
    let spell_end = t0 + HOUR + Duration::from_secs(1800);
    let after_spell = now.saturating_duration_since(spell_end);
    println!(
        "revoked during a 30-min spell: dead {:.0} s after it ended; {refreshes_in_spell} refresh tests ran during the spell",
        after_spell.as_secs_f64()
    );
    assert!(
        refreshes_in_spell > 0,
        "refresh tests keep running while degraded"
    );
    assert!(after_spell <= BACKOFF_MAX.mul_f64(1.1) + Duration::from_secs(60));
}

#[test]
fn broker_refreshes_at_random_moments_never_make_the_checker_spend_a_rotation() {
    // The agent asks for tokens at random moments; the broker refreshes whenever the token
    // is inside its margin, and the checker (sleeping towards a planned probe or refresh)
    // follows that flight when it wakes. With keep_fresh off the broker does nearly all the
    // refreshing, which is where a probe planned from the replaced, expired token used to
    // become a second refresh seconds after the broker's.
    let probe = Duration::from_secs(60);
    for keep_fresh in [false, true] {
        let mut broker_refreshes = 0;
        for (i, shape) in SHAPES.iter().filter(|s| s.rotates).enumerate() {
            let life = Life {
                broker_every: Some(Duration::from_secs(5 * 60)),
                keep_fresh,
            };
            let r = live_with(*shape, Some(probe), 0xb10c_0000 + i as u64, life);
            println!(
                "{:<42} keep_fresh={keep_fresh:<5} broker refreshes {:>4}  refreshes/day {:>5.1}  unneeded rotations {}",
                shape.name, r.broker_refreshes, r.refreshes_per_day, r.unneeded_rotations
            );
            broker_refreshes += r.broker_refreshes;
            assert_eq!(
                r.unneeded_rotations, 0,
                "{} keep_fresh={keep_fresh}",
                shape.name
            );
        }
        if !keep_fresh {
            // Without keep_fresh the broker takes part in the refreshing: the case under
            // test happens (long-lived tokens are refreshed by the 6-hourly test first).
            assert!(broker_refreshes > 0, "the scenario has broker refreshes");
        }
    }
}
