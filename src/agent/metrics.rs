//! Prometheus counters of the daemon (`GET /metrics`, text exposition format 0.0.4).
//!
//! Counters are kept in one small map keyed by metric name and label set; the daemon has a
//! handful of credentials and routes, so a mutex-protected map is cheaper to reason about
//! than a metrics framework. Gauges that mirror current state (credential states, blocked
//! counts, alert channels) are rendered from the daemon's state at scrape time.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;

// Counter names, each spelt once (call sites and tests use these).
/// `tether_checks_total`.
pub const CHECKS: &str = "tether_checks_total";
/// `tether_refreshes_total`.
pub const REFRESHES: &str = "tether_refreshes_total";
/// `tether_access_token_requests_total`.
pub const ACCESS_TOKEN_REQUESTS: &str = "tether_access_token_requests_total";
/// `tether_http_requests_total`.
pub const HTTP_REQUESTS: &str = "tether_http_requests_total";
/// `tether_state_changes_total`.
pub const STATE_CHANGES: &str = "tether_state_changes_total";
/// `tether_checker_wakeups_total`.
pub const CHECKER_WAKEUPS: &str = "tether_checker_wakeups_total";
/// `tether_rejected_reports_total`.
pub const REJECTED_REPORTS: &str = "tether_rejected_reports_total";
/// `tether_alerts_flapping_total`.
pub const ALERTS_FLAPPING: &str = "tether_alerts_flapping_total";
/// `tether_challenges_total`.
pub const CHALLENGES: &str = "tether_challenges_total";
/// `tether_challenges_refused_total`.
pub const CHALLENGES_REFUSED: &str = "tether_challenges_refused_total";

/// `tether_hook_runs_total`.
pub const HOOK_RUNS: &str = "tether_hook_runs_total";

/// Counter names and their help texts.
pub const COUNTERS: &[(&str, &str)] = &[
    (
        HOOK_RUNS,
        "Runs of a credential's on_change hook, by credential and result.",
    ),
    (
        CHECKS,
        "Checks run, by credential, kind (probe or refresh) and result.",
    ),
    (
        REFRESHES,
        "Calls to a provider's token endpoint to refresh, by credential and result.",
    ),
    (
        ACCESS_TOKEN_REQUESTS,
        "Access-token requests, by credential and outcome.",
    ),
    (HTTP_REQUESTS, "HTTP requests, by route and status code."),
    (
        STATE_CHANGES,
        "Credential state changes, by credential and new state.",
    ),
    (
        CHECKER_WAKEUPS,
        "Times a credential's checker woke up (each runs a check or follows an outside change).",
    ),
    (
        REJECTED_REPORTS,
        "Reports from the agent that the API refused an access token, by credential.",
    ),
    (
        CHALLENGES,
        "Challenges posted (a human is needed), by credential, kind and origin.",
    ),
    (
        CHALLENGES_REFUSED,
        "Challenge posts, replacements and resolves refused, by credential and reason.",
    ),
    (
        ALERTS_FLAPPING,
        "Times a credential was found flapping and its further alerts held until steady.",
    ),
];

/// The daemon's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders a label set `{a="x",b="y"}`.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

impl Metrics {
    /// Adds one to `name` with `pairs` as labels.
    pub fn inc(&self, name: &'static str, pairs: &[(&str, &str)]) {
        debug_assert!(
            COUNTERS.iter().any(|(n, _)| *n == name),
            "counter {name} is not in COUNTERS, so it would never be rendered"
        );
        let key = (name, labels(pairs));
        // Invariant: the map is only touched by these short, non-panicking sections.
        *self.counters.lock().entry(key).or_insert(0) += 1;
    }

    /// The current value of a counter (tests and benchmarks read it).
    pub fn get(&self, name: &'static str, pairs: &[(&str, &str)]) -> u64 {
        let key = (name, labels(pairs));
        self.counters.lock().get(&key).copied().unwrap_or(0)
    }

    /// Appends every counter, with HELP and TYPE lines, to `out`.
    pub fn render_counters(&self, out: &mut String) {
        let map = self.counters.lock();
        for (name, help) in COUNTERS {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((n, l), v) in map.iter() {
                if n == name {
                    let _ = writeln!(out, "{n}{l} {v}");
                }
            }
        }
    }
}

/// Appends a gauge with its HELP and TYPE lines.
pub fn render_gauge(out: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (l, v) in samples {
        let _ = writeln!(out, "{name}{l} {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_exposition_format() {
        let m = Metrics::default();
        m.inc(
            "tether_checks_total",
            &[("credential", "yt"), ("kind", "probe"), ("result", "alive")],
        );
        m.inc(
            "tether_checks_total",
            &[("credential", "yt"), ("kind", "probe"), ("result", "alive")],
        );
        let mut out = String::new();
        m.render_counters(&mut out);
        assert!(out.contains("# TYPE tether_checks_total counter"));
        assert!(out
            .contains("tether_checks_total{credential=\"yt\",kind=\"probe\",result=\"alive\"} 2"));
        assert_eq!(labels(&[("a", "x\"y")]), "{a=\"x\\\"y\"}");
    }
}
