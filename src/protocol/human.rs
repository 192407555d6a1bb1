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

    /// The host (and port, when not the scheme's own) of the page [`link`](Self::link)
    /// opens, read from that very URL: what every surface shows beside the button, so the
    /// owner judges the page that will open, not a label. `None` without a link, or for a
    /// link that does not parse (which [`normalized`](Self::normalized) refuses anyway).
    pub fn link_host(&self) -> Option<String> {
        let u = url::Url::parse(self.link()?).ok()?;
        let host = u.host_str()?.to_string();
        Some(match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        })
    }

    /// The challenge as it is stored, shown and opened: sizes checked, every link parsed
    /// under [`check_link`] and re-serialized once, so what a surface displays and what it
    /// opens are the same string. The error says which field and which rule.
    pub fn normalized(self) -> Result<Challenge, ChallengeError> {
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
        Ok(match self {
            Challenge::Qr {
                payload,
                expires_at,
            } => {
                if payload.is_empty() {
                    return Err(ChallengeError::Empty { field: "payload" });
                }
                if payload.len() > MAX_QR_PAYLOAD {
                    return Err(ChallengeError::QrTooLong);
                }
                Challenge::Qr {
                    payload,
                    expires_at,
                }
            }
            Challenge::DeviceCode {
                verification_uri,
                user_code,
                verification_uri_complete,
                expires_at,
            } => {
                let page = check_link("verification_uri", &verification_uri)?;
                text("user_code", &user_code, 64)?;
                // A code is typed as shown: no line breaks, nothing around it.
                if user_code.contains('\n') || user_code.trim() != user_code {
                    return Err(ChallengeError::Whitespace { field: "user_code" });
                }
                let complete = match verification_uri_complete {
                    Some(c) => {
                        let full = check_link("verification_uri_complete", &c)?;
                        // The owner is shown verification_uri's host; the button opens this
                        // one. They must be the same site.
                        if full.origin() != page.origin() {
                            return Err(ChallengeError::OriginMismatch {
                                shown: page.origin().ascii_serialization(),
                                opened: full.origin().ascii_serialization(),
                            });
                        }
                        Some(full.to_string())
                    }
                    None => None,
                };
                Challenge::DeviceCode {
                    verification_uri: page.to_string(),
                    user_code,
                    verification_uri_complete: complete,
                    expires_at,
                }
            }
            Challenge::Url { url } => Challenge::Url {
                url: check_link("url", &url)?.to_string(),
            },
            Challenge::Text { message } => {
                text("message", &message, MAX_CHALLENGE_TEXT)?;
                Challenge::Text { message }
            }
        })
    }
}

/// True for a host the owner's own machine answers: `localhost`, 127.0.0.0/8, `::1`.
fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(a) => a.is_loopback(),
        url::Host::Ipv6(a) => a.is_loopback(),
    }
}

/// The rules of a link the owner is asked to open, checked on the text as posted (before
/// a URL parser quietly strips or encodes anything): at most [`MAX_CHALLENGE_TEXT`] bytes;
/// no whitespace or control character anywhere (a newline can make one host display as
/// another); `https`, or `http` only to a loopback host (tests, a local tool); a host; no
/// user name or password (`https://accounts.google.com@evil.example/` opens evil.example).
/// The companion checks links it is about to open with the same function.
pub fn check_link(field: &'static str, v: &str) -> Result<url::Url, ChallengeError> {
    if v.trim().is_empty() {
        return Err(ChallengeError::Empty { field });
    }
    if v.len() > MAX_CHALLENGE_TEXT {
        return Err(ChallengeError::TooLong {
            field,
            max: MAX_CHALLENGE_TEXT,
        });
    }
    if v.chars().any(char::is_control) {
        return Err(ChallengeError::ControlCharacters { field });
    }
    if v.chars().any(char::is_whitespace) {
        return Err(ChallengeError::Whitespace { field });
    }
    let not_http = || ChallengeError::NotHttpUrl {
        field,
        value: v.to_string(),
    };
    let u = url::Url::parse(v).map_err(|_| not_http())?;
    let host = u.host().ok_or_else(not_http)?;
    match u.scheme() {
        "https" => {}
        "http" if is_loopback_host(&host) => {}
        "http" => {
            return Err(ChallengeError::PlainHttp {
                field,
                host: host.to_string(),
            })
        }
        _ => return Err(not_http()),
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(ChallengeError::UserInfo { field });
    }
    Ok(u)
}

/// Who posted a challenge: the owner must be able to tell Tether's own sign-in from a
/// page the agent (which a prompt injection may control) asks them to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeOrigin {
    /// The daemon itself (its device-code sign-in, or the word that one ended).
    Daemon,
    /// The user's agent (`POST .../challenge`). The default for an older daemon, which
    /// did not say: the cautious reading.
    #[default]
    Agent,
}

impl ChallengeOrigin {
    /// Who asks, in words, for `credential`: "Tether's own sign-in for outlook" or "your
    /// agent asks (not Tether) for outlook".
    pub fn words(self, credential: &str) -> String {
        match self {
            ChallengeOrigin::Daemon => format!("Tether's own sign-in for {credential}"),
            ChallengeOrigin::Agent => format!("your agent asks (not Tether) for {credential}"),
        }
    }

    /// As on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeOrigin::Daemon => "daemon",
            ChallengeOrigin::Agent => "agent",
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
    #[error("challenge field `{field}` must be an https URL with a host, got {value:?}")]
    NotHttpUrl {
        /// The field.
        field: &'static str,
        /// What was posted.
        value: String,
    },
    /// A link or code has whitespace (a newline or space can make a link show one host
    /// and open another).
    #[error("challenge field `{field}` contains whitespace; send the URL exactly as it is opened")]
    Whitespace {
        /// The field.
        field: &'static str,
    },
    /// A plain-http link to a host that is not loopback.
    #[error("challenge field `{field}` must use https (plain http is allowed only to a loopback host, got {host})")]
    PlainHttp {
        /// The field.
        field: &'static str,
        /// The host it named.
        host: String,
    },
    /// A link with a user name or password before the host (`https://good.example@evil/`).
    #[error("challenge field `{field}` must not carry a user name or password before the host")]
    UserInfo {
        /// The field.
        field: &'static str,
    },
    /// `verification_uri_complete` is on another site than `verification_uri`.
    #[error("challenge field `verification_uri_complete` must be on the same origin as `verification_uri` (shown {shown}, would open {opened})")]
    OriginMismatch {
        /// The origin of the page shown.
        shown: String,
        /// The origin of the page the button would open.
        opened: String,
    },
}

/// A challenge as the daemon keeps and shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedChallenge {
    /// What is needed.
    pub challenge: Challenge,
    /// When this request was first posted: re-posts of it (a QR code that turned over)
    /// keep it, a new request (another device code, page or asker) starts again.
    pub since: DateTime<Utc>,
    /// When this version was posted.
    pub posted_at: DateTime<Utc>,
    /// 1 for the first post of a request, +1 for each re-post (a QR code that changed).
    pub revision: u64,
    /// Who posted it (absent from an older daemon: read as the agent).
    #[serde(default)]
    pub origin: ChallengeOrigin,
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
                    .map(|w| crate::text::clean_text(w, 40))
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
        assert_eq!(big.normalized(), Err(ChallengeError::QrTooLong));
        let js = Challenge::Url {
            url: "javascript:alert(1)".into(),
        };
        assert!(matches!(
            js.normalized(),
            Err(ChallengeError::NotHttpUrl { field: "url", .. })
        ));
        let ok = Challenge::DeviceCode {
            verification_uri: "http://127.0.0.1:9/device".into(),
            user_code: "ABCD-EFGH".into(),
            verification_uri_complete: None,
            expires_at: None,
        };
        assert!(ok.normalized().is_ok());
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

    fn url(u: &str) -> Challenge {
        Challenge::Url { url: u.into() }
    }

    #[test]
    fn links_are_https_or_loopback_http_and_parsed_once() {
        let ok = url("https://Accounts.Google.COM/o/oauth2?x=1")
            .normalized()
            .unwrap();
        assert_eq!(ok, url("https://accounts.google.com/o/oauth2?x=1"));
        assert_eq!(ok.link_host().as_deref(), Some("accounts.google.com"));
        for loopback in [
            "http://127.0.0.1:9/cb",
            "http://localhost:8080/",
            "http://[::1]/",
        ] {
            assert!(url(loopback).normalized().is_ok(), "{loopback}");
        }
        assert_eq!(
            url("http://127.0.0.1:9/cb").link_host().as_deref(),
            Some("127.0.0.1:9")
        );
        assert!(matches!(
            url("http://evil.example/").normalized(),
            Err(ChallengeError::PlainHttp { .. })
        ));
        assert!(matches!(
            url("ftp://evil.example/").normalized(),
            Err(ChallengeError::NotHttpUrl { .. })
        ));
    }

    #[test]
    fn links_that_show_one_host_and_open_another_are_refused() {
        // A newline: one host on screen, another in the parser.
        assert!(matches!(
            url("https://accounts.google.com\n.evil.example/").normalized(),
            Err(ChallengeError::ControlCharacters { field: "url" })
        ));
        assert!(matches!(
            url("https://accounts.google.com .evil.example/").normalized(),
            Err(ChallengeError::Whitespace { field: "url" })
        ));
        assert!(matches!(
            url("https://accounts.google.com\u{2028}x/").normalized(),
            Err(ChallengeError::Whitespace { .. } | ChallengeError::ControlCharacters { .. })
        ));
        // Userinfo: `accounts.google.com` is the user name, evil.example the host.
        assert!(matches!(
            url("https://accounts.google.com@evil.example/").normalized(),
            Err(ChallengeError::UserInfo { field: "url" })
        ));
        // The page shown and the page opened must be one site.
        let split = Challenge::DeviceCode {
            verification_uri: "https://microsoft.com/devicelogin".into(),
            user_code: "ABCD".into(),
            verification_uri_complete: Some("https://evil.example/devicelogin?c=ABCD".into()),
            expires_at: None,
        };
        let e = split.normalized().unwrap_err();
        assert!(matches!(e, ChallengeError::OriginMismatch { .. }), "{e}");
        assert!(e.to_string().contains("https://evil.example"), "{e}");
        let same = Challenge::DeviceCode {
            verification_uri: "https://microsoft.com/devicelogin".into(),
            user_code: "ABCD".into(),
            verification_uri_complete: Some("https://microsoft.com/devicelogin?c=ABCD".into()),
            expires_at: None,
        };
        assert_eq!(
            same.normalized().unwrap().link(),
            Some("https://microsoft.com/devicelogin?c=ABCD")
        );
        // A code with a line break could fake a second line on a terminal.
        let code = Challenge::DeviceCode {
            verification_uri: "https://microsoft.com/devicelogin".into(),
            user_code: "AB\nCD".into(),
            verification_uri_complete: None,
            expires_at: None,
        };
        assert!(code.normalized().is_err());
    }

    #[test]
    fn an_origin_missing_on_the_wire_reads_as_the_agent() {
        let p: PostedChallenge = serde_json::from_str(
            r#"{"challenge":{"kind":"text","message":"hi"},"since":"2026-03-01T09:02:00Z","posted_at":"2026-03-01T09:02:00Z","revision":1}"#,
        )
        .unwrap();
        assert_eq!(p.origin, ChallengeOrigin::Agent);
        assert_eq!(
            ChallengeOrigin::Daemon.words("outlook"),
            "Tether's own sign-in for outlook"
        );
    }
}
