//! The companion's configuration file, `companion.toml`: paired agents and watch timing.
//!
//! ```toml
//! poll_interval_secs = 60
//! reminder_interval_secs = 14400
//! unreachable_after_secs = 300
//! quiet_hours = { start = "22:00", end = "07:00" }
//!
//! [[agent]]
//! name = "studio"
//! url = "https://studio.example:7443"
//! fingerprint = "3f9a…"      # SHA-256 of the daemon's certificate; absent = CA validation
//! device_id = "dev_…"
//!
//! [agent.authorization.youtube]   # remembered at the first re-authorization
//! host = "accounts.google.com"
//! path = "/o/oauth2/v2/auth"
//! client_id = "1234.apps.googleusercontent.com"
//! ```
//!
//! `poll_interval_secs` must lie in [`POLL_SECS`] (10 s to a day) and
//! `reminder_interval_secs` in [`REMINDER_SECS`] (15 minutes to 7 days): the same bounds
//! the tray's settings dialog is sent and [`super::settings`] enforces.
//!
//! Device tokens are not here: they live in the OS keyring (see [`super::secrets`]).

use chrono::NaiveTime;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Name of the config file inside the config directory.
pub const CONFIG_FILE: &str = "companion.toml";
/// Environment variable that overrides the platform config directory (tests, the demo).
pub const CONFIG_DIR_ENV: &str = "TETHER_CONFIG_DIR";
/// Default seconds between health polls.
pub const DEFAULT_POLL_SECS: u64 = 60;
/// Default seconds between reminders while a credential stays dead (4 hours).
pub const DEFAULT_REMINDER_SECS: u64 = 4 * 3600;
/// Default seconds of failed contact before "agent unreachable" is announced.
pub const DEFAULT_UNREACHABLE_SECS: u64 = 300;
/// Allowed seconds between health polls: often enough to matter, rarely enough to spare
/// the agent. The one definition: the file, the tray's settings and its window use it.
pub const POLL_SECS: Bound = Bound {
    what: "check interval",
    min: 10,
    max: 86_400,
    words: "use 10 to 86400 seconds",
};
/// Allowed seconds between reminders while a credential stays dead (15 minutes to 7 days).
pub const REMINDER_SECS: Bound = Bound {
    what: "reminder interval",
    min: 900,
    max: 7 * 86_400,
    words: "use 15 minutes to 7 days",
};

/// An allowed range of a setting, with the words that tell the owner what to use.
/// Serialized for the tray window with `refusal`, the sentence it shows for a value
/// outside (so the page has no words of its own for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// The setting in words ("check interval").
    pub what: &'static str,
    /// Smallest allowed value.
    pub min: u64,
    /// Largest allowed value.
    pub max: u64,
    /// "use 10 to 86400 seconds".
    pub words: &'static str,
}

impl Serialize for Bound {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("Bound", 4)?;
        out.serialize_field("min", &self.min)?;
        out.serialize_field("max", &self.max)?;
        out.serialize_field("words", self.words)?;
        out.serialize_field("refusal", &self.refusal())?;
        out.end()
    }
}

impl Bound {
    /// "check interval is out of range; use 10 to 86400 seconds".
    pub fn refusal(&self) -> String {
        format!("{} is out of range; {}", self.what, self.words)
    }

    /// True when `v` is allowed.
    pub fn contains(&self, v: u64) -> bool {
        (self.min..=self.max).contains(&v)
    }
}

/// Why the config could not be found, read, parsed or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No home / config directory could be determined.
    #[error("cannot find a config directory for tether; set {CONFIG_DIR_ENV} to a directory")]
    NoConfigDir,
    /// The file exists but could not be read.
    #[error("cannot read the companion config {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid companion TOML.
    #[error("companion config {path}, line {line}, column {column}: {message}; fix that line or move the file away and pair again")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// A value is out of range.
    #[error("companion config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file could not be written.
    #[error("cannot write the companion config {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A time of day written `HH:MM` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay(pub NaiveTime);

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.format("%H:%M").to_string())
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NaiveTime::parse_from_str(&s, "%H:%M")
            .map(TimeOfDay)
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{s}` is not a time of day; write it as HH:MM, e.g. \"22:00\""
                ))
            })
    }
}

/// Hours in which only `dead` credentials raise notifications; the rest wait until the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// Local time the quiet period starts.
    pub start: TimeOfDay,
    /// Local time it ends (may be earlier than `start`: the period spans midnight).
    pub end: TimeOfDay,
}

impl QuietHours {
    /// True when `t` (local time of day) falls inside the quiet period.
    pub fn contains(&self, t: NaiveTime) -> bool {
        let (s, e) = (self.start.0, self.end.0);
        if s <= e {
            s <= t && t < e
        } else {
            t >= s || t < e
        }
    }
}

/// One paired agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    /// Local name of the agent (by default the name the agent reports).
    pub name: String,
    /// Base URL of the daemon.
    pub url: String,
    /// Hex SHA-256 of the daemon's certificate (DER); `None` means normal CA validation.
    #[serde(
        default,
        deserialize_with = "crate::pin::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub fingerprint: Option<crate::pin::Fingerprint>,
    /// The device id the agent gave this computer (for `tether agent revoke` there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Per credential, the authorization server and client of its first authorization: a
    /// re-auth URL naming another one is refused until the owner accepts it.
    #[serde(
        default,
        rename = "authorization",
        skip_serializing_if = "std::collections::BTreeMap::is_empty"
    )]
    pub authorizations: std::collections::BTreeMap<String, super::consent::AuthorizationPin>,
}

/// The whole `companion.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Seconds between health polls (jittered).
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    /// Seconds between reminders while a credential stays dead.
    #[serde(default = "default_reminder")]
    pub reminder_interval_secs: u64,
    /// Seconds of failed contact before "agent unreachable" is announced.
    #[serde(default = "default_unreachable")]
    pub unreachable_after_secs: u64,
    /// Quiet hours, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// Paired agents.
    #[serde(default, rename = "agent")]
    pub agents: Vec<AgentEntry>,
}

fn default_poll() -> u64 {
    DEFAULT_POLL_SECS
}
fn default_reminder() -> u64 {
    DEFAULT_REMINDER_SECS
}
fn default_unreachable() -> u64 {
    DEFAULT_UNREACHABLE_SECS
}

impl Default for Config {
    fn default() -> Self {
        Config {
            poll_interval_secs: DEFAULT_POLL_SECS,
            reminder_interval_secs: DEFAULT_REMINDER_SECS,
            unreachable_after_secs: DEFAULT_UNREACHABLE_SECS,
            quiet_hours: None,
            agents: Vec::new(),
        }
    }
}

impl Config {
    /// Reads `path`; a missing file is an empty config (nothing paired yet).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses config text; `path` only names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((1, 1));
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        for (key, value, bound) in [
            ("poll_interval_secs", self.poll_interval_secs, POLL_SECS),
            (
                "reminder_interval_secs",
                self.reminder_interval_secs,
                REMINDER_SECS,
            ),
        ] {
            if !bound.contains(value) {
                return Err(invalid(format!(
                    "{key} = {value} is out of range; {}",
                    bound.words
                )));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for a in &self.agents {
            if !seen.insert(a.name.as_str()) {
                return Err(invalid(format!(
                    "agent `{}` is listed twice; remove one [[agent]] block",
                    a.name
                )));
            }
        }
        Ok(())
    }

    /// Writes the config atomically (0600 file in a 0700 directory), with a comment
    /// saying where the device tokens really are: `in_file` lists the agents whose token
    /// is in the fallback file `file`; the others' are in the OS keyring.
    pub fn save(&self, path: &Path, in_file: &[String], file: &Path) -> Result<(), ConfigError> {
        let text = toml::to_string_pretty(self).map_err(|e| ConfigError::Write {
            path: path.to_owned(),
            source: std::io::Error::other(e),
        })?;
        let (filed, keyring): (Vec<&str>, Vec<&str>) = self
            .agents
            .iter()
            .map(|a| a.name.as_str())
            .partition(|n| in_file.iter().any(|f| f == n));
        let mut where_ = String::from("# Device tokens are not in this file.\n");
        if !keyring.is_empty() {
            where_.push_str(&format!(
                "# In the OS keyring (service `tether`): {}.\n",
                keyring.join(", ")
            ));
        }
        if !filed.is_empty() {
            where_.push_str(&format!(
                "# In {} (mode 0600, because the keyring was not used): {}.\n",
                file.display(),
                filed.join(", ")
            ));
        }
        let text =
            format!("# tether companion: paired agents and watch settings.\n{where_}\n{text}");
        crate::files::write_private(path, text.as_bytes()).map_err(|source| ConfigError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// The agent called `name`.
    pub fn agent(&self, name: &str) -> Option<&AgentEntry> {
        self.agents.iter().find(|a| a.name == name)
    }

    /// Poll interval as a duration.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_interval_secs)
    }
    /// Reminder interval as a duration.
    pub fn reminder_interval(&self) -> Duration {
        Duration::from_secs(self.reminder_interval_secs)
    }
    /// Unreachable threshold as a duration.
    pub fn unreachable_after(&self) -> Duration {
        Duration::from_secs(self.unreachable_after_secs)
    }
}

/// The companion's config directory: `$TETHER_CONFIG_DIR`, else the platform's
/// (`~/.config/tether` on Linux).
pub fn config_dir() -> Result<PathBuf, ConfigError> {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "tether")
        .map(|p| p.config_dir().to_path_buf())
        .ok_or(ConfigError::NoConfigDir)
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_file_and_line() {
        let text = "poll_interval_secs = 30\n\n[[agent]]\nname = \"studio\"\nurl = 7\n";
        let err = Config::parse(Path::new("/x/companion.toml"), text).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ConfigError::Parse { line: 5, .. }), "{msg}");
        assert!(
            msg.contains("/x/companion.toml") && msg.contains("line 5"),
            "{msg}"
        );
    }

    #[test]
    fn bad_quiet_hours_are_reported_with_their_line() {
        let text = "quiet_hours = { start = \"25:00\", end = \"07:00\" }\n";
        let err = Config::parse(Path::new("c.toml"), text).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { line: 1, .. }));
        assert!(err.to_string().contains("HH:MM"), "{err}");
    }

    #[test]
    fn round_trip_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        assert_eq!(Config::load(&path).unwrap(), Config::default());
        let mut cfg = Config {
            quiet_hours: Some(QuietHours {
                start: TimeOfDay(NaiveTime::from_hms_opt(22, 0, 0).unwrap()),
                end: TimeOfDay(NaiveTime::from_hms_opt(7, 0, 0).unwrap()),
            }),
            ..Config::default()
        };
        cfg.agents.push(AgentEntry {
            name: "studio".into(),
            url: "https://127.0.0.1:7443".into(),
            fingerprint: Some(crate::pin::Fingerprint::parse(&"ab".repeat(32)).unwrap()),
            device_id: Some("d1".into()),
            authorizations: [(
                "youtube".to_string(),
                super::super::consent::AuthorizationPin {
                    host: "accounts.google.com".into(),
                    path: "/o/oauth2/v2/auth".into(),
                    client_id: "123.apps".into(),
                },
            )]
            .into(),
        });
        cfg.save(&path, &[], Path::new("/nonexistent")).unwrap();
        assert_eq!(Config::load(&path).unwrap(), cfg);
    }

    #[test]
    fn a_pinned_fingerprint_is_read_typed_empty_is_no_pin_and_garbage_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        let entry = |fp: &str| {
            format!(
                "[[agent]]\nname = \"studio\"\nurl = \"https://h:7443\"\nfingerprint = \"{fp}\"\n"
            )
        };
        let upper = "AB:".repeat(31) + "AB";
        std::fs::write(&path, entry(&upper)).unwrap();
        let pin = Config::load(&path).unwrap().agents[0].fingerprint.clone();
        assert_eq!(pin.map(|p| p.to_hex()), Some("ab".repeat(32)));

        std::fs::write(&path, entry("")).unwrap();
        assert_eq!(Config::load(&path).unwrap().agents[0].fingerprint, None);

        std::fs::write(&path, entry("3f9a")).unwrap();
        let err = crate::report::chain(&Config::load(&path).unwrap_err());
        assert!(err.contains("line 4") && err.contains("3f9a"), "{err}");
    }

    #[test]
    fn the_header_says_where_each_token_really_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        let mut cfg = Config::default();
        for name in ["lab", "studio"] {
            cfg.agents.push(AgentEntry {
                name: name.into(),
                url: format!("https://{name}.example:7443"),
                fingerprint: None,
                device_id: None,
                authorizations: Default::default(),
            });
        }
        let file = dir.path().join("secrets.toml");
        cfg.save(&path, &["studio".into()], &file).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# In the OS keyring (service `tether`): lab.\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "# In {} (mode 0600, because the keyring was not used): studio.\n",
                file.display()
            )),
            "{text}"
        );
        assert_eq!(Config::load(&path).unwrap(), cfg);
    }

    #[test]
    fn quiet_hours_span_midnight() {
        let q = QuietHours {
            start: TimeOfDay(NaiveTime::from_hms_opt(22, 0, 0).unwrap()),
            end: TimeOfDay(NaiveTime::from_hms_opt(7, 0, 0).unwrap()),
        };
        let t = |h| NaiveTime::from_hms_opt(h, 30, 0).unwrap();
        assert!(q.contains(t(23)) && q.contains(t(3)));
        assert!(!q.contains(t(7)) && !q.contains(t(12)));
    }

    #[test]
    fn out_of_range_timing_in_the_file_names_the_key_and_the_range() {
        let err = Config::parse(Path::new("c.toml"), "poll_interval_secs = 2\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "companion config c.toml: poll_interval_secs = 2 is out of range; use 10 to 86400 seconds"
        );
        let err = Config::parse(Path::new("c.toml"), "reminder_interval_secs = 60\n").unwrap_err();
        assert!(
            err.to_string().contains("use 15 minutes to 7 days"),
            "{err}"
        );
        assert!(Config::parse(Path::new("c.toml"), "poll_interval_secs = 10\n").is_ok());
    }

    #[test]
    fn duplicate_agents_are_rejected() {
        let text = "[[agent]]\nname = \"a\"\nurl = \"https://x\"\n[[agent]]\nname = \"a\"\nurl = \"https://y\"\n";
        let err = Config::parse(Path::new("c.toml"), text).unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
    }
}
