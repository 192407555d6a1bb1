//! The checker's schedule: a pure, clock-driven state machine per credential that decides
//! which check runs next and when.
//!
//! Inputs are the time, the cached access token's expiry and lifetime, the outcome of each
//! action, the failure count and the credential's config; the output is the next
//! [`Action`] and the instant it is due. Nothing here sleeps, reads a clock or does I/O: the
//! checker task (`checker.rs`) sleeps until [`Schedule::next`], takes the action from
//! [`Schedule::due`], runs it, and hands the outcome to [`Schedule::observe`]. Tests drive it
//! through simulated months with made-up instants.
//!
//! Rules:
//! - **refresh ahead of expiry** (`keep_fresh`) by `refresh_ahead`, clamped to half of the
//!   token's lifetime (see [`refresh_ahead`]), so 60-second tokens are not refreshed on
//!   every broker request;
//! - **the probe always has a usable access token**: a probe that falls due when the token
//!   will not be valid for [`PROBE_MARGIN`] more becomes a refresh first (for a rotating
//!   provider that is the refresh the agent would have needed anyway);
//! - a probe's `gone` is confirmed by one refresh test at once;
//! - transient failures back off exponentially, and while a credential is degraded
//!   refresh tests keep running on that backoff, so a revocation during an outage is still
//!   found;
//! - a dead credential is re-tested only at the refresh interval; a credential with no
//!   token waits for a re-authorization;
//! - **no busy loop by construction**: every instant [`Schedule::next`] returns is at least
//!   [`MIN_GAP`] after the previous action started (the one exception, a confirming refresh
//!   after `gone`, is one-shot), and `next` is a function of the state alone, so a wake
//!   that finds nothing due changes nothing and sleeps to the same instant.

use std::time::Duration;
use tokio::time::Instant;

/// The shortest time between two actions of one credential.
pub const MIN_GAP: Duration = Duration::from_secs(1);
/// A probe needs an access token valid for at least this long.
pub const PROBE_MARGIN: Duration = Duration::from_secs(5);
/// Relative jitter of refresh tests (±10 %): many credentials and daemons never hit a
/// provider in lockstep.
pub const REFRESH_JITTER: f64 = 0.10;
/// Relative jitter of probes (±5 %), smaller so the probe interval stays a promise.
pub const PROBE_JITTER: f64 = 0.05;
/// Time allowed for the confirming refresh test in the worst-case detection figure.
pub const CONFIRM_ALLOWANCE: Duration = Duration::from_secs(2);
/// First retry delay after a transient failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// Longest retry delay after transient failures.
pub const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);
/// Start-up checks of many credentials are spread over this window.
pub const START_SPREAD: Duration = Duration::from_secs(1);

/// The delay before retry number `failures` (1-based), capped by `cap` (and never below
/// [`BACKOFF_BASE`]).
pub fn backoff(failures: u32, cap: Duration) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    exp.min(BACKOFF_MAX).min(cap.max(BACKOFF_BASE))
}

/// How long before expiry an access token is refreshed: the configured margin, but at most
/// half of the token's lifetime (a 2-minute margin on 60-second tokens would refresh on
/// every request). Used by the schedule and by the broker, so both agree.
pub fn refresh_ahead(configured: Duration, lifetime: Option<Duration>) -> Duration {
    match lifetime {
        Some(l) => configured.min(l / 2),
        None => configured,
    }
}

/// The settings of one credential that shape its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// Probe interval, when a probe is in force.
    pub probe_interval: Option<Duration>,
    /// Interval of full refresh tests.
    pub refresh_interval: Duration,
    /// Configured refresh-ahead margin (clamped per token by [`refresh_ahead`]).
    pub refresh_ahead: Duration,
    /// Refresh ahead of expiry even when nobody asks.
    pub keep_fresh: bool,
}

/// The cached access token as the schedule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLife {
    /// When it stops working (`None`: it does not expire).
    pub expires_at: Option<Instant>,
    /// Its whole lifetime from issue, when known.
    pub lifetime: Option<Duration>,
}

impl TokenLife {
    /// A token that never expires (pasted secrets, GitHub OAuth App tokens).
    pub const NON_EXPIRING: TokenLife = TokenLife {
        expires_at: None,
        lifetime: None,
    };

    fn usable_at(&self, at: Instant) -> bool {
        match self.expires_at {
            None => true,
            Some(e) => e >= at + PROBE_MARGIN,
        }
    }
}

/// Why a refresh test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshReason {
    /// The first check after start.
    Start,
    /// The refresh interval passed.
    Interval,
    /// The access token is about to expire (`keep_fresh`).
    AheadOfExpiry,
    /// A probe is due but the access token will not be usable for it.
    TokenForProbe,
    /// Retry after a transient failure.
    Retry,
    /// A probe said `gone`: confirm before calling the credential dead.
    ConfirmGone,
}

impl RefreshReason {
    /// Stable name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshReason::Start => "start",
            RefreshReason::Interval => "interval",
            RefreshReason::AheadOfExpiry => "ahead_of_expiry",
            RefreshReason::TokenForProbe => "token_for_probe",
            RefreshReason::Retry => "retry",
            RefreshReason::ConfirmGone => "confirm_gone",
        }
    }
}

/// What the checker should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ask the provider whether the grant is alive (mints nothing).
    Probe,
    /// Spend the refresh token (or, for pasted secrets, verify them).
    Refresh(RefreshReason),
}

/// The next action and when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    /// The action.
    pub action: Action,
    /// When it is due.
    pub at: Instant,
}

/// What an action (or something outside the checker) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// A refresh (or verification) worked; the new token.
    Refreshed(TokenLife),
    /// The provider said the grant is gone.
    Dead,
    /// Network, 5xx, 429, a vault that could not store the result: try again later.
    Transient,
    /// No token is stored: nothing to check until a re-authorization.
    NoToken,
    /// The probe said the grant is alive.
    ProbeAlive,
    /// The probe said the token is gone (to be confirmed by a refresh test).
    ProbeGone,
    /// The probe could not tell (network, 5xx, 429).
    ProbeTransient,
    /// The probe cannot work here (the caller falls back to another probe, or to refresh
    /// tests, and says so with [`Schedule::set_probe`]).
    ProbeMisconfigured,
    /// The probe found no usable access token after all: refresh first.
    ProbeNoToken,
}

/// Where the credential stands, as far as scheduling is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not checked since start.
    Unchecked,
    /// The last check worked.
    Alive,
    /// Transient failures in a row.
    Degraded,
    /// The grant is gone.
    Dead,
    /// Nothing stored yet.
    NoToken,
}

/// The schedule of one credential.
#[derive(Debug, Clone)]
pub struct Schedule {
    cfg: ScheduleConfig,
    rng: u64,
    token: Option<TokenLife>,
    phase: Phase,
    failures: u32,
    /// The next interval, start or retry refresh test.
    next_refresh: Instant,
    next_refresh_reason: RefreshReason,
    next_probe: Option<Instant>,
    /// A one-shot refresh due at this instant (confirm a `gone`, get a token to probe with).
    urgent: Option<(Instant, RefreshReason)>,
    in_flight: Option<Action>,
    last_start: Option<Instant>,
}

impl Schedule {
    /// The schedule of a credential at daemon start (`now`), with its cached token if any.
    /// `seed` drives the jitter (random in the daemon, fixed in tests). The first check
    /// is a probe when a probe is in force and the token is usable (it mints nothing, so a
    /// restart never spends a rotating refresh token it does not need), else a refresh test.
    pub fn new(cfg: ScheduleConfig, now: Instant, token: Option<TokenLife>, seed: u64) -> Self {
        let mut s = Schedule {
            cfg,
            rng: seed | 1,
            token,
            phase: Phase::Unchecked,
            failures: 0,
            next_refresh: now,
            next_refresh_reason: RefreshReason::Start,
            next_probe: None,
            urgent: None,
            in_flight: None,
            last_start: None,
        };
        let spread = START_SPREAD.mul_f64(s.unit());
        let probe_first = cfg.probe_interval.is_some() && token.is_some_and(|t| t.usable_at(now));
        if probe_first {
            s.next_probe = Some(now + spread);
            s.next_refresh = now + s.jitter(cfg.refresh_interval, REFRESH_JITTER);
            s.next_refresh_reason = RefreshReason::Interval;
        } else {
            s.next_refresh = now + spread;
        }
        s
    }

    /// The config in force.
    pub fn config(&self) -> ScheduleConfig {
        self.cfg
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Consecutive transient failures.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The action in flight, if any.
    pub fn in_flight(&self) -> Option<Action> {
        self.in_flight
    }

    /// A uniform number in [0, 1) from a small deterministic generator (splitmix64).
    fn unit(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn jitter(&mut self, d: Duration, rel: f64) -> Duration {
        let f = 1.0 + rel * (2.0 * self.unit() - 1.0);
        d.mul_f64(f)
    }

    /// When the keep-fresh refresh of the cached token is due, if it applies now.
    fn fresh_at(&self) -> Option<Instant> {
        if !self.cfg.keep_fresh || !matches!(self.phase, Phase::Alive | Phase::Unchecked) {
            return None;
        }
        let t = self.token?;
        let exp = t.expires_at?;
        let ahead = refresh_ahead(self.cfg.refresh_ahead, t.lifetime);
        Some(exp.checked_sub(ahead).unwrap_or(exp))
    }

    /// The next action and when it is due; `None` while an action is in flight (its
    /// outcome decides what comes next).
    pub fn next(&self) -> Option<Next> {
        if self.in_flight.is_some() {
            return None;
        }
        if let Some((at, reason)) = self.urgent {
            return Some(Next {
                action: Action::Refresh(reason),
                at,
            });
        }
        let mut best = Next {
            action: Action::Refresh(self.next_refresh_reason),
            at: self.next_refresh,
        };
        if let Some(f) = self.fresh_at() {
            if f < best.at {
                best = Next {
                    action: Action::Refresh(RefreshReason::AheadOfExpiry),
                    at: f,
                };
            }
        }
        if let Some(p) = self.next_probe {
            if p < best.at {
                let usable = self.token.is_some_and(|t| t.usable_at(p));
                best = Next {
                    action: if usable {
                        Action::Probe
                    } else {
                        Action::Refresh(RefreshReason::TokenForProbe)
                    },
                    at: p,
                };
            }
        }
        // Never two actions closer than MIN_GAP: whatever the inputs, the checker cannot spin.
        if let Some(last) = self.last_start {
            best.at = best.at.max(last + MIN_GAP);
        }
        Some(best)
    }

    /// The action to run at `now`, if one is due; it is then in flight until
    /// [`observe`](Self::observe).
    pub fn due(&mut self, now: Instant) -> Option<Action> {
        let next = self.next()?;
        if next.at > now {
            return None;
        }
        self.in_flight = Some(next.action);
        self.last_start = Some(now);
        if self
            .urgent
            .is_some_and(|(_, r)| Action::Refresh(r) == next.action)
        {
            self.urgent = None;
        }
        Some(next.action)
    }

    /// Records what the action in flight (or something outside the checker: a broker
    /// refresh, a re-authorization, the agent's `rejected` report) found at `now`.
    pub fn observe(&mut self, now: Instant, outcome: Observation) {
        self.in_flight = None;
        let probe_every = self.cfg.probe_interval;
        match outcome {
            Observation::Refreshed(token) => {
                self.token = Some(token);
                self.phase = Phase::Alive;
                self.failures = 0;
                self.urgent = None;
                self.schedule_refresh(now, self.cfg.refresh_interval, RefreshReason::Interval);
                self.next_probe = probe_every.map(|p| now + self.jitter(p, PROBE_JITTER));
            }
            Observation::Dead => {
                self.phase = Phase::Dead;
                self.urgent = None;
                self.next_probe = None;
                self.schedule_refresh(now, self.cfg.refresh_interval, RefreshReason::Interval);
            }
            Observation::NoToken => {
                self.phase = Phase::NoToken;
                self.token = None;
                self.urgent = None;
                self.next_probe = None;
                self.schedule_refresh(now, self.cfg.refresh_interval, RefreshReason::Interval);
            }
            Observation::Transient => {
                self.urgent = None;
                self.fail(now);
                // A probe that needed this refresh (or is overdue) waits for the backoff
                // too, instead of asking for another refresh at once.
                if let Some(p) = probe_every.filter(|_| self.phase != Phase::Dead) {
                    let retry = now + self.jitter(backoff(self.failures, p), PROBE_JITTER);
                    self.next_probe = Some(self.next_probe.map_or(retry, |n| n.max(retry)));
                }
            }
            Observation::ProbeAlive => {
                if matches!(self.phase, Phase::Unchecked | Phase::Degraded) {
                    self.phase = Phase::Alive;
                }
                self.failures = 0;
                self.next_probe = probe_every.map(|p| now + self.jitter(p, PROBE_JITTER));
            }
            Observation::ProbeGone => {
                self.urgent = Some((now, RefreshReason::ConfirmGone));
            }
            Observation::ProbeTransient => {
                self.fail(now);
                if let Some(p) = probe_every {
                    let d = backoff(self.failures, p);
                    self.next_probe = Some(now + self.jitter(d, PROBE_JITTER));
                }
            }
            Observation::ProbeMisconfigured => {
                // The caller decides what replaces the probe (`set_probe`); until then,
                // refresh tests carry the detection.
                self.next_probe = None;
            }
            Observation::ProbeNoToken => {
                self.urgent = Some((now + MIN_GAP, RefreshReason::TokenForProbe));
            }
        }
    }

    /// A transient failure: degraded (a dead credential stays dead), and a refresh test on
    /// the backoff schedule, so a revocation during an outage is still found.
    fn fail(&mut self, now: Instant) {
        if self.phase == Phase::Dead {
            self.schedule_refresh(now, self.cfg.refresh_interval, RefreshReason::Interval);
            return;
        }
        self.failures = self.failures.saturating_add(1);
        self.phase = Phase::Degraded;
        let retry = now
            + self.jitter(
                backoff(self.failures, self.cfg.refresh_interval),
                REFRESH_JITTER,
            );
        if retry < self.next_refresh || self.next_refresh <= now {
            self.next_refresh = retry;
            self.next_refresh_reason = RefreshReason::Retry;
        }
    }

    fn schedule_refresh(&mut self, now: Instant, d: Duration, reason: RefreshReason) {
        self.next_refresh = now + self.jitter(d, REFRESH_JITTER);
        self.next_refresh_reason = reason;
    }

    /// The credential was verified outside the checker (re-authorization, pasted secret)
    /// or its token changed (a broker refresh): same as a refresh that worked.
    pub fn verified(&mut self, now: Instant, token: TokenLife) {
        let in_flight = self.in_flight;
        self.observe(now, Observation::Refreshed(token));
        self.in_flight = in_flight;
    }

    /// The cached token changed without a check (the broker refreshed it): the keep-fresh
    /// instant follows the new expiry; nothing else moves.
    pub fn token_changed(&mut self, token: Option<TokenLife>) {
        // The wall-to-monotonic conversion moves a little each time it is made: the same
        // token read again is not a change (and must not nudge `next` forward).
        let same = match (self.token, token) {
            (Some(a), Some(b)) => {
                a.lifetime == b.lifetime
                    && match (a.expires_at, b.expires_at) {
                        (Some(x), Some(y)) => {
                            x.max(y).duration_since(x.min(y)) < Duration::from_secs(1)
                        }
                        (x, y) => x == y,
                    }
            }
            (a, b) => a == b,
        };
        if !same {
            self.token = token;
        }
    }

    /// Something outside the checker finished a refresh at `now` (the broker, the agent's
    /// `rejected` report, a re-authorization, a pasted secret): the schedule follows it
    /// before it plans or takes its next action, so nothing is planned from a token that
    /// has since been replaced (a probe turned into a second refresh of a rotating token,
    /// seconds after the broker's). A transient failure outside teaches nothing: the
    /// checker's own backoff stands.
    pub fn follow(&mut self, now: Instant, outcome: Observation) {
        match outcome {
            Observation::Refreshed(token) => self.verified(now, token),
            Observation::Transient => {}
            other => {
                let in_flight = self.in_flight;
                self.observe(now, other);
                self.in_flight = in_flight;
            }
        }
    }

    /// Puts a probe in force (a fallback probe) or takes it away (refresh tests only).
    pub fn set_probe(&mut self, now: Instant, interval: Option<Duration>) {
        self.cfg.probe_interval = interval;
        self.next_probe = match interval {
            Some(p) if !matches!(self.phase, Phase::Dead | Phase::NoToken) => {
                Some(now + self.jitter(p, PROBE_JITTER))
            }
            _ => None,
        };
    }

    /// The longest time from a revocation to the check that sees it, for this config and a
    /// token of `lifetime`, plus one confirming refresh: the figure health shows.
    pub fn worst_case_detection(cfg: &ScheduleConfig, lifetime: Option<Duration>) -> Duration {
        let refresh_gap = cfg
            .refresh_interval
            .mul_f64(1.0 + REFRESH_JITTER)
            .max(MIN_GAP);
        let mut gap = refresh_gap;
        if cfg.keep_fresh {
            if let Some(l) = lifetime {
                // Refreshed every lifetime minus the (clamped) margin.
                let every = l.saturating_sub(refresh_ahead(cfg.refresh_ahead, Some(l)));
                gap = gap.min(every.max(MIN_GAP));
            }
        }
        if let Some(p) = cfg.probe_interval {
            gap = gap.min(p.mul_f64(1.0 + PROBE_JITTER).max(MIN_GAP));
        }
        gap + CONFIRM_ALLOWANCE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(probe: Option<u64>, keep_fresh: bool) -> ScheduleConfig {
        ScheduleConfig {
            probe_interval: probe.map(Duration::from_secs),
            refresh_interval: Duration::from_secs(6 * 3600),
            refresh_ahead: Duration::from_secs(120),
            keep_fresh,
        }
    }

    fn token(now: Instant, secs: u64) -> TokenLife {
        TokenLife {
            expires_at: Some(now + Duration::from_secs(secs)),
            lifetime: Some(Duration::from_secs(secs)),
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let cap = Duration::from_secs(3600);
        assert_eq!(backoff(1, cap), Duration::from_secs(5));
        assert_eq!(backoff(2, cap), Duration::from_secs(10));
        assert_eq!(backoff(4, cap), Duration::from_secs(40));
        assert_eq!(backoff(30, cap), BACKOFF_MAX);
        assert_eq!(
            backoff(30, Duration::from_secs(60)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn refresh_ahead_is_clamped_to_half_the_lifetime() {
        let two_min = Duration::from_secs(120);
        assert_eq!(
            refresh_ahead(two_min, Some(Duration::from_secs(60))),
            Duration::from_secs(30)
        );
        assert_eq!(
            refresh_ahead(two_min, Some(Duration::from_secs(3600))),
            two_min
        );
        assert_eq!(refresh_ahead(two_min, None), two_min);
    }

    #[test]
    fn keep_fresh_refreshes_ahead_of_expiry_and_then_moves_on() {
        // The old checker's bug: once inside the margin it never refreshed and spun.
        let t0 = Instant::now();
        let mut s = Schedule::new(cfg(None, true), t0, None, 7);
        let a = s.due(t0 + START_SPREAD).expect("start refresh due");
        assert_eq!(a, Action::Refresh(RefreshReason::Start));
        s.observe(t0 + START_SPREAD, Observation::Refreshed(token(t0, 60)));
        let n = s.next().unwrap();
        assert_eq!(n.action, Action::Refresh(RefreshReason::AheadOfExpiry));
        // 60-second token: the margin is clamped to 30 s.
        assert_eq!(n.at, t0 + Duration::from_secs(30));
        assert_eq!(s.due(n.at), Some(n.action));
        s.observe(n.at, Observation::Refreshed(token(n.at, 60)));
        assert!(s.next().unwrap().at > n.at);
    }

    #[test]
    fn an_expired_token_is_refreshed_before_the_probe() {
        let t0 = Instant::now();
        let mut s = Schedule::new(cfg(Some(15), false), t0, Some(token(t0, 10)), 1);
        let first = s.next().unwrap();
        assert_eq!(first.action, Action::Probe);
        s.due(first.at);
        s.observe(first.at, Observation::ProbeAlive);
        // The next probe falls after the token's end: a refresh comes first.
        let n = s.next().unwrap();
        assert_eq!(n.action, Action::Refresh(RefreshReason::TokenForProbe));
    }

    #[test]
    fn gone_is_confirmed_at_once_and_only_once() {
        let t0 = Instant::now();
        let mut s = Schedule::new(cfg(Some(15), true), t0, Some(token(t0, 3600)), 3);
        let n = s.next().unwrap();
        s.due(n.at);
        s.observe(n.at, Observation::ProbeGone);
        let c = s.next().unwrap();
        assert_eq!(c.action, Action::Refresh(RefreshReason::ConfirmGone));
        assert_eq!(s.due(c.at.max(n.at + MIN_GAP)), Some(c.action));
        s.observe(c.at, Observation::Dead);
        let after = s.next().unwrap();
        assert_eq!(after.action, Action::Refresh(RefreshReason::Interval));
        assert!(after.at > c.at + Duration::from_secs(5 * 3600));
    }

    #[test]
    fn outages_back_off_with_refresh_tests_running() {
        let t0 = Instant::now();
        let mut s = Schedule::new(cfg(Some(60), true), t0, Some(token(t0, 3600)), 5);
        let mut now = t0;
        let mut refreshes = 0;
        for _ in 0..20 {
            let n = s.next().unwrap();
            assert!(n.at >= now, "time never goes back");
            now = n.at;
            let a = s.due(now).unwrap();
            if matches!(a, Action::Refresh(_)) {
                refreshes += 1;
                s.observe(now, Observation::Transient);
            } else {
                s.observe(now, Observation::ProbeTransient);
            }
        }
        assert_eq!(s.phase(), Phase::Degraded);
        assert!(refreshes > 0, "refresh tests keep running while degraded");
    }

    #[test]
    fn a_wake_with_nothing_due_changes_nothing() {
        let t0 = Instant::now();
        let s0 = Schedule::new(cfg(Some(60), true), t0, Some(token(t0, 3600)), 9);
        let mut s = s0.clone();
        assert_eq!(s.due(t0), None);
        assert_eq!(s.next(), s0.next());
    }

    #[test]
    fn worst_case_detection_follows_the_fastest_check() {
        let with_probe = cfg(Some(15), true);
        let d = Schedule::worst_case_detection(&with_probe, Some(Duration::from_secs(3600)));
        assert_eq!(d, Duration::from_secs_f64(15.75) + CONFIRM_ALLOWANCE);
        let no_probe = cfg(None, false);
        let d = Schedule::worst_case_detection(&no_probe, None);
        assert!(d > Duration::from_secs(6 * 3600));
        // keep_fresh with 1-hour tokens: refreshed every 58 minutes, which is a check too.
        let fresh = cfg(None, true);
        let d = Schedule::worst_case_detection(&fresh, Some(Duration::from_secs(3600)));
        assert_eq!(d, Duration::from_secs(3480) + CONFIRM_ALLOWANCE);
    }
}
