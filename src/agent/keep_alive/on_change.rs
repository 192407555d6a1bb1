//! Telling the agent its token changed: the credential's `on_change` hook (a program, a
//! systemd reload or a signal), run after the new generation is durable in every vault
//! location and the output files are rendered (the change is announced by the commit,
//! `Credential::set_generation`, or by a state change, `Credential::apply`, never
//! before). A burst of changes runs it once ([`OnChange::debounce`]). A hook that fails or
//! hangs is a warning in health (`on_change` in the report), a log line and an alert at
//! most hourly; it never holds a token back: it runs in its own task, after the fact.

use crate::agent::alerts::{Alert, AlertKind};
use crate::agent::config::on_change::{HookAction, OnChange};
use crate::agent::credential::runtime::Credential;
use crate::agent::daemon::Daemon;
use crate::agent::metrics;
use crate::protocol::{CredentialHealth, HookHealth};
use chrono::Utc;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The owner hears about a failing hook at most this often (per credential).
pub const HOOK_ALERT_EVERY: Duration = Duration::from_secs(3600);

/// The hook of `cred` (its own, else the agent's), if any.
pub fn hook_of(d: &Daemon, cred: &Credential) -> Option<OnChange> {
    cred.config
        .on_change
        .clone()
        .or_else(|| d.config().on_change.clone())
}

/// Runs `cred`'s hook after each burst of changes, until shutdown.
pub async fn run(d: Arc<Daemon>, cred: Arc<Credential>) {
    let Some(hook) = hook_of(&d, &cred) else {
        return;
    };
    // Checked when the config was read; a reload that makes it invalid is refused.
    let Ok(action) = hook.action(&format!("credential {}", cred.name)) else {
        return;
    };
    let shutdown = d.shutdown_signal();
    tokio::pin!(shutdown);
    let mut last_alert: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = cred.changed.notified() => {}
        }
        // The burst ends after `debounce` without another change.
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = cred.changed.notified() => continue,
                _ = tokio::time::sleep(hook.debounce) => break,
            }
        }
        let health = cred.health();
        let outputs: Vec<String> = cred
            .config
            .outputs
            .iter()
            .map(|o| o.path.display().to_string())
            .collect();
        let started = Instant::now();
        let result = run_once(&action, d.agent(), &health, &outputs, hook.timeout).await;
        let took = started.elapsed();
        let ok = result.is_ok();
        let words = match &result {
            Ok(w) => format!("{w} in {} ms", took.as_millis()),
            Err(w) => w.clone(),
        };
        d.metrics.inc(
            metrics::HOOK_RUNS,
            &[
                ("credential", &cred.name),
                ("result", if ok { "ok" } else { "failed" }),
            ],
        );
        if ok {
            tracing::info!(
                "credential {}: on_change ran for generation {} ({words})",
                cred.name,
                health.generation
            );
        } else {
            tracing::warn!(
                "credential {}: on_change failed for generation {}: {words}; the new token is stored and rendered, but the agent may not have picked it up",
                cred.name,
                health.generation
            );
        }
        cred.set_hook_result(HookHealth {
            credential: cred.name.clone(),
            at: Utc::now(),
            generation: health.generation,
            state: health.state,
            ok,
            result: words.clone(),
        });
        if !ok && last_alert.is_none_or(|t| t.elapsed() >= HOOK_ALERT_EVERY) {
            last_alert = Some(Instant::now());
            let mut alert = Alert::vault(d.agent(), AlertKind::HookFailed, words, None, Utc::now());
            alert.credential = cred.name.clone();
            d.send_alert(alert);
        }
    }
}

/// `{name}`, `{state}` and `{generation}` in `arg` replaced.
pub fn fill(arg: &str, h: &CredentialHealth) -> String {
    arg.replace("{name}", &h.name)
        .replace("{state}", h.state.as_str())
        .replace("{generation}", &h.generation.to_string())
}

/// Runs the hook once: `Ok` with what happened, `Err` with why it failed and the fix.
async fn run_once(
    action: &HookAction,
    agent: &str,
    h: &CredentialHealth,
    outputs: &[String],
    timeout: Duration,
) -> Result<String, String> {
    match action {
        HookAction::Exec(argv) => exec(argv, agent, h, outputs, timeout).await,
        HookAction::SignalPidFile { pid_file, signal } => signal_pid_file(pid_file, signal),
    }
}

async fn exec(
    argv: &[String],
    agent: &str,
    h: &CredentialHealth,
    outputs: &[String],
    timeout: Duration,
) -> Result<String, String> {
    let argv: Vec<String> = argv.iter().map(|a| fill(a, h)).collect();
    let program = &argv[0];
    let mut cmd = tokio::process::Command::new(program);
    // A clean environment: the daemon's own (which may hold a client secret or a vault
    // token) is not the hook's business. PATH and HOME keep ordinary programs working.
    cmd.args(&argv[1..])
        .env_clear()
        .envs(
            ["PATH", "HOME", "LANG"]
                .iter()
                .filter_map(|k| std::env::var_os(k).map(|v| (k.to_string(), v))),
        )
        .env("TETHER_AGENT", agent)
        .env("TETHER_CREDENTIAL", &h.name)
        .env("TETHER_STATE", h.state.as_str())
        .env("TETHER_GENERATION", h.generation.to_string())
        .env("TETHER_OUTPUTS", outputs.join(":"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| {
        format!("cannot start {program}: {e}; check the path in on_change.exec and that the daemon's user may run it")
    })?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(format!(
            "{program} did not finish within {} s and was killed; make it return quickly (start long work in the background) or raise on_change.timeout",
            timeout.as_secs_f64()
        )),
        Ok(Err(e)) => Err(format!("cannot wait for {program}: {e}")),
        Ok(Ok(out)) if out.status.success() => Ok(format!("{program} exited 0")),
        Ok(Ok(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            // The end of what it printed says why; the start is often a banner.
            let chars: Vec<char> = stderr.trim().chars().collect();
            let tail: String = chars[chars.len().saturating_sub(300)..].iter().collect();
            let tail = crate::text::clean_text(&tail, 300);
            Err(format!(
                "{program} {}{}",
                match out.status.code() {
                    Some(c) => format!("exited {c}"),
                    None => "was killed by a signal".into(),
                },
                if tail.is_empty() { String::new() } else { format!(": {tail}") }
            ))
        }
    }
}

fn signal_pid_file(pid_file: &std::path::Path, signal: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(pid_file).map_err(|e| {
        format!(
            "cannot read the pid file {}: {e}; check that the agent writes it and that the daemon's user may read it",
            pid_file.display()
        )
    })?;
    let pid: i32 = text.trim().parse().ok().filter(|p| *p > 1).ok_or_else(|| {
        format!(
            "{} holds no process id ({:?})",
            pid_file.display(),
            text.trim()
        )
    })?;
    let sig = match signal {
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        _ => libc::SIGHUP,
    };
    // SAFETY: kill(2) with a positive pid and a valid signal number touches no memory.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        Ok(format!("SIG{signal} sent to process {pid}"))
    } else {
        let e = std::io::Error::last_os_error();
        Err(format!(
            "cannot send SIG{signal} to process {pid} (from {}): {e}; is the agent running, and as a user the daemon may signal?",
            pid_file.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health() -> CredentialHealth {
        CredentialHealth {
            generation: 7,
            ..CredentialHealth::new(
                "youtube",
                "google",
                crate::protocol::CredentialState::Ok,
                Utc::now(),
                crate::protocol::ReauthKind::Oauth,
            )
        }
    }

    #[test]
    fn placeholders_are_replaced_in_each_argument() {
        assert_eq!(
            fill("--credential={name}@{generation}:{state}", &health()),
            "--credential=youtube@7:ok"
        );
    }

    #[tokio::test]
    async fn a_hook_gets_its_environment_and_not_the_daemons() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env");
        let argv = vec!["sh".into(), "-c".into(), format!("env > {}", out.display())];
        std::env::set_var("TETHER_TEST_SECRET_IN_DAEMON_ENV", "s3cret");
        let r = exec(
            &argv,
            "studio",
            &health(),
            &["/a".into(), "/b".into()],
            Duration::from_secs(10),
        )
        .await;
        assert!(r.is_ok(), "{r:?}");
        let env = std::fs::read_to_string(&out).unwrap();
        for want in [
            "TETHER_AGENT=studio",
            "TETHER_CREDENTIAL=youtube",
            "TETHER_STATE=ok",
            "TETHER_GENERATION=7",
            "TETHER_OUTPUTS=/a:/b",
        ] {
            assert!(env.lines().any(|l| l == want), "{want} in {env}");
        }
        assert!(
            !env.contains("s3cret"),
            "the daemon's environment stays out: {env}"
        );
    }

    #[tokio::test]
    async fn failures_and_hangs_say_what_and_how_to_fix() {
        let failing = vec![
            "sh".into(),
            "-c".into(),
            "echo broken config >&2; exit 3".into(),
        ];
        let e = exec(&failing, "studio", &health(), &[], Duration::from_secs(10))
            .await
            .unwrap_err();
        assert_eq!(e, "sh exited 3: broken config");
        let hung = vec!["sleep".into(), "30".into()];
        let started = Instant::now();
        let e = exec(&hung, "studio", &health(), &[], Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(
            e.contains("did not finish within 0.3 s and was killed"),
            "{e}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the hung hook was not waited for"
        );
        let missing = vec!["/nonexistent/agent-reload".into()];
        let e = exec(&missing, "studio", &health(), &[], Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            e.starts_with("cannot start /nonexistent/agent-reload"),
            "{e}"
        );
    }

    #[test]
    fn a_pid_file_without_a_process_id_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent.pid");
        std::fs::write(&p, "not a pid\n").unwrap();
        let e = signal_pid_file(&p, "HUP").unwrap_err();
        assert!(e.contains("holds no process id"), "{e}");
        let e = signal_pid_file(&dir.path().join("none.pid"), "HUP").unwrap_err();
        assert!(e.contains("cannot read the pid file"), "{e}");
    }
}
