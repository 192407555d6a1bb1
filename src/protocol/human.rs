//! Wire types for "a human is needed": challenges the agent posts (a QR code to scan, a
//! device code to type, a URL to open, a message), the reports of `session` credentials,
//! and the work that waits for the owner.
//!
//! Every type here is new in protocol 1 and reaches older peers only as `#[serde(default)]`
//! fields of [`super::CredentialHealth`] (or event types they skip).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest QR payload accepted (a QR code holds at most 2,953 bytes in binary mode).
pub const MAX_QR_PAYLOAD: usize = 2953;
/// Longest text field of a challenge (URLs, codes, messages).
pub const MAX_CHALLENGE_TEXT: usize = 2048;

/// What the owner must do for the agent, as the agent posts it
/// (`POST /v1/credentials/{name}/challenge`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Challenge {
    /// Scan a QR code with the phone (WhatsApp Web–style re-link). The agent re-posts it
    /// each time the code changes.
    Qr {
        /// The raw text the QR code encodes.
        payload: String,
        /// When this code stops working.
        #[serde(default)]
        expires_at: Option<DateTime<Utc>>,
    },
    /// Open a page and type a short code (RFC 8628 device authorization).
    DeviceCode {
        /// The page to open.
        verification_uri: String,
        /// The code to type there.
        user_code: String,
        /// The page with the code filled in, when the provider offers one.
        #[serde(default)]
        verification_uri_complete: Option<String>,
        /// When the code stops working.
        #[serde(default)]
        expires_at: Option<DateTime<Utc>>,
    },
    /// Open a URL (a consent page the agent made itself).
    Url {
        /// The page.
        url: String,
    },
    /// Anything else, in words.
    Text {
        /// What the owner must do.
        message: String,
    },
}

impl Challenge {
    /// The kind as on the wire (`qr`, `device_code`, `url`, `text`).
    pub fn kind(&self) -> &'static str {
        match self {
            Challenge::Qr { .. } => "qr",
            Challenge::DeviceCode { .. } => "device_code",
            Challenge::Url { .. } => "url",
            Challenge::Text { .. } => "text",
        }
    }

    /// What the owner must do, in words ("scan the QR code with your phone").
    pub fn need_words(&self) -> String {
        match self {
            Challenge::Qr { .. } => "scan the QR code with your phone".into(),
            Challenge::DeviceCode {
                verification_uri,
                user_code,
                ..
            } => format!("open {verification_uri} and enter the code {user_code}"),
            Challenge::Url { url } => format!("open {url}"),
            Challenge::Text { message } => message.clone(),
        }
    }

    /// The page the owner should open, if any (device-code page, URL challenge).
    pub fn link(&self) -> Option<&str> {
        match self {
            Challenge::DeviceCode {
                verification_uri,
                verification_uri_complete,
                ..
            } => Some(
                verification_uri_complete
                    .as_deref()
                    .unwrap_or(verification_uri),
            ),
            Challenge::Url { url } => Some(url),
            _ => None,
        }
    }

    /// When it stops working, if it says.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Challenge::Qr { expires_at, .. } | Challenge::DeviceCode { expires_at, .. } => {
                *expires_at
            }
            _ => None,
        }
    }

    /// Checks sizes and links; the error says which field and why.
    pub fn validate(&self) -> Result<(), ChallengeError> {
        let text = |field: &'static str, v: &str, max: usize| {
            if v.trim().is_empty() {
                Err(ChallengeError::Empty { field })
            } else if v.len() > max {
                Err(ChallengeError::TooLong { field, max })
            } else if v.chars().any(|c| c.is_control() && c != '\n') {
                Err(ChallengeError::ControlCharacters { field })
            } else {
                Ok(())
            }
        };
        let link = |field: &'static str, v: &str| {
            text(field, v, MAX_CHALLENGE_TEXT)?;
            match url::Url::parse(v) {
                Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => Ok(()),
                _ => Err(ChallengeError::NotHttpUrl {
                    field,
                    value: v.to_string(),
                }),
            }
        };
        match self {
            Challenge::Qr { payload, .. } => {
                if payload.is_empty() {
                    return Err(ChallengeError::Empty { field: "payload" });
                }
                if payload.len() > MAX_QR_PAYLOAD {
                    return Err(ChallengeError::QrTooLong);
                }
                Ok(())
            }
            Challenge::DeviceCode {
                verification_uri,
                user_code,
                verification_uri_complete,
                ..
            } => {
                link("verification_uri", verification_uri)?;
                text("user_code", user_code, 64)?;
                if let Some(c) = verification_uri_complete {
                    link("verification_uri_complete", c)?;
                }
                Ok(())
            }
            Challenge::Url { url } => link("url", url),
            Challenge::Text { message } => text("message", message, MAX_CHALLENGE_TEXT),
        }
    }
}

/// Why a posted [`Challenge`] is refused: the field and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// A required field is empty.
    #[error("challenge field `{field}` is empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A text field is too long.
    #[error("challenge field `{field}` is longer than {max} bytes")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its limit.
        max: usize,
    },
    /// The QR payload is more than a QR code holds.
    #[error("challenge field `payload` is longer than {MAX_QR_PAYLOAD} bytes (the most a QR code holds)")]
    QrTooLong,
    /// A text field has control characters (newlines aside).
    #[error("challenge field `{field}` contains control characters")]
    ControlCharacters {
        /// The field.
        field: &'static str,
    },
    /// A link is not an http(s) URL with a host.
    #[error("challenge field `{field}` must be an http(s) URL, got {value:?}")]
    NotHttpUrl {
        /// The field.
        field: &'static str,
        /// What was posted.
        value: String,
    },
}

/// A challenge as the daemon keeps and shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedChallenge {
    /// What is needed.
    pub challenge: Challenge,
    /// When the agent first posted a challenge for this outage.
    pub since: DateTime<Utc>,
    /// When this version was posted.
    pub posted_at: DateTime<Utc>,
    /// 1 for the first post, +1 for each re-post (a QR code that changed).
    pub revision: u64,
}

/// Work the agent could not do while the credential was dead ("3 uploads waiting since
/// 09:02").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingWork {
    /// How many jobs wait.
    pub count: u64,
    /// When the oldest one was queued.
    #[serde(default)]
    pub oldest: Option<DateTime<Utc>>,
    /// What they are, plural noun ("uploads"); `jobs` when the agent does not say.
    #[serde(default)]
    pub what: Option<String>,
}

impl PendingWork {
    /// From the optional fields of a report: `None` when it says nothing about pending
    /// work, `Some(None)` when it says nothing waits (`pending: 0`).
    pub fn from_report(
        pending: Option<u64>,
        oldest: Option<DateTime<Utc>>,
        what: Option<&str>,
    ) -> Option<Option<PendingWork>> {
        let count = pending?;
        Some((count > 0).then(|| {
            PendingWork {
                count,
                oldest,
                what: what
                    .map(|w| crate::provider::clean_text(w, 40))
                    .filter(|w| !w.is_empty()),
            }
        }))
    }

    /// "3 uploads waiting since 09:02" (`at` formats the time for the reader's zone).
    pub fn words(&self, at: impl Fn(DateTime<Utc>) -> String) -> String {
        let what = self
            .what
            .as_deref()
            .unwrap_or(if self.count == 1 { "job" } else { "jobs" });
        match self.oldest {
            Some(t) => format!("{} {what} waiting since {}", self.count, at(t)),
            None => format!("{} {what} waiting", self.count),
        }
    }
}

/// `POST /v1/credentials/{name}/report` (agent token): what the agent sees of its own
/// session. For `session` credentials it is their health; for token credentials it only
/// carries pending work.
///
/// The three pending-work fields repeat [`super::RejectedReport`]'s on purpose: serde cannot
/// flatten a shared struct into one that denies unknown fields, and a typo in an agent's
/// field name must be refused, not ignored. [`PendingWork::from_report`] reads both.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionReport {
    /// True when the agent's session works.
    pub ok: bool,
    /// What the agent sees, for the owner (never a secret).
    #[serde(default)]
    pub detail: Option<String>,
    /// Jobs waiting (0 clears).
    #[serde(default)]
    pub pending: Option<u64>,
    /// When the oldest waiting job was queued.
    #[serde(default)]
    pub oldest: Option<DateTime<Utc>>,
    /// What the jobs are, plural noun ("uploads").
    #[serde(default)]
    pub what: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_wire_forms() {
        let c: Challenge =
            serde_json::from_str(r#"{"kind":"qr","payload":"2@abc,def","expires_at":null}"#)
                .unwrap();
        assert_eq!(c.kind(), "qr");
        assert_eq!(c.need_words(), "scan the QR code with your phone");
        let d: Challenge = serde_json::from_str(
            r#"{"kind":"device_code","verification_uri":"https://id.example/device","user_code":"WDJB-MJHT"}"#,
        )
        .unwrap();
        assert_eq!(
            d.need_words(),
            "open https://id.example/device and enter the code WDJB-MJHT"
        );
        assert_eq!(d.link(), Some("https://id.example/device"));
        assert!(
            serde_json::from_str::<Challenge>(r#"{"kind":"qr","payload":"x","extra":1}"#).is_err()
        );
        assert!(serde_json::from_str::<Challenge>(r#"{"kind":"fax"}"#).is_err());
    }

    #[test]
    fn challenge_validation_names_the_field() {
        let big = Challenge::Qr {
            payload: "x".repeat(MAX_QR_PAYLOAD + 1),
            expires_at: None,
        };
        assert_eq!(big.validate(), Err(ChallengeError::QrTooLong));
        let js = Challenge::Url {
            url: "javascript:alert(1)".into(),
        };
        assert!(matches!(
            js.validate(),
            Err(ChallengeError::NotHttpUrl { field: "url", .. })
        ));
        let ok = Challenge::DeviceCode {
            verification_uri: "http://127.0.0.1:9/device".into(),
            user_code: "ABCD-EFGH".into(),
            verification_uri_complete: None,
            expires_at: None,
        };
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn pending_words() {
        let t = "2026-03-01T09:02:00Z".parse().unwrap();
        let p = PendingWork::from_report(Some(3), Some(t), Some("uploads"))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.words(|t| t.format("%H:%M").to_string()),
            "3 uploads waiting since 09:02"
        );
        assert_eq!(PendingWork::from_report(Some(0), None, None), Some(None));
        assert_eq!(PendingWork::from_report(None, None, None), None);
    }
}
