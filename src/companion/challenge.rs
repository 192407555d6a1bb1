//! What the owner sees of an agent's challenge: notification texts ("studio · whatsapp:
//! scan the QR code with your phone"), the QR code as a module matrix (drawn by the tray
//! window) or as terminal text (`tether watch`, `tether challenge`), and the countdown.

use super::local_time::when;
use super::terminal::CLEAR_LINE;
use crate::protocol::{check_link, Challenge, CredentialHealth, PostedChallenge};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A QR code as modules: `size` × `size`, row by row, `true` is dark. No quiet zone: the
/// drawer adds one (four modules, as the standard asks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QrMatrix {
    /// Modules per side.
    pub size: usize,
    /// `size * size` modules as a string of `1` (dark) and `0` (light), row by row (a
    /// compact form for the window's IPC).
    pub modules: String,
}

/// Why a QR code cannot be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QrError {
    /// The payload does not fit a QR code.
    #[error(
        "the QR payload ({len} bytes) does not fit a QR code; ask the agent for a shorter one"
    )]
    TooLong {
        /// Its length.
        len: usize,
    },
}

/// Encodes `payload` as a QR code (error correction M, the usual for screens).
pub fn qr_matrix(payload: &str) -> Result<QrMatrix, QrError> {
    let code = qrcode::QrCode::with_error_correction_level(payload.as_bytes(), qrcode::EcLevel::M)
        .map_err(|_| QrError::TooLong { len: payload.len() })?;
    let size = code.width();
    let modules = code
        .to_colors()
        .into_iter()
        .map(|c| if c == qrcode::Color::Dark { '1' } else { '0' })
        .collect();
    Ok(QrMatrix { size, modules })
}

/// The QR code as terminal text: two modules per character cell, light on dark as
/// terminals show best, with a quiet zone.
pub fn qr_terminal(payload: &str) -> Result<String, QrError> {
    let code = qrcode::QrCode::with_error_correction_level(payload.as_bytes(), qrcode::EcLevel::M)
        .map_err(|_| QrError::TooLong { len: payload.len() })?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// What the tray window draws for one credential's challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChallengeView {
    /// The challenge as the agent posted it.
    pub challenge: crate::protocol::PostedChallenge,
    /// The QR code's modules, for a `qr` challenge.
    pub qr: Option<QrMatrix>,
}

/// The challenge of `agent`/`credential` in the tray's snapshot, with its QR code made.
pub fn view(
    agents: &[super::tray::AgentView],
    agent: &str,
    credential: &str,
) -> Result<Option<ChallengeView>, QrError> {
    let Some(posted) = agents
        .iter()
        .filter(|a| a.name == agent)
        .flat_map(|a| a.credentials.iter())
        .find(|c| c.name == credential)
        .and_then(|c| c.challenge.clone())
    else {
        return Ok(None);
    };
    let qr = match &posted.challenge {
        Challenge::Qr { payload, .. } => Some(qr_matrix(payload)?),
        _ => None,
    };
    Ok(Some(ChallengeView {
        challenge: posted,
        qr,
    }))
}

/// The page the owner should open for `agent`/`credential`'s challenge, checked again
/// here by the protocol's link rules ([`check_link`]: https, or http only to loopback; no
/// whitespace, control characters or user name) before anything opens it. `Ok(None)`: no
/// page to open; `Err`: a page that is refused, and why.
pub fn link(
    agents: &[super::tray::AgentView],
    agent: &str,
    credential: &str,
) -> Result<Option<String>, crate::protocol::ChallengeError> {
    let Some(v) = view(agents, agent, credential).ok().flatten() else {
        return Ok(None);
    };
    let Some(link) = v.challenge.challenge.link() else {
        return Ok(None);
    };
    check_link("link", link)?;
    // Opened exactly as checked and shown: the daemon stored it in its parsed form.
    Ok(Some(link.to_string()))
}

/// Who asks, as every surface says it first: "Tether's own sign-in for outlook" or "your
/// agent asks (not Tether) for outlook".
pub fn asker(posted: &PostedChallenge, credential: &str) -> String {
    posted.origin.words(credential)
}

/// Where its button goes, read from the very URL it opens: "opens github.com", or why it
/// will not open anything. `None` when the challenge has no page.
pub fn opens(ch: &Challenge) -> Option<String> {
    let link = ch.link()?;
    Some(match check_link("link", link) {
        Ok(_) => format!("opens {}", ch.link_host().unwrap_or_default()),
        Err(e) => format!("Tether will not open this page: {e}"),
    })
}

/// "expires in 0:17", "expired", or nothing when the challenge has no end.
pub fn countdown(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<String> {
    let end = expires_at?;
    let left = (end - now).num_seconds();
    Some(if left <= 0 {
        "expired: the agent posts a new one".into()
    } else {
        format!("expires in {}:{:02}", left / 60, left % 60)
    })
}

/// A drawn challenge's countdown as time passes: on a terminal the line is redrawn in
/// place each second; anywhere, the moment the code expires is said once (a log of
/// `tether challenge` then shows why the code stopped working).
#[derive(Debug, Clone)]
pub struct Ticker {
    expires_at: Option<DateTime<Utc>>,
    said_expired: bool,
}

impl Ticker {
    /// For a challenge just drawn, ending at `expires_at` (none: nothing to count).
    pub fn new(expires_at: Option<DateTime<Utc>>) -> Ticker {
        Ticker {
            expires_at,
            said_expired: false,
        }
    }

    /// What to print at `now`: on a `live` terminal the countdown over the current line
    /// (carriage return, then clear to its end); the expiry once, ending the line.
    pub fn tick(&mut self, now: DateTime<Utc>, live: bool) -> Option<String> {
        let end = self.expires_at?;
        let words = countdown(Some(end), now)?;
        if now < end {
            return live.then(|| format!("\r({words})\x1b[K"));
        }
        if std::mem::replace(&mut self.said_expired, true) {
            return None;
        }
        Some(if live {
            format!("\r({words})\x1b[K\n")
        } else {
            format!("({words})\n")
        })
    }
}

/// The countdowns of every challenge `tether watch` has drawn, as one line at the bottom
/// of a terminal ("(studio · whatsapp: expires in 0:12; studio · github: expires in
/// 9:40)") redrawn each second; each code's expiry is said once as a line of its own,
/// also into a pipe.
#[derive(Debug, Default)]
pub struct Countdowns {
    /// Label → (end, its expiry said).
    open: std::collections::BTreeMap<String, (DateTime<Utc>, bool)>,
    /// A countdown line is on the screen (it is cleared when nothing counts any more).
    drawn: bool,
}

impl Countdowns {
    /// A challenge labelled `label` was drawn, ending at `expires_at` (none: nothing to
    /// count; an earlier code of the same label is replaced).
    pub fn start(&mut self, label: &str, expires_at: Option<DateTime<Utc>>) {
        match expires_at {
            Some(end) => {
                self.open.insert(label.to_string(), (end, false));
            }
            None => self.end(label),
        }
    }

    /// `label`'s challenge is over.
    pub fn end(&mut self, label: &str) {
        self.open.remove(label);
    }

    /// What to print at `now`: on a `live` terminal the line cleared, the expiries that
    /// just happened, and the countdowns still running (no newline: the line is redrawn
    /// next time); into a pipe only the expiries.
    pub fn tick(&mut self, now: DateTime<Utc>, live: bool) -> Option<String> {
        let mut expired = String::new();
        let mut running = Vec::new();
        for (label, (end, said)) in self.open.iter_mut() {
            let Some(words) = countdown(Some(*end), now) else {
                continue;
            };
            if now < *end {
                running.push(format!("{label}: {words}"));
            } else if !std::mem::replace(said, true) {
                expired.push_str(&format!("({label}: {words})\n"));
            }
        }
        if !live {
            return (!expired.is_empty()).then_some(expired);
        }
        if expired.is_empty() && running.is_empty() && !self.drawn {
            return None;
        }
        self.drawn = !running.is_empty();
        let mut out = format!("{CLEAR_LINE}{expired}");
        if !running.is_empty() {
            out.push_str(&format!("({})", running.join("; ")));
        }
        Some(out)
    }
}

/// The notification texts for a credential with an open challenge: summary "studio ·
/// whatsapp: scan the QR code with your phone", body with where to find it and the
/// waiting work.
pub fn notice_texts(
    agent: &str,
    c: &CredentialHealth,
    now: chrono::DateTime<chrono::Local>,
) -> Option<(String, String)> {
    let posted = c.challenge.as_ref()?;
    let summary = format!("{agent} · {}: {}", c.name, posted.challenge.need_words());
    // Who asks and where the page is, first: the owner acts on this by reflex.
    let mut body = upper_first(&asker(posted, &c.name));
    if let Some(o) = opens(&posted.challenge) {
        body.push_str(&format!("; {o}"));
    }
    body.push_str(". ");
    body.push_str(&match &posted.challenge {
        Challenge::Qr { .. } => format!(
            "The QR code is in the Tether window, or run `tether challenge {agent}/{}`.",
            c.name
        ),
        Challenge::DeviceCode { .. } => {
            "This works from your phone too; the Tether window copies the code and opens the page."
                .to_string()
        }
        Challenge::Url { .. } | Challenge::Text { .. } => {
            format!(
                "The agent {agent} waits for you since {}.",
                when(posted.since, now)
            )
        }
    });
    if let Some(p) = &c.pending {
        body.push(' ');
        body.push_str(&p.words(|t| when(t, now)));
        body.push('.');
    }
    Some((summary, body))
}

/// What `tether watch` and `tether challenge` print for a challenge: the need in words,
/// then the QR code or the code in large letters, and the countdown.
pub fn terminal_text(agent: &str, c: &CredentialHealth, now: DateTime<Utc>) -> Option<String> {
    use super::terminal::safe;
    let posted = c.challenge.as_ref()?;
    let ch = &posted.challenge;
    // Every word from the daemon goes through `safe`: a control character in a code or a
    // URL must not move the cursor or fake a line.
    let mut out = format!(
        "{}\n    {}\n",
        safe(&format!("{agent} · {}: {}", c.name, ch.need_words())),
        safe(&format!(
            "asked by: {}{}",
            asker(posted, &c.name),
            opens(ch).map(|o| format!("; {o}")).unwrap_or_default()
        ))
    );
    match ch {
        Challenge::Qr { payload, .. } => match qr_terminal(payload) {
            Ok(q) => out.push_str(&q),
            Err(e) => out.push_str(&format!("({e})\n")),
        },
        Challenge::DeviceCode {
            verification_uri,
            user_code,
            ..
        } => {
            out.push_str(&format!(
                "\n    page:  {}\n    code:  {}\n\n",
                safe(verification_uri),
                safe(&spaced(user_code))
            ));
        }
        Challenge::Url { url } => out.push_str(&format!("\n    {}\n\n", safe(url))),
        Challenge::Text { .. } => {}
    }
    if let Some(words) = countdown(ch.expires_at(), now) {
        out.push_str(&format!("({words})\n"));
    }
    Some(out)
}

/// `text` with its first letter in upper case (a sentence start).
fn upper_first(text: &str) -> String {
    let mut c = text.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `W D J B - M J H T`: a code is read aloud and typed on a phone; spaces help both.
fn spaced(code: &str) -> String {
    code.chars()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_has_a_finder_pattern_in_the_corner() {
        let m = qr_matrix("2@abc,def").unwrap();
        assert_eq!(m.modules.len(), m.size * m.size);
        // The top-left finder: a dark 7-module row, then dark-light-...-light-dark.
        assert_eq!(&m.modules[..7], "1111111");
        assert_eq!(&m.modules[m.size..m.size + 7], "1000001");
        assert!(qr_matrix(&"x".repeat(5000)).is_err());
    }

    #[test]
    fn the_ticker_redraws_on_a_terminal_and_says_the_expiry_once_anywhere() {
        let now = Utc::now();
        let end = now + chrono::Duration::seconds(2);
        let mut live = Ticker::new(Some(end));
        assert_eq!(
            live.tick(now, true).as_deref(),
            Some("\r(expires in 0:02)\x1b[K")
        );
        let gone = live.tick(end, true).unwrap();
        assert!(
            gone.starts_with("\r(expired") && gone.ends_with('\n'),
            "{gone:?}"
        );
        assert_eq!(live.tick(end + chrono::Duration::seconds(1), true), None);

        let mut piped = Ticker::new(Some(end));
        assert_eq!(piped.tick(now, false), None, "no redraws into a pipe");
        assert_eq!(
            piped.tick(end, false).as_deref(),
            Some("(expired: the agent posts a new one)\n")
        );
        assert_eq!(piped.tick(end, false), None);
        assert_eq!(Ticker::new(None).tick(now, true), None);
    }

    #[test]
    fn countdowns_share_one_line_and_say_each_expiry_once() {
        let now = Utc::now();
        let secs = chrono::Duration::seconds;
        let mut c = Countdowns::default();
        assert_eq!(c.tick(now, true), None, "nothing drawn, nothing to clear");
        c.start("studio · whatsapp", Some(now + secs(2)));
        c.start("studio · github", Some(now + secs(90)));
        c.start("studio · notes", None);
        assert_eq!(
            c.tick(now, true).as_deref(),
            Some("\r\x1b[K(studio · github: expires in 1:30; studio · whatsapp: expires in 0:02)")
        );
        assert_eq!(c.tick(now, false), None, "no redraws into a pipe");
        // The QR code expires: said once, on its own line, above the remaining countdown.
        assert_eq!(
            c.tick(now + secs(2), true).as_deref(),
            Some("\r\x1b[K(studio · whatsapp: expired: the agent posts a new one)\n(studio · github: expires in 1:28)")
        );
        assert_eq!(
            c.tick(now + secs(3), true).as_deref(),
            Some("\r\x1b[K(studio · github: expires in 1:27)")
        );
        // A new code for the same label counts again.
        c.start("studio · whatsapp", Some(now + secs(23)));
        assert!(c
            .tick(now + secs(3), true)
            .unwrap()
            .contains("whatsapp: expires in 0:20"));
        // Both over: the line is cleared once, then nothing.
        c.end("studio · whatsapp");
        c.end("studio · github");
        assert_eq!(c.tick(now + secs(4), true).as_deref(), Some(CLEAR_LINE));
        assert_eq!(c.tick(now + secs(5), true), None);

        let mut piped = Countdowns::default();
        piped.start("studio · whatsapp", Some(now + secs(1)));
        assert_eq!(
            piped.tick(now + secs(1), false).as_deref(),
            Some("(studio · whatsapp: expired: the agent posts a new one)\n")
        );
        assert_eq!(piped.tick(now + secs(2), false), None);
    }

    #[test]
    fn countdown_words() {
        let now = Utc::now();
        assert_eq!(countdown(None, now), None);
        assert_eq!(
            countdown(Some(now + chrono::Duration::seconds(17)), now).as_deref(),
            Some("expires in 0:17")
        );
        assert!(countdown(Some(now - chrono::Duration::seconds(1)), now)
            .unwrap()
            .starts_with("expired"));
    }
}
