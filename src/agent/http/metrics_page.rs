//! The `/metrics` page: the daemon's counters ([`crate::agent::metrics`]) plus gauges of
//! the current state, in Prometheus' text format.

use crate::agent::daemon::Daemon;
use crate::agent::metrics::{labels, render_gauge};
use crate::protocol::CredentialState;

/// The `/metrics` text: counters plus gauges of the current state.
pub fn render(d: &Daemon) -> String {
    let mut out = String::new();
    let states = [
        CredentialState::Unchecked,
        CredentialState::Ok,
        CredentialState::Expiring,
        CredentialState::Degraded,
        CredentialState::Dead,
    ];
    let mut state_samples = Vec::new();
    let mut blocked = Vec::new();
    for c in d.credentials.snapshot().values() {
        let s = c.status();
        for st in states {
            state_samples.push((
                labels(&[("credential", &c.name), ("state", st.as_str())]),
                f64::from(u8::from(s.state == st)),
            ));
        }
        blocked.push((labels(&[("credential", &c.name)]), s.blocked as f64));
    }
    render_gauge(
        &mut out,
        "tether_credential_state",
        "1 for the state each credential is in.",
        &state_samples,
    );
    render_gauge(
        &mut out,
        "tether_blocked_requests",
        "Access-token requests refused since the credential died.",
        &blocked,
    );
    let channels = d.alerter().map(|a| a.health()).unwrap_or_default();
    let sent: Vec<_> = channels
        .iter()
        .map(|c| {
            (
                labels(&[("channel", &c.name), ("kind", &c.kind)]),
                c.sent as f64,
            )
        })
        .collect();
    let failed: Vec<_> = channels
        .iter()
        .map(|c| {
            (
                labels(&[("channel", &c.name), ("kind", &c.kind)]),
                c.failed as f64,
            )
        })
        .collect();
    render_gauge(
        &mut out,
        "tether_alerts_sent",
        "Alerts delivered, by channel.",
        &sent,
    );
    render_gauge(
        &mut out,
        "tether_alerts_failed",
        "Alerts that failed after all retries, by channel.",
        &failed,
    );
    d.metrics.render_counters(&mut out);
    out
}
