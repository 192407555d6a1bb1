//! The notification policy and backoff, driven with paused tokio time.

use super::support::{cred, report, Clock};
use std::time::Duration;
use tether::companion::client::ContactClass;
use tether::companion::config::{QuietHours, TimeOfDay};
use tether::companion::notice::{Action, Notice, NoticeKind};
use tether::companion::policy::{
    AgentPolicy, ContactFailure, ContactState, Decision, Observation, PolicyConfig,
};
use tether::companion::watcher::Backoff;
use tether::protocol::CredentialState::{Dead, Degraded, Expiring, Ok as Fine};

const HOUR: Duration = Duration::from_secs(3600);

fn cfg(quiet: Option<(u32, u32)>) -> PolicyConfig {
    PolicyConfig {
        reminder: 4 * HOUR,
        unreachable_after: Duration::from_secs(300),
        quiet_hours: quiet.map(|(s, e)| QuietHours {
            start: TimeOfDay(chrono::NaiveTime::from_hms_opt(s, 0, 0).unwrap()),
            end: TimeOfDay(chrono::NaiveTime::from_hms_opt(e, 0, 0).unwrap()),
        }),
    }
}

fn notices(ds: &[Decision]) -> Vec<Notice> {
    ds.iter()
        .filter_map(|d| match d {
            Decision::Notify(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

fn kinds(ds: &[Decision]) -> Vec<NoticeKind> {
    notices(ds).iter().map(|n| n.kind).collect()
}

fn unreachable() -> Observation {
    Observation::Failed(ContactFailure {
        class: ContactClass::Unreachable,
        message: "connection refused".into(),
    })
}

#[tokio::test(start_paused = true)]
async fn transitions_to_dead_and_back_notify_once_each() {
    let clock = Clock::at(9, 0);
    let mut p = AgentPolicy::new("studio", cfg(None));

    let d = p.observe(
        clock.now(),
        Observation::Health(report(vec![cred("youtube", Fine, 0)])),
    );
    assert!(d.iter().any(|d| matches!(d, Decision::Transition { previous: None, credential } if credential.state == Fine)));
    assert!(kinds(&d).is_empty(), "an ok credential is not news: {d:?}");

    tokio::time::advance(Duration::from_secs(60)).await;
    let d = p.observe(
        clock.now(),
        Observation::Health(report(vec![cred("youtube", Dead, 3)])),
    );
    assert!(d.iter().any(|d| matches!(d, Decision::Transition { previous: Some(Fine), credential } if credential.state == Dead)));
    let n = notices(&d);
    assert_eq!(n.len(), 1, "{d:?}");
    assert_eq!(n[0].kind, NoticeKind::Dead);
    assert!(
        n[0].summary
            .starts_with("studio · youtube: token has been expired or revoked"),
        "{}",
        n[0].summary
    );
    assert!(
        n[0].body.contains("3 requests refused since"),
        "{}",
        n[0].body
    );
    assert_eq!(
        n[0].action,
        Some(Action::Reauth {
            agent: "studio".into(),
            credential: "youtube".into()
        })
    );

    // The same death seen through the event stream is not a second notification.
    let d = p.observe(clock.now(), Observation::Changed(cred("youtube", Dead, 4)));
    assert!(kinds(&d).is_empty(), "{d:?}");
    assert!(d.iter().any(|d| matches!(d, Decision::Updated { .. })));

    // A transient blip while dead changes nothing for the owner.
    let d = p.observe(
        clock.now(),
        Observation::Changed(cred("youtube", Degraded, 4)),
    );
    assert!(kinds(&d).is_empty(), "{d:?}");

    let d = p.observe(clock.now(), Observation::Changed(cred("youtube", Fine, 0)));
    assert_eq!(kinds(&d), vec![NoticeKind::Recovered]);
    assert_eq!(notices(&d)[0].summary, "studio · youtube: working again");
    assert!(notices(&d)[0].action.is_none());
}

#[tokio::test(start_paused = true)]
async fn first_sight_of_a_dead_credential_notifies() {
    let clock = Clock::at(9, 0);
    let mut p = AgentPolicy::new("studio", cfg(None));
    let d = p.observe(
        clock.now(),
        Observation::Health(report(vec![cred("youtube", Dead, 0), cred("x", Fine, 0)])),
    );
    assert_eq!(kinds(&d), vec![NoticeKind::Dead]);
    assert!(
        notices(&d)[0].body.starts_with("dead since"),
        "{}",
        notices(&d)[0].body
    );
}

#[tokio::test(start_paused = true)]
async fn a_thousand_polls_of_an_unchanged_death_give_one_notice_plus_reminders() {
    let clock = Clock::at(9, 0);
    let mut p = AgentPolicy::new("studio", cfg(None));
    let mut all = Vec::new();
    for i in 0..1000u64 {
        // The blocked count grows every poll: details change, the state does not.
        all.extend(p.observe(
            clock.now(),
            Observation::Health(report(vec![cred("youtube", Dead, i)])),
        ));
        tokio::time::advance(Duration::from_secs(60)).await;
        all.extend(p.tick(clock.now()));
    }
    let k = kinds(&all);
    // 1000 minutes = 16 h 40 min: the death, then reminders at 4, 8, 12 and 16 hours.
    assert_eq!(
        k,
        vec![
            NoticeKind::Dead,
            NoticeKind::StillDead,
            NoticeKind::StillDead,
            NoticeKind::StillDead,
            NoticeKind::StillDead
        ]
    );
    let reminder = &notices(&all)[1];
    assert!(
        reminder.summary.contains("still dead"),
        "{}",
        reminder.summary
    );
    assert!(reminder.action.is_some());
}

#[tokio::test(start_paused = true)]
async fn reminders_follow_the_configured_interval_and_stop_on_recovery() {
    let clock = Clock::at(9, 0);
    let mut p = AgentPolicy::new(
        "studio",
        PolicyConfig {
            reminder: HOUR,
            ..cfg(None)
        },
    );
    p.observe(
        clock.now(),
        Observation::Health(report(vec![cred("youtube", Dead, 0)])),
    );
    assert_eq!(p.next_deadline(), Some(tokio::time::Instant::now() + HOUR));
    tokio::time::advance(HOUR - Duration::from_secs(1)).await;
    assert!(kinds(&p.tick(clock.now())).is_empty());
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(kinds(&p.tick(clock.now())), vec![NoticeKind::StillDead]);
    p.observe(clock.now(), Observation::Changed(cred("youtube", Fine, 0)));
    tokio::time::advance(3 * HOUR).await;
    assert!(kinds(&p.tick(clock.now())).is_empty());
    assert_eq!(p.next_deadline(), None);
}

#[tokio::test(start_paused = true)]
async fn unreachable_is_announced_after_five_minutes_once_and_recovery_after() {
    let clock = Clock::at(9, 0);
    let mut p = AgentPolicy::new("studio", cfg(None));
    p.observe(
        clock.now(),
        Observation::Health(report(vec![cred("youtube", Fine, 0)])),
    );
    let mut all = Vec::new();
    // Failed polls every 20 s for 4 min 59 s: contact "failing", but no notification yet.
    let d = p.observe(clock.now(), unreachable());
    assert!(d
        .iter()
        .any(|d| matches!(d, Decision::Contact(ContactState::Failing { .. }))));
    for _ in 0..14 {
        tokio::time::advance(Duration::from_secs(20)).await;
        all.extend(p.observe(clock.now(), unreachable()));
    }
    tokio::time::advance(Duration::from_secs(19)).await;
    all.extend(p.tick(clock.now()));
    assert!(kinds(&all).is_empty(), "{all:?}");
    tokio::time::advance(Duration::from_secs(1)).await;
    let d = p.tick(clock.now());
    assert_eq!(kinds(&d), vec![NoticeKind::Unreachable]);
    assert!(d
        .iter()
        .any(|d| matches!(d, Decision::Contact(ContactState::Unreachable { .. }))));
    let n = &notices(&d)[0];
    assert_eq!(n.summary, "studio: agent unreachable since 09:00");
    assert!(n.body.contains("connection refused"), "{}", n.body);
    // An hour more of failures: still the one notification.
    let mut later = Vec::new();
    for _ in 0..60 {
        tokio::time::advance(Duration::from_secs(60)).await;
        later.extend(p.observe(clock.now(), unreachable()));
    }
    assert!(kinds(&later).is_empty(), "{later:?}");
    let d = p.observe(
        clock.now(),
        Observation::Health(report(vec![cred("youtube", Fine, 0)])),
    );
    assert_eq!(kinds(&d), vec![NoticeKind::Reachable]);
    assert!(
        notices(&d)[0].body.contains("since 09:00"),
        "{}",
        notices(&d)[0].body
    );
    assert!(d
        .iter()
        .any(|d| matches!(d, Decision::Contact(ContactState::Connected))));
}

#[tokio::test(start_paused = true)]
async fn a_short_outage_is_not_news() {
    let clock = Clock::at(9, 0);
    let mut p = AgentPolicy::new("studio", cfg(None));
    p.observe(clock.now(), Observation::Health(report(vec![])));
    let mut all = p.observe(clock.now(), unreachable());
    tokio::time::advance(Duration::from_secs(240)).await;
    all.extend(p.observe(clock.now(), unreachable()));
    all.extend(p.observe(clock.now(), Observation::Alive));
    tokio::time::advance(Duration::from_secs(600)).await;
    all.extend(p.tick(clock.now()));
    assert!(kinds(&all).is_empty(), "{all:?}");
}

#[tokio::test(start_paused = true)]
async fn quiet_hours_hold_everything_but_dead() {
    // 23:00, quiet from 22:00 to 07:00.
    let clock = Clock::at(23, 0);
    let mut p = AgentPolicy::new("studio", cfg(Some((22, 7))));
    let d = p.observe(
        clock.now(),
        Observation::Health(report(vec![
            cred("tiktok", Expiring, 0),
            cred("youtube", Fine, 0),
        ])),
    );
    assert!(
        kinds(&d).is_empty(),
        "expiring waits for the morning: {d:?}"
    );
    // Dead is shown at once, quiet or not.
    tokio::time::advance(HOUR).await;
    let d = p.observe(clock.now(), Observation::Changed(cred("youtube", Dead, 1)));
    assert_eq!(kinds(&d), vec![NoticeKind::Dead]);
    // An outage in the night is held too.
    p.observe(clock.now(), unreachable());
    tokio::time::advance(Duration::from_secs(301)).await;
    let d = p.tick(clock.now());
    assert!(kinds(&d).is_empty(), "{d:?}");
    // Reminders for dead still come in quiet hours (00:00 + 4 h = 04:00).
    tokio::time::advance(4 * HOUR).await;
    assert_eq!(kinds(&p.tick(clock.now())), vec![NoticeKind::StillDead]);
    // 07:00: the held notices arrive, once.
    let until_seven = Duration::from_secs(8 * 3600) - Duration::from_secs(5 * 3600 + 301);
    tokio::time::advance(until_seven - Duration::from_secs(1)).await;
    assert!(kinds(&p.tick(clock.now())).is_empty());
    tokio::time::advance(Duration::from_secs(1)).await;
    let mut k = kinds(&p.tick(clock.now()));
    k.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(k, vec![NoticeKind::Expiring, NoticeKind::Unreachable]);
    assert!(kinds(&p.tick(clock.now())).is_empty());
}

#[tokio::test(start_paused = true)]
async fn notices_held_by_quiet_hours_are_dropped_when_no_longer_true() {
    let clock = Clock::at(23, 0);
    let mut p = AgentPolicy::new("studio", cfg(Some((22, 7))));
    p.observe(
        clock.now(),
        Observation::Health(report(vec![cred("tiktok", Expiring, 0)])),
    );
    p.observe(clock.now(), unreachable());
    tokio::time::advance(Duration::from_secs(400)).await;
    p.tick(clock.now());
    // Both resolved before morning: the owner hears nothing, not even a "recovered".
    let mut all = p.observe(
        clock.now(),
        Observation::Health(report(vec![cred("tiktok", Fine, 0)])),
    );
    tokio::time::advance(9 * HOUR).await;
    all.extend(p.tick(clock.now()));
    assert!(kinds(&all).is_empty(), "{all:?}");
}

#[tokio::test(start_paused = true)]
async fn wall_clock_jumps_do_not_move_reminders() {
    let mut clock = Clock::at(9, 0);
    let mut p = AgentPolicy::new("studio", cfg(None));
    p.observe(
        clock.now(),
        Observation::Health(report(vec![cred("youtube", Dead, 0)])),
    );
    // Someone sets the clock back three hours, then forward a day.
    clock.wall_shift = chrono::Duration::hours(-3);
    tokio::time::advance(2 * HOUR).await;
    assert!(kinds(&p.tick(clock.now())).is_empty());
    clock.wall_shift = chrono::Duration::hours(24);
    tokio::time::advance(HOUR).await;
    assert!(
        kinds(&p.tick(clock.now())).is_empty(),
        "a forward jump is not four hours of waiting"
    );
    tokio::time::advance(HOUR).await;
    assert_eq!(kinds(&p.tick(clock.now())), vec![NoticeKind::StillDead]);
}

#[tokio::test(start_paused = true)]
async fn a_refused_device_token_is_announced_at_once_and_once() {
    let clock = Clock::at(9, 0);
    let mut p = AgentPolicy::new("studio", cfg(None));
    let refused = || {
        Observation::Failed(ContactFailure {
            class: ContactClass::Unauthorized,
            message: "agent studio no longer accepts this computer".into(),
        })
    };
    let d = p.observe(clock.now(), refused());
    assert_eq!(kinds(&d), vec![NoticeKind::DeviceRevoked]);
    assert!(d
        .iter()
        .any(|d| matches!(d, Decision::Contact(ContactState::Unauthorized { .. }))));
    let mut later = Vec::new();
    for _ in 0..100 {
        tokio::time::advance(Duration::from_secs(60)).await;
        later.extend(p.observe(clock.now(), refused()));
    }
    assert!(kinds(&later).is_empty(), "{later:?}");
}

#[tokio::test(start_paused = true)]
async fn expiring_then_dead_then_expiring_again() {
    let clock = Clock::at(9, 0);
    let mut p = AgentPolicy::new("studio", cfg(None));
    let d = p.observe(
        clock.now(),
        Observation::Health(report(vec![cred("tiktok", Expiring, 0)])),
    );
    assert_eq!(kinds(&d), vec![NoticeKind::Expiring]);
    let d = p.observe(clock.now(), Observation::Changed(cred("tiktok", Dead, 0)));
    assert_eq!(kinds(&d), vec![NoticeKind::Dead]);
    // Re-authorized into a token with a known end: the news is the recovery.
    let d = p.observe(
        clock.now(),
        Observation::Changed(cred("tiktok", Expiring, 0)),
    );
    assert_eq!(kinds(&d), vec![NoticeKind::Recovered]);
}

#[tokio::test(start_paused = true)]
async fn removed_credentials_are_reported() {
    let clock = Clock::at(9, 0);
    let mut p = AgentPolicy::new("studio", cfg(None));
    p.observe(
        clock.now(),
        Observation::Health(report(vec![cred("a", Fine, 0), cred("b", Fine, 0)])),
    );
    let d = p.observe(
        clock.now(),
        Observation::Health(report(vec![cred("a", Fine, 0)])),
    );
    assert!(d
        .iter()
        .any(|d| matches!(d, Decision::Removed { credential } if credential == "b")));
    assert_eq!(p.credentials().count(), 1);
}

#[test]
fn backoff_doubles_up_to_the_cap_and_resets() {
    let base = Duration::from_secs(5);
    let cap = Duration::from_secs(300);
    let mut b = Backoff::new(base, cap);
    let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
    let nominal = [5u64, 10, 20, 40, 80, 160, 300, 300, 300, 300];
    for (d, n) in delays.iter().zip(nominal) {
        let n = Duration::from_secs(n);
        assert!(
            *d <= n && *d >= n.mul_f64(0.8),
            "{d:?} not within jitter of {n:?}"
        );
    }
    b.reset();
    assert!(b.next_delay() <= base);
    for _ in 0..100 {
        let j = b.jitter(Duration::from_secs(60));
        assert!(
            j >= Duration::from_secs(54) && j <= Duration::from_secs(66),
            "{j:?}"
        );
    }
}

fn vault(failing: &[&str], repairs: u64) -> tether::protocol::VaultHealth {
    tether::protocol::VaultHealth {
        state: if failing.is_empty() { Fine } else { Degraded },
        since: chrono::Utc::now(),
        locations_ok: 3 - failing.len() as u32,
        locations_total: 3,
        failing: failing
            .iter()
            .map(|n| tether::protocol::LocationHealth {
                name: n.to_string(),
                ok: false,
                error: Some(format!("no space left on the device holding {n}")),
                code: Some("no_space".into()),
            })
            .collect(),
        repairs,
        last_repair: (repairs > 0).then(|| "repaired credential youtube in backup 1 /b".into()),
    }
}

fn with_vault(v: tether::protocol::VaultHealth) -> Observation {
    let mut r = report(vec![cred("youtube", Fine, 0)]);
    r.vault = Some(v);
    Observation::Health(r)
}

#[tokio::test(start_paused = true)]
async fn vault_trouble_notifies_once_per_change_and_once_on_recovery() {
    let clock = Clock::at(9, 0);
    let mut p = AgentPolicy::new("studio", cfg(Some((8, 10))));
    assert!(kinds(&p.observe(clock.now(), with_vault(vault(&[], 0)))).is_empty());

    // Even in quiet hours: a credential may be one disk away from being lost.
    let d = p.observe(
        clock.now(),
        with_vault(vault(&["backup 1 /var/backups/tether"], 0)),
    );
    let n = notices(&d);
    assert_eq!(n.len(), 1, "{d:?}");
    assert_eq!(
        n[0].line(),
        "studio: backup 1 /var/backups/tether is full — the credential is stored in 2 of 3 places"
    );
    assert!(d
        .iter()
        .any(|d| matches!(d, Decision::Vault(v) if v.state == Degraded)));
    // The same trouble, poll after poll and over the stream: nothing new.
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(60)).await;
        let d = p.observe(
            clock.now(),
            with_vault(vault(&["backup 1 /var/backups/tether"], 0)),
        );
        assert!(kinds(&d).is_empty(), "{d:?}");
    }
    // A second location fails: that is news.
    let d = p.observe(
        clock.now(),
        Observation::Vault(vault(&["backup 1 /var/backups/tether", "primary /p"], 0)),
    );
    assert_eq!(kinds(&d), vec![NoticeKind::VaultTrouble]);
    // Recovery, then a repair: one notice each.
    let d = p.observe(clock.now(), with_vault(vault(&[], 0)));
    assert_eq!(kinds(&d), vec![NoticeKind::VaultRecovered]);
    let d = p.observe(clock.now(), with_vault(vault(&[], 1)));
    assert_eq!(kinds(&d), vec![NoticeKind::VaultRepaired]);
    assert!(notices(&d)[0].body.contains("repaired credential youtube"));
    assert!(kinds(&p.observe(clock.now(), with_vault(vault(&[], 1)))).is_empty());
}
