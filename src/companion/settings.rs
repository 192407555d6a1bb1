//! The settings the tray window edits (poll and reminder intervals, quiet hours): read
//! from and written to `companion.toml`, checked against the bounds defined once in
//! [`super::config`], which the window is sent so it checks with the same ones.

use super::config::{Bound, Config, QuietHours, POLL_SECS, REMINDER_SECS};
use serde::{Deserialize, Serialize};

/// What the window's settings dialog edits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Seconds between health polls.
    pub poll_interval_secs: u64,
    /// Seconds between reminders while a credential stays dead.
    pub reminder_interval_secs: u64,
    /// Quiet hours, if any.
    pub quiet_hours: Option<QuietHours>,
}

/// The bounds the window checks its fields with (the same the core enforces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SettingsBounds {
    /// Seconds between health polls.
    pub poll_interval_secs: Bound,
    /// Seconds between reminders.
    pub reminder_interval_secs: Bound,
}

/// The bounds of every setting.
pub const BOUNDS: SettingsBounds = SettingsBounds {
    poll_interval_secs: POLL_SECS,
    reminder_interval_secs: REMINDER_SECS,
};

/// A setting out of its bounds; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {value} s is out of range; {}", bound.what, bound.words)]
pub struct OutOfRange {
    /// The value given.
    pub value: u64,
    /// Its bounds.
    pub bound: Bound,
}

impl Settings {
    /// The settings in `cfg`.
    pub fn of(cfg: &Config) -> Settings {
        Settings {
            poll_interval_secs: cfg.poll_interval_secs,
            reminder_interval_secs: cfg.reminder_interval_secs,
            quiet_hours: cfg.quiet_hours,
        }
    }

    /// Checks every value against [`BOUNDS`].
    pub fn check(&self) -> Result<(), OutOfRange> {
        for (value, bound) in [
            (self.poll_interval_secs, POLL_SECS),
            (self.reminder_interval_secs, REMINDER_SECS),
        ] {
            if !bound.contains(value) {
                return Err(OutOfRange { value, bound });
            }
        }
        Ok(())
    }

    /// Writes these settings into `cfg` after checking them (`cfg` is untouched when a
    /// value is out of range).
    pub fn apply_to(&self, cfg: &mut Config) -> Result<(), OutOfRange> {
        self.check()?;
        cfg.poll_interval_secs = self.poll_interval_secs;
        cfg.reminder_interval_secs = self.reminder_interval_secs;
        cfg.quiet_hours = self.quiet_hours;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_values_are_refused_with_the_range_and_leave_the_config_alone() {
        let mut cfg = Config::default();
        let before = cfg.clone();
        let bad = Settings {
            poll_interval_secs: 2,
            ..Settings::of(&cfg)
        };
        let err = bad.apply_to(&mut cfg).unwrap_err();
        assert_eq!(
            err.to_string(),
            "check interval 2 s is out of range; use 10 to 86400 seconds"
        );
        assert_eq!(cfg, before);
        let bad = Settings {
            reminder_interval_secs: 60,
            ..Settings::of(&cfg)
        };
        assert_eq!(
            bad.check().unwrap_err().to_string(),
            "reminder interval 60 s is out of range; use 15 minutes to 7 days"
        );
    }

    #[test]
    fn the_bounds_are_inclusive_and_the_defaults_lie_inside() {
        let cfg = Config::default();
        assert!(Settings::of(&cfg).check().is_ok());
        let edge = Settings {
            poll_interval_secs: BOUNDS.poll_interval_secs.min,
            reminder_interval_secs: BOUNDS.reminder_interval_secs.max,
            quiet_hours: None,
        };
        assert!(edge.check().is_ok());
        // The window is sent the bounds with the sentence it shows for a value outside.
        let sent = serde_json::to_value(BOUNDS).unwrap();
        assert_eq!(sent["poll_interval_secs"]["min"], 10);
        assert_eq!(
            sent["poll_interval_secs"]["refusal"],
            "check interval is out of range; use 10 to 86400 seconds"
        );
        let mut cfg = Config::default();
        edge.apply_to(&mut cfg).unwrap();
        assert_eq!(Settings::of(&cfg), edge);
    }
}
