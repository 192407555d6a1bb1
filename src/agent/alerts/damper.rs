//! Flap damping for credential alerts: a pure, clock-driven rule per credential that
//! decides whether a death or a recovery goes out now, is replaced by one "flapping"
//! alert, or is held until the credential is steady.
//!
//! Why: anyone who can make a credential change state (an agent looping a challenge post
//! and its resolve, a provider that answers yes and no in turn) could otherwise send the
//! owner two urgent alerts per loop on every channel, drown the real death in noise and
//! get the Telegram bot or the SMTP account throttled. Rules:
//! - a death or recovery goes out at once, unless the credential has changed state
//!   [`FLAP_CHANGES`] times within [`FLAP_WINDOW`]: then one [`Verdict::Flapping`] alert
//!   says so, and later changes are held;
//! - while held, a death with a cause not seen during the flapping (a provider's
//!   `invalid_grant` among the agent's `human_needed` posts) goes out at once, once per
//!   cause: a real death is never lost in the noise;
//! - once no change has come for [`SETTLE`], [`Damper::settled`] hands back the last held
//!   alert (the recovery, or the death that stands) so the owner hears how it ended.
//!
//! Other alert kinds (reminders, expiry warnings, vault alerts) pass untouched: they have
//! their own cadences.

use super::text::AlertKind;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// Changes of state within this window count towards flapping.
pub const FLAP_WINDOW: Duration = Duration::from_secs(120);
/// This many deaths and recoveries within [`FLAP_WINDOW`] make a credential flapping
/// (died, recovered, died again: the third is no longer news).
pub const FLAP_CHANGES: usize = 3;
/// A flapping credential is steady again after this long without a change.
pub const SETTLE: Duration = Duration::from_secs(60);

/// What to do with one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send it as it is.
    Send,
    /// Send one "flapping" alert instead (with this many changes in the window).
    Flapping {
        /// Changes of state counted in [`FLAP_WINDOW`].
        changes: usize,
    },
    /// Hold it: the owner was told the credential flaps, and hears how it ended.
    Hold,
}

/// A held alert, handed back when its credential settles.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled<T> {
    /// The credential.
    pub credential: String,
    /// The last alert held while it flapped.
    pub alert: T,
}

#[derive(Debug)]
struct Flaps<T> {
    changes: VecDeque<Instant>,
    flapping: bool,
    /// Causes (error codes) seen while flapping, and those already sent despite it.
    causes: HashSet<String>,
    held: Option<T>,
    last_change: Option<Instant>,
    /// The kind of the last death or recovery judged: another alert of the same kind (a
    /// new device code while dead) is news, not a change of state.
    last_kind: Option<AlertKind>,
}

impl<T> Default for Flaps<T> {
    fn default() -> Self {
        Flaps {
            changes: VecDeque::new(),
            flapping: false,
            causes: HashSet::new(),
            held: None,
            last_change: None,
            last_kind: None,
        }
    }
}

/// The damping state of every credential; `T` is the alert kept while held.
#[derive(Debug)]
pub struct Damper<T> {
    per: HashMap<String, Flaps<T>>,
}

impl<T> Default for Damper<T> {
    fn default() -> Self {
        Damper {
            per: HashMap::new(),
        }
    }
}

impl<T: Clone> Damper<T> {
    /// The verdict on an alert of `kind` for `credential`, caused by error `cause` (empty
    /// for a recovery), at `now`. `alert` is kept if held.
    pub fn judge(
        &mut self,
        now: Instant,
        credential: &str,
        kind: AlertKind,
        cause: &str,
        alert: &T,
    ) -> Verdict {
        if !matches!(kind, AlertKind::Dead | AlertKind::Recovered) {
            return Verdict::Send;
        }
        let f = self.per.entry(credential.to_string()).or_default();
        // Another alert of the same kind (a new device code while dead) is news, not a
        // change of state: it does not count towards flapping.
        let change = f.last_kind != Some(kind);
        f.last_kind = Some(kind);
        if change {
            while f
                .changes
                .front()
                .is_some_and(|t| now.duration_since(*t) > FLAP_WINDOW)
            {
                f.changes.pop_front();
            }
            f.changes.push_back(now);
            f.last_change = Some(now);
        }
        if f.flapping {
            if kind == AlertKind::Dead && !cause.is_empty() && f.causes.insert(cause.to_string()) {
                // A death for a reason the flapping never showed: news.
                f.held = None;
                return Verdict::Send;
            }
            f.held = Some(alert.clone());
            return Verdict::Hold;
        }
        if !change {
            return Verdict::Send;
        }
        if f.changes.len() >= FLAP_CHANGES {
            f.flapping = true;
            f.causes.clear();
            if !cause.is_empty() {
                f.causes.insert(cause.to_string());
            }
            f.held = None;
            return Verdict::Flapping {
                changes: f.changes.len(),
            };
        }
        Verdict::Send
    }

    /// Credentials that flapped and have been steady for [`SETTLE`] at `now`: each is
    /// steady again, and its last held alert (if any) is handed back to be sent.
    pub fn settled(&mut self, now: Instant) -> Vec<Settled<T>> {
        let mut out = Vec::new();
        for (name, f) in self.per.iter_mut() {
            let steady = f
                .last_change
                .is_some_and(|t| now.duration_since(t) >= SETTLE);
            if f.flapping && steady {
                f.flapping = false;
                f.changes.clear();
                f.causes.clear();
                if let Some(alert) = f.held.take() {
                    out.push(Settled {
                        credential: name.clone(),
                        alert,
                    });
                }
            }
        }
        self.per.retain(|_, f| {
            f.flapping
                || f.last_change
                    .is_some_and(|t| now.duration_since(t) <= FLAP_WINDOW)
        });
        out
    }

    /// True while `credential`'s alerts are held.
    pub fn is_flapping(&self, credential: &str) -> bool {
        self.per.get(credential).is_some_and(|f| f.flapping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_single_death_and_its_recovery_both_go_out() {
        let mut d: Damper<&str> = Damper::default();
        let t = Instant::now();
        assert_eq!(
            d.judge(t, "yt", AlertKind::Dead, "invalid_grant", &"dead"),
            Verdict::Send
        );
        assert_eq!(
            d.judge(t + secs(30), "yt", AlertKind::Recovered, "", &"ok"),
            Verdict::Send
        );
        // A death a day later is news again.
        let later = t + secs(24 * 3600);
        assert!(d.settled(later).is_empty());
        assert_eq!(
            d.judge(later, "yt", AlertKind::Dead, "invalid_grant", &"dead"),
            Verdict::Send
        );
    }

    #[test]
    fn ten_flaps_in_a_minute_send_one_flapping_alert_and_then_how_it_ended() {
        let mut d: Damper<String> = Damper::default();
        let t = Instant::now();
        let mut sent = Vec::new();
        for i in 0..20u64 {
            let (kind, cause) = if i % 2 == 0 {
                (AlertKind::Dead, "human_needed")
            } else {
                (AlertKind::Recovered, "")
            };
            let v = d.judge(t + secs(3 * i), "yt", kind, cause, &format!("{kind:?}{i}"));
            if v != Verdict::Hold {
                sent.push(v);
            }
        }
        assert_eq!(
            sent,
            vec![
                Verdict::Send,
                Verdict::Send,
                Verdict::Flapping { changes: 3 }
            ]
        );
        assert!(d.is_flapping("yt"));
        // Not yet steady.
        assert!(d.settled(t + secs(57 + 30)).is_empty());
        let end = d.settled(t + secs(57 + SETTLE.as_secs()));
        assert_eq!(end.len(), 1);
        assert_eq!(end[0].alert, "Recovered19");
        assert!(!d.is_flapping("yt"));
    }

    #[test]
    fn a_real_death_during_flapping_goes_out_at_once_and_once() {
        let mut d: Damper<&str> = Damper::default();
        let t = Instant::now();
        for i in 0..3u64 {
            let kind = if i % 2 == 0 {
                AlertKind::Dead
            } else {
                AlertKind::Recovered
            };
            d.judge(
                t + secs(i),
                "yt",
                kind,
                if i % 2 == 0 { "human_needed" } else { "" },
                &"x",
            );
        }
        assert!(d.is_flapping("yt"));
        assert_eq!(
            d.judge(t + secs(4), "yt", AlertKind::Dead, "invalid_grant", &"real"),
            Verdict::Send
        );
        assert_eq!(
            d.judge(t + secs(6), "yt", AlertKind::Dead, "invalid_grant", &"real"),
            Verdict::Hold
        );
        // Other credentials are not affected.
        assert_eq!(
            d.judge(t + secs(6), "gh", AlertKind::Dead, "invalid_grant", &"gh"),
            Verdict::Send
        );
    }

    #[test]
    fn dead_again_with_news_is_not_a_flap() {
        // A device code that expired and was replaced, twice: three dead alerts in a row,
        // each with a new code, all sent.
        let mut d: Damper<&str> = Damper::default();
        let t = Instant::now();
        assert_eq!(
            d.judge(t, "gh", AlertKind::Dead, "invalid_grant", &"a"),
            Verdict::Send
        );
        assert_eq!(
            d.judge(t + secs(1), "gh", AlertKind::Dead, "human_needed", &"b"),
            Verdict::Send
        );
        assert_eq!(
            d.judge(t + secs(20), "gh", AlertKind::Dead, "human_needed", &"c"),
            Verdict::Send
        );
        assert!(!d.is_flapping("gh"));
    }

    #[test]
    fn reminders_and_expiry_warnings_pass() {
        let mut d: Damper<&str> = Damper::default();
        let t = Instant::now();
        for i in 0..10 {
            assert_eq!(
                d.judge(t + secs(i), "yt", AlertKind::Reminder, "", &"r"),
                Verdict::Send
            );
        }
    }
}
