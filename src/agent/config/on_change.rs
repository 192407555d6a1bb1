//! `on_change`: what the daemon runs after a credential's token or state changed, so an
//! agent that read its token file at startup picks up the new one without a restart.
//! One of three ways, per credential or as the default of every credential:
//!
//! ```toml
//! on_change = { exec = ["/usr/local/bin/agent-reload", "--credential", "{name}"] }
//! on_change = { systemd_reload = "uploader.service" }
//! on_change = { signal = { pid_file = "/run/uploader.pid", name = "HUP" } }
//! ```
//!
//! `exec` is an argv (no shell); `{name}`, `{state}` and `{generation}` in it are
//! replaced. `signal` names a process by `pid_file` or a systemd `unit`.

use super::defaults::de_duration;
use super::error::ConfigError;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// How long a hook may run before it is killed and reported as hung.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(30);
/// A burst of changes within this quiet time runs the hook once.
pub const DEFAULT_HOOK_DEBOUNCE: Duration = Duration::from_secs(2);

/// The signals a hook may send: the ones agents use to reload.
const SIGNALS: [&str; 3] = ["HUP", "USR1", "USR2"];

/// One `on_change` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnChange {
    /// A program and its arguments, run without a shell.
    #[serde(default)]
    pub exec: Option<Vec<String>>,
    /// A systemd unit to reload (`systemctl reload UNIT`).
    #[serde(default)]
    pub systemd_reload: Option<String>,
    /// A signal to send.
    #[serde(default)]
    pub signal: Option<SignalTarget>,
    /// How long the hook may run.
    #[serde(default = "default_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// Quiet time that ends a burst of changes.
    #[serde(default = "default_debounce", deserialize_with = "de_duration")]
    pub debounce: Duration,
}

/// Where a signal goes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalTarget {
    /// A file holding the process id (read at each change: the agent may have restarted).
    #[serde(default)]
    pub pid_file: Option<PathBuf>,
    /// A systemd unit (`systemctl kill --signal=NAME UNIT`).
    #[serde(default)]
    pub unit: Option<String>,
    /// The signal: HUP (default), USR1 or USR2.
    #[serde(default = "default_signal")]
    pub name: String,
}

/// What a hook does, once the config is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookAction {
    /// Run this argv (placeholders not yet replaced).
    Exec(Vec<String>),
    /// Send `signal` to the process whose id is in `pid_file`.
    SignalPidFile {
        /// The file.
        pid_file: PathBuf,
        /// HUP, USR1 or USR2.
        signal: String,
    },
}

fn default_timeout() -> Duration {
    DEFAULT_HOOK_TIMEOUT
}
fn default_debounce() -> Duration {
    DEFAULT_HOOK_DEBOUNCE
}
fn default_signal() -> String {
    "HUP".into()
}

impl OnChange {
    /// The one action this table asks for; `owner` names where it is in agent.toml
    /// ("credential youtube", "the agent") for the error.
    pub fn action(&self, owner: &str) -> Result<HookAction, ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(format!("{owner}: on_change {m}")));
        let given = [
            self.exec.is_some(),
            self.systemd_reload.is_some(),
            self.signal.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            return bad(
                "needs exactly one of exec = [...], systemd_reload = \"UNIT\" or signal = { pid_file = \"...\" }"
                    .into(),
            );
        }
        if self.timeout < Duration::from_millis(100) || self.timeout > Duration::from_secs(600) {
            return bad(format!(
                "timeout = {:?} is out of range; use 100ms to 10m",
                self.timeout
            ));
        }
        if self.debounce > Duration::from_secs(60) {
            return bad(format!(
                "debounce = {:?} is too long; a new token should reach the agent within a minute",
                self.debounce
            ));
        }
        if let Some(argv) = &self.exec {
            if argv.first().is_none_or(|p| p.trim().is_empty()) {
                return bad("exec is empty; give the program and its arguments, e.g. exec = [\"/usr/local/bin/agent-reload\", \"{name}\"]".into());
            }
            return Ok(HookAction::Exec(argv.clone()));
        }
        if let Some(unit) = &self.systemd_reload {
            if !valid_unit(unit) {
                return bad(format!(
                    "systemd_reload = {unit:?} is not a unit name such as \"uploader.service\""
                ));
            }
            return Ok(HookAction::Exec(vec![
                "systemctl".into(),
                "reload".into(),
                unit.clone(),
            ]));
        }
        let Some(s) = &self.signal else {
            unreachable!("exactly one of the three is set")
        };
        if !SIGNALS.contains(&s.name.as_str()) {
            return bad(format!(
                "signal name = {:?} is not one of HUP, USR1, USR2",
                s.name
            ));
        }
        match (&s.pid_file, &s.unit) {
            (Some(pid_file), None) => Ok(HookAction::SignalPidFile {
                pid_file: pid_file.clone(),
                signal: s.name.clone(),
            }),
            (None, Some(unit)) if valid_unit(unit) => Ok(HookAction::Exec(vec![
                "systemctl".into(),
                "kill".into(),
                format!("--signal={}", s.name),
                unit.clone(),
            ])),
            (None, Some(unit)) => bad(format!(
                "signal unit = {unit:?} is not a unit name such as \"uploader.service\""
            )),
            _ => bad("signal needs exactly one of pid_file or unit".into()),
        }
    }
}

/// A systemd unit name: no path, no option, no space.
fn valid_unit(unit: &str) -> bool {
    !unit.is_empty()
        && !unit.starts_with('-')
        && unit
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._-:\\".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> OnChange {
        toml::from_str(text).expect("parses")
    }

    #[test]
    fn each_way_becomes_one_action() {
        let exec = parse(r#"exec = ["/usr/local/bin/agent-reload", "{name}"]"#);
        assert_eq!(
            exec.action("x").unwrap(),
            HookAction::Exec(vec!["/usr/local/bin/agent-reload".into(), "{name}".into()])
        );
        assert_eq!(exec.timeout, DEFAULT_HOOK_TIMEOUT);
        let reload = parse(r#"systemd_reload = "uploader.service""#);
        assert_eq!(
            reload.action("x").unwrap(),
            HookAction::Exec(vec![
                "systemctl".into(),
                "reload".into(),
                "uploader.service".into()
            ])
        );
        let sig = parse(r#"signal = { pid_file = "/run/up.pid" }"#);
        assert_eq!(
            sig.action("x").unwrap(),
            HookAction::SignalPidFile {
                pid_file: "/run/up.pid".into(),
                signal: "HUP".into()
            }
        );
        let unit = parse(r#"signal = { unit = "up.service", name = "USR1" }"#);
        assert_eq!(
            unit.action("x").unwrap(),
            HookAction::Exec(vec![
                "systemctl".into(),
                "kill".into(),
                "--signal=USR1".into(),
                "up.service".into()
            ])
        );
    }

    #[test]
    fn mistakes_name_the_fix() {
        let both = parse(
            r#"exec = ["a"]
systemd_reload = "b.service""#,
        );
        let e = both.action("credential youtube").unwrap_err().to_string();
        assert!(
            e.contains("credential youtube: on_change needs exactly one of"),
            "{e}"
        );
        let kill = parse(r#"signal = { pid_file = "/p", name = "KILL" }"#);
        assert!(kill
            .action("x")
            .unwrap_err()
            .to_string()
            .contains("not one of HUP, USR1, USR2"));
        let empty = parse("exec = []");
        assert!(empty
            .action("x")
            .unwrap_err()
            .to_string()
            .contains("exec is empty"));
        let option = parse(r#"systemd_reload = "--now""#);
        assert!(option.action("x").is_err(), "an option is not a unit");
        assert!(
            toml::from_str::<OnChange>(r#"shell = "x""#).is_err(),
            "unknown keys are refused"
        );
    }
}
