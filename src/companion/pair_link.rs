//! What a `tether://pair` link that another program opened asks for, in words, before the
//! owner pairs: which daemon (host and port) and which certificate it would pin.
//!
//! Any program on the laptop (a web page through the browser, a chat message) can open a
//! `tether://` link. Pairing with a daemon an attacker runs would make the tray show the
//! attacker's prompts as Tether's own, so the pair dialog says that a link from another
//! program opened it, shows where that link points in words rather than as an encoded
//! blob, and never replaces a code the owner already typed (`ui/app.js` decides that
//! last part; the words are made here).

use crate::pin::Fingerprint;
use crate::protocol::{PairingCode, PairingCodeError};
use serde::Serialize;

/// The first words of the dialog when a link opened it.
pub const OPENED_BY_LINK: &str = "Opened by a link from another program.";

/// A pairing link, as the pair dialog shows it. Carries no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairLinkPreview {
    /// The daemon's host and port (`studio.example:7443`), or the whole URL when it has
    /// no host.
    pub host: String,
    /// The daemon's URL as the link gives it.
    pub url: String,
    /// The certificate the pairing would pin, in words: `sha256 3f9a 1c2b …` (sixteen
    /// groups of four hex digits, as `tether agent pair` prints it), or "checked by
    /// certificate authorities".
    pub certificate: String,
    /// The whole notice: who opened the dialog, where the link points, and what to check.
    pub words: String,
}

/// Reads a pairing link for the dialog. Fails as [`PairingCode::parse`] does.
pub fn preview(link: &str) -> Result<PairLinkPreview, PairingCodeError> {
    let code = PairingCode::parse(link)?;
    let host = match url::Url::parse(&code.url) {
        Ok(u) => match (u.host_str(), u.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => code.url.clone(),
        },
        Err(_) => code.url.clone(),
    };
    let certificate = certificate_in_words(code.fingerprint.as_ref());
    let words = format!(
        "{OPENED_BY_LINK} It asks to pair this computer with the agent at {host} (certificate {certificate}). \
         Pair only if you just ran `tether agent pair` on that server and it printed this host and certificate."
    );
    Ok(PairLinkPreview {
        host,
        url: code.url,
        certificate,
        words,
    })
}

/// `sha256 3f9a 1c2b …`: the fingerprint in groups of four hex digits, easier to compare
/// by eye than one 64-digit run; "checked by certificate authorities" without a pin.
pub fn certificate_in_words(pin: Option<&Fingerprint>) -> String {
    let Some(fp) = pin else {
        return crate::pin::certificate_words(None);
    };
    let hex = fp.to_hex();
    let groups: Vec<&str> = hex
        .as_bytes()
        .chunks(4)
        // Hex digits are ASCII, so every chunk is valid UTF-8.
        .map(|c| std::str::from_utf8(c).expect("hex is ascii"))
        .collect();
    format!("sha256 {}", groups.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::PairingSecret;

    #[test]
    fn a_link_is_shown_as_its_host_and_certificate_in_words_without_its_secret() {
        let link = PairingCode {
            url: "https://studio.example:7443".into(),
            fingerprint: Some(Fingerprint::parse(&"3f9a".repeat(16)).unwrap()),
            secret: PairingSecret::new("the-one-time-secret"),
        }
        .to_link();
        let p = preview(&link).unwrap();
        assert_eq!(p.host, "studio.example:7443");
        assert_eq!(p.certificate, format!("sha256 {}", ["3f9a"; 16].join(" ")));
        assert!(p
            .words
            .starts_with("Opened by a link from another program."));
        assert!(
            p.words.contains("the agent at studio.example:7443"),
            "{}",
            p.words
        );
        assert!(p.words.contains(&p.certificate), "{}", p.words);
        let shown = serde_json::to_string(&p).unwrap();
        assert!(!shown.contains("the-one-time-secret"), "{shown}");
    }

    #[test]
    fn a_link_without_a_pin_or_a_port_says_so() {
        let link = "tether://pair?url=https%3A%2F%2Fagent.example&fp=&secret=s";
        let p = preview(link).unwrap();
        assert_eq!(p.host, "agent.example:443");
        assert_eq!(p.certificate, "checked by certificate authorities");
        assert!(preview("https://not-a-pairing-link").is_err());
    }
}
