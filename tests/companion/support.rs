//! Helpers for the companion tests: credential fixtures, a policy clock, session-bus checks.

use chrono::{DateTime, Local, TimeZone, Utc};
use tether::companion::policy::Now;
use tether::protocol::{
    CredentialHealth, CredentialState, ErrorInfo, HealthReport, ReauthKind, PROTOCOL_VERSION,
};
use tokio::time::Instant;

/// A credential in `state`.
pub fn cred(name: &str, state: CredentialState, blocked: u64) -> CredentialHealth {
    let since = Utc.with_ymd_and_hms(2026, 6, 3, 7, 2, 0).unwrap();
    CredentialHealth {
        last_error: (state == CredentialState::Dead).then(|| ErrorInfo {
            code: "invalid_grant".into(),
            description: "Token has been expired or revoked.".into(),
        }),
        blocked_requests: blocked,
        generation: 1,
        ..CredentialHealth::new(name, "google", state, since, ReauthKind::Oauth)
    }
}

/// Runs `tether pair CODE` for a companion at `config` that keeps its device token in the
/// fallback file, and asserts it worked; returns its stdout.
pub fn pair_file(config: &std::path::Path, code: &str) -> String {
    let out = tether(config, &[("TETHER_SECRETS", "file")])
        .args(["pair", code])
        .output()
        .expect("run tether pair");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "pair: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A health report of agent `studio` with `creds`.
pub fn report(creds: Vec<CredentialHealth>) -> HealthReport {
    HealthReport {
        agent: "studio".into(),
        version: "0.1.0".into(),
        protocol: PROTOCOL_VERSION,
        credentials: creds,
        locations: vec![],
        alerts: vec![],
        repaired: vec![],
        vault: None,
        on_change: vec![],
    }
}

/// Maps paused tokio time onto a local wall clock starting at a chosen time of day.
pub struct Clock {
    start: Instant,
    wall0: DateTime<Local>,
    /// Added to the wall clock only (simulates the system clock being set).
    pub wall_shift: chrono::Duration,
}

impl Clock {
    /// A clock whose wall time is `hour:minute` on 3 June 2026 now.
    pub fn at(hour: u32, minute: u32) -> Clock {
        Clock {
            start: Instant::now(),
            wall0: Local.with_ymd_and_hms(2026, 6, 3, hour, minute, 0).unwrap(),
            wall_shift: chrono::Duration::zero(),
        }
    }

    /// The moment for the policy.
    pub fn now(&self) -> Now {
        let at = Instant::now();
        let elapsed = chrono::Duration::from_std(at - self.start).unwrap();
        Now {
            at,
            wall: self.wall0 + elapsed + self.wall_shift,
        }
    }
}

/// True when a D-Bus session bus is configured in this process's environment.
pub fn session_bus() -> bool {
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty())
}

/// True when `program` runs (`program --version` or similar exits at all).
pub fn have(program: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A child process whose stdout and stderr are collected by reader threads.
pub struct Proc {
    child: std::process::Child,
    out: std::sync::Arc<std::sync::Mutex<String>>,
    err: std::sync::Arc<std::sync::Mutex<String>>,
    what: String,
}

impl Proc {
    /// Spawns `cmd` with piped output (stdin closed).
    pub fn spawn(mut cmd: std::process::Command, what: &str) -> Proc {
        use std::io::Read;
        use std::process::Stdio;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let collect = |mut r: Box<dyn Read + Send>| {
            let buf = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let b = buf.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = r.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    b.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            });
            buf
        };
        let out = collect(Box::new(child.stdout.take().expect("piped stdout")));
        let err = collect(Box::new(child.stderr.take().expect("piped stderr")));
        Proc {
            child,
            out,
            err,
            what: what.into(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Everything printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// Waits until stdout (or stderr with `on_stderr`) has a line for which `pred` holds;
    /// returns that line.
    pub async fn wait_line(
        &self,
        on_stderr: bool,
        timeout: std::time::Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let text = if on_stderr {
                self.stderr()
            } else {
                self.stdout()
            };
            if let Some(l) = text.lines().find(|l| pred(l)) {
                return l.to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}: no matching line within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.what,
                self.stdout(),
                self.stderr()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit (up to `timeout`) and returns its exit code.
    pub async fn wait_exit(&mut self, timeout: std::time::Duration) -> i32 {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s.code().unwrap_or(-1);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} did not exit within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.what,
                self.stdout(),
                self.stderr()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tether` with a clean environment: only PATH, HOME, the config dir and `extra`.
pub fn tether(config_dir: &std::path::Path, extra: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(crate::util::tether_bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", config_dir)
        .env("TETHER_CONFIG_DIR", config_dir)
        .env("TETHER_LOG", "warn");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd
}

/// A real agent daemon (`tether agent serve`) in a temp dir, with `body` appended to its
/// config (credential blocks).
pub struct Daemon {
    /// The temp dir (state, backups, agent.toml).
    pub dir: tempfile::TempDir,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The serving process (held: dropping it stops the daemon).
    #[allow(dead_code)]
    pub proc: Proc,
}

impl Daemon {
    /// Starts `tether agent serve` and waits until it listens.
    pub async fn start(body: &str) -> Daemon {
        Self::start_in(tempfile::tempdir().expect("temp dir"), body, None).await
    }

    /// Like [`start`](Self::start), in `dir` (prepared by the caller: seeded vault, a
    /// mount), and with the daemon's file-descriptor limit set to `nofile` (`prlimit`).
    pub async fn start_in(dir: tempfile::TempDir, body: &str, nofile: Option<u64>) -> Daemon {
        let cfg = format!(
            "name = \"studio\"\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\nbackup_dirs = [\"{}\"]\n{body}",
            dir.path().join("state").display(),
            dir.path().join("backup").display()
        );
        std::fs::write(dir.path().join("agent.toml"), cfg).expect("write agent.toml");
        let mut cmd = tether(dir.path(), &[]);
        if let Some(n) = nofile {
            // The same clean environment, under prlimit.
            let mut wrapped = std::process::Command::new("prlimit");
            wrapped
                .env_clear()
                .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
                .arg(format!("--nofile={n}:{n}"))
                .arg(crate::util::tether_bin());
            cmd = wrapped;
        }
        cmd.args(["agent", "serve", "--config"])
            .arg(dir.path().join("agent.toml"));
        let proc = Proc::spawn(cmd, "tether agent serve");
        let line = proc
            .wait_line(true, std::time::Duration::from_secs(30), |l| {
                l.contains("listening on https://")
            })
            .await;
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("https://"))
            .expect("listening line has the url")
            .to_string();
        Daemon { dir, url, proc }
    }

    /// A fresh pairing code from `tether agent pair`, pointed at the real port (the config
    /// listens on port 0, so the code's own URL cannot know it).
    pub fn pairing_code(&self) -> String {
        let out = tether(self.dir.path(), &[])
            .args(["agent", "pair", "--no-qr", "--config"])
            .arg(self.dir.path().join("agent.toml"))
            .output()
            .expect("run tether agent pair");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "tether agent pair failed: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let link = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(tether::protocol::PAIR_LINK_PREFIX))
            .expect("pairing link line");
        let mut code = tether::protocol::PairingCode::parse(link).expect("daemon's code parses");
        code.url = self.url.clone();
        code.to_link()
    }

    /// Runs `tether agent ARGS --config agent.toml` to completion; returns stdout.
    pub fn agent_cmd(&self, args: &[&str]) -> String {
        let out = tether(self.dir.path(), &[])
            .arg("agent")
            .args(args)
            .arg("--config")
            .arg(self.dir.path().join("agent.toml"))
            .output()
            .expect("run tether agent");
        assert!(
            out.status.success(),
            "tether agent {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The credential block for a credential at the oidc-provider fixture (the daemon tests').
pub use crate::agent::harness::oidc_credential;

/// True when `name` is owned on the session bus (a running service, not an activatable one).
pub fn bus_name_owned(name: &str) -> bool {
    std::process::Command::new("gdbus")
        .args([
            "call",
            "--session",
            "--dest",
            "org.freedesktop.DBus",
            "--object-path",
            "/org/freedesktop/DBus",
            "--method",
            "org.freedesktop.DBus.NameHasOwner",
            name,
        ])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("true"))
}

/// The next watcher event that matches `pred`, skipping others; fails the test naming
/// `what` when none comes `within`.
pub async fn next_matching(
    watcher: &mut tether::companion::watcher::Watcher,
    within: std::time::Duration,
    what: &str,
    pred: impl Fn(&tether::companion::watcher::WatchEvent) -> bool,
) -> tether::companion::watcher::WatchEvent {
    let deadline = tokio::time::Instant::now() + within;
    let mut skipped = Vec::new();
    loop {
        let ev = tokio::time::timeout_at(deadline, watcher.next_event())
            .await
            .unwrap_or_else(|_| {
                panic!("no {what} within {within:?}; events seen meanwhile: {skipped:#?}")
            })
            .expect("the watcher is running");
        if pred(&ev) {
            return ev;
        }
        skipped.push(format!("{ev:?}"));
    }
}

/// One event a test waits for: what it is (for the failure message) and how to know it.
pub type Wanted<'a> = (
    &'a str,
    &'a dyn Fn(&tether::companion::watcher::WatchEvent) -> bool,
);

/// Waits until each of `wanted` has matched an event, in any order: some events race
/// (the re-authorization finishing and the recovery notice the event stream triggers may
/// come either way round). Fails the test naming what is missing when `within` passes.
pub async fn wait_all(
    watcher: &mut tether::companion::watcher::Watcher,
    within: std::time::Duration,
    wanted: &[Wanted<'_>],
) {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = vec![false; wanted.len()];
    let mut skipped = Vec::new();
    while seen.iter().any(|s| !s) {
        let ev = tokio::time::timeout_at(deadline, watcher.next_event())
            .await
            .unwrap_or_else(|_| {
                let missing: Vec<&str> = wanted
                    .iter()
                    .zip(&seen)
                    .filter(|(_, s)| !**s)
                    .map(|((what, _), _)| *what)
                    .collect();
                panic!("no {missing:?} within {within:?}; events seen meanwhile: {skipped:#?}")
            })
            .expect("the watcher is running");
        let mut matched = false;
        for ((_, pred), s) in wanted.iter().zip(seen.iter_mut()) {
            if !*s && pred(&ev) {
                *s = true;
                matched = true;
            }
        }
        if !matched {
            skipped.push(format!("{ev:?}"));
        }
    }
}

/// What a `tether reauth studio/youtube --no-browser` run ended with.
pub struct CliReauth {
    /// Its exit code.
    pub code: i32,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
    /// The browser tab's HTTP status and page (the loopback listener's answer).
    pub tab: (u16, String),
}

/// Runs `tether reauth studio/youtube --no-browser` (plus `extra`) and plays the browser:
/// opens the printed URL, signs in (as `login`, when given) and consents, then follows
/// the provider back to the loopback listener.
pub async fn cli_reauth(
    config: &std::path::Path,
    oidc: &crate::util::oidc::OidcProvider,
    login: Option<&str>,
    extra: &[&str],
) -> CliReauth {
    use std::time::Duration;
    use tether::companion::reauth::OPEN_URL_PREFIX;
    let mut cmd = tether(config, &[("TETHER_SECRETS", "file")]);
    cmd.args([
        "reauth",
        "studio/youtube",
        "--no-browser",
        "--timeout",
        "60",
    ])
    .args(extra);
    let mut reauth = Proc::spawn(cmd, "tether reauth");
    let line = reauth
        .wait_line(false, Duration::from_secs(30), |l| {
            l.starts_with(OPEN_URL_PREFIX)
        })
        .await;
    let mut url = url::Url::parse(line.trim_start_matches(OPEN_URL_PREFIX).trim())
        .expect("the printed URL parses");
    if let Some(login) = login {
        url.query_pairs_mut()
            .append_pair("login_hint", login)
            .append_pair("prompt", "login");
    }
    let callback = oidc.consent(&url).await;
    assert_eq!(
        callback.host_str(),
        Some("127.0.0.1"),
        "the provider sends the browser back to loopback"
    );
    let tab = crate::util::oidc::browser_get(&callback).await;
    let code = reauth.wait_exit(Duration::from_secs(30)).await;
    CliReauth {
        code,
        stdout: reauth.stdout(),
        stderr: reauth.stderr(),
        tab,
    }
}
