//! Durations as people write them in config files: a number of seconds, or numbers with
//! units — `500ms`, `90s`, `15m` (or `15min`), `6h`, `14d`, and sums such as `1h30m`.
//! One parser for every config (`agent.toml` credentials and alerts alike).

use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

/// Parses a duration; `None` when the text is not one (unknown unit, trailing number
/// without a unit such as `1h30`, overflow).
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total_ms: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let ms_per_unit: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            // No unit after a number that is not the whole text ("1h30") is ambiguous.
            _ => return None,
        };
        total_ms = total_ms.checked_add(n.checked_mul(ms_per_unit)?)?;
        rest = rest[unit_len..].trim_start();
    }
    Some(Duration::from_millis(total_ms))
}

/// Renders a duration the way [`parse`] reads it, in the largest exact unit.
pub fn format(d: Duration) -> String {
    if d.subsec_millis() != 0 {
        return format!("{}ms", d.as_millis());
    }
    match d.as_secs() {
        0 => "0s".to_string(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `#[serde(with = "crate::duration::humane")]`: reads seconds or [`parse`] text, writes
/// [`format`] text.
pub mod humane {
    use super::*;

    /// Writes the duration as text.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    /// Reads a number of seconds or a duration text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Duration::from_secs(s)),
            Raw::Text(t) => parse(&t).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid duration {t:?}: write seconds or a number with ms, s, m, h or d, e.g. \"6h\", \"90s\" or \"1h30m\""
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_configs_use() {
        assert_eq!(parse("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse("15min"), Some(Duration::from_secs(900)));
        assert_eq!(parse("6h"), Some(Duration::from_secs(21_600)));
        assert_eq!(parse("14d"), Some(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5_400)));
        assert_eq!(parse("1h 30m"), Some(Duration::from_secs(5_400)));
        assert_eq!(parse(" 6h "), Some(Duration::from_secs(21_600)));
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in [
            "",
            "h",
            "6x",
            "6 hours",
            "1h30",
            "-5s",
            "99999999999999999999d",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn format_round_trips() {
        for d in [0, 45, 90, 5_400, 21_600, 172_800] {
            let d = Duration::from_secs(d);
            assert_eq!(parse(&format(d)), Some(d));
        }
        assert_eq!(format(Duration::from_secs(5_400)), "90m");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
    }
}
