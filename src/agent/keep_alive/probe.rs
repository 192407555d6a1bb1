//! Checks and probes: one full check (a refresh test), one liveness probe, and the refresh
//! test that confirms a probe's `gone` (a probe that cries wolf is replaced).

use crate::agent::credential::runtime::Credential;
use crate::agent::credential::status_change::{GONE_CONFIRMED, GONE_CONFIRMING};
use crate::agent::daemon::Daemon;
use crate::agent::error::CheckError;
use crate::agent::metrics;
use crate::oauth::{self, ErrorClass, OAuthError, ProbeOutcome};
use crate::protocol::CredentialState;
use chrono::Utc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Daemon {
    /// One full check: a refresh test (or, for paste kinds, a verification), then the
    /// output check.
    pub async fn refresh_test(self: &Arc<Self>, cred: &Arc<Credential>) -> Result<(), CheckError> {
        let r = self.refresh(cred, false).await;
        let result = match &r {
            Ok(_) => "ok",
            Err(e) if e.is_dead() => "dead",
            Err(CheckError::Provider(e)) => e.class.as_str(),
            Err(_) => "error",
        };
        self.metrics.inc(
            metrics::CHECKS,
            &[
                ("credential", &cred.name),
                ("kind", "refresh"),
                ("result", result),
            ],
        );
        self.check_outputs().await;
        r.map(|_| ())
    }

    /// One liveness probe. `Gone` is only recorded here: the schedule confirms it with one
    /// refresh test ([`Daemon::confirm_gone`]) before anything is called dead. A probe that
    /// cannot work here (`Misconfigured`) is replaced by the preset's next probe, or by
    /// refresh tests, and health says so. Returns `None` when there is no usable access
    /// token to probe with (the schedule then refreshes first).
    pub async fn probe(self: &Arc<Self>, cred: &Arc<Credential>) -> Option<ProbeOutcome> {
        let provider = cred.provider();
        if provider.probe.is_none() {
            return Some(ProbeOutcome::Unsupported);
        }
        let token = cred.cached_token()?;
        if !token.fresh_for(crate::agent::credential::schedule::PROBE_MARGIN, Utc::now()) {
            return None;
        }
        let outcome = oauth::probe(&self.http, &provider, &cred.client, &token.access_token).await;
        self.metrics.inc(
            metrics::CHECKS,
            &[
                ("credential", &cred.name),
                ("kind", "probe"),
                ("result", outcome.as_str()),
            ],
        );
        let detail = match &outcome {
            ProbeOutcome::Gone(i) | ProbeOutcome::Transient(i) | ProbeOutcome::Misconfigured(i) => {
                Some(i.to_string())
            }
            _ => None,
        };
        let set_probe = |result: &str| cred.set_last_probe(result, detail.clone());
        match &outcome {
            ProbeOutcome::Alive => {
                set_probe("alive");
                cred.probe_alive();
                let state = cred.status().state;
                if matches!(
                    state,
                    CredentialState::Degraded | CredentialState::Unchecked
                ) {
                    self.apply_result(cred, Ok(None));
                } else {
                    cred.checked_now();
                }
            }
            ProbeOutcome::Gone(_) => set_probe(GONE_CONFIRMING),
            ProbeOutcome::Transient(i) => {
                set_probe("transient");
                let e = CheckError::Provider(OAuthError {
                    provider: provider.name.clone(),
                    class: ErrorClass::TRANSIENT,
                    info: i.clone(),
                });
                self.apply_result(cred, Err(&e));
            }
            ProbeOutcome::Misconfigured(i) => {
                set_probe("misconfigured");
                let note = cred.fall_back_probe(&i.to_string());
                tracing::warn!("credential {}: {note}", cred.name);
                // The probe's trouble says nothing about the grant: the state stays what
                // the last check found.
            }
            ProbeOutcome::Unsupported => {}
        }
        // Without the file watch, every probe also looks for wiped or corrupt output files
        // (a read and a compare per file); with it, that would only cost idle CPU.
        if !self.outputs_watched.load(Ordering::Relaxed) {
            self.check_outputs().await;
        }
        Some(outcome)
    }

    /// The refresh test that confirms (or not) a probe's `gone`. A `gone` that refresh
    /// tests contradict twice in a row, each time with a fresh token, means the probe
    /// cannot tell here: it is replaced as a misconfigured one would be. Returns whether the
    /// probe was replaced.
    pub async fn confirm_gone(
        self: &Arc<Self>,
        cred: &Arc<Credential>,
    ) -> (Result<(), CheckError>, bool) {
        let confirmed = self.refresh_test(cred).await;
        let detail = cred.status().last_probe.and_then(|p| p.detail);
        let mut replaced = false;
        match &confirmed {
            Err(e) if e.is_dead() => {
                cred.set_last_probe(GONE_CONFIRMED, detail);
            }
            Ok(()) => {
                cred.set_last_probe("gone (not confirmed: the refresh test worked)", detail);
                if cred.gone_contradicted(2) {
                    let note = cred.fall_back_probe(
                        "it said `gone` twice for grants that refresh tests showed alive",
                    );
                    tracing::warn!("credential {}: {note}", cred.name);
                    replaced = true;
                }
            }
            Err(_) => cred.set_last_probe("gone (refresh test inconclusive)", detail),
        }
        (confirmed, replaced)
    }
}
