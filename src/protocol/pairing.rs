//! Pairing: the one-time pairing code (`tether://pair?url=...&fp=...&secret=...`) and the
//! `POST /v1/pair` exchange that turns it into a device token.

use crate::pin::{BadFingerprint, Fingerprint};
use crate::secret::{ApiToken, PairingSecret};
use serde::{Deserialize, Serialize};

/// The URL scheme of pairing links (`tether://pair?...`).
pub const PAIR_LINK_PREFIX: &str = "tether://pair?";

/// `POST /v1/pair` request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairRequest {
    /// The single-use secret from the pairing code.
    pub secret: PairingSecret,
    /// A label for the device (host name of the laptop).
    pub device_name: String,
}

/// `POST /v1/pair` reply.
#[derive(Debug, Serialize, Deserialize)]
pub struct PairResponse {
    /// The agent's name.
    pub agent: String,
    /// Id of the new device, for `tether agent revoke`.
    pub device_id: String,
    /// Long-lived device token; the daemon keeps only its hash.
    pub device_token: ApiToken,
    /// Daemon protocol version.
    pub protocol: u32,
    /// Daemon version.
    pub version: String,
}

/// The contents of a pairing code: `tether://pair?url=...&fp=...&secret=...`.
#[derive(Debug, Clone)]
pub struct PairingCode {
    /// Base URL of the daemon, e.g. `https://studio.example:7443`.
    pub url: String,
    /// The daemon's certificate fingerprint, if it uses its own (`None`: CA validation).
    pub fingerprint: Option<Fingerprint>,
    /// The single-use secret.
    pub secret: PairingSecret,
}

/// Why a pairing code could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PairingCodeError {
    /// Not a `tether://pair?` link.
    #[error("not a pairing code: it must start with `{PAIR_LINK_PREFIX}`; copy the whole line printed by `tether agent pair`")]
    WrongPrefix,
    /// A required field is missing.
    #[error("pairing code has no `{0}` field; copy the whole line printed by `tether agent pair`")]
    Missing(&'static str),
    /// The `fp` field is not a certificate fingerprint.
    #[error("pairing code has a bad `fp` field")]
    BadFingerprint(#[source] BadFingerprint),
}

impl PairingCode {
    /// Renders the code as a `tether://pair?` link.
    pub fn to_link(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("url", &self.url);
        if let Some(fp) = &self.fingerprint {
            q.append_pair("fp", &fp.to_hex());
        }
        q.append_pair("secret", self.secret.secret());
        format!("{PAIR_LINK_PREFIX}{}", q.finish())
    }

    /// Parses a `tether://pair?` link.
    pub fn parse(code: &str) -> Result<Self, PairingCodeError> {
        let query = code
            .trim()
            .strip_prefix(PAIR_LINK_PREFIX)
            .ok_or(PairingCodeError::WrongPrefix)?;
        let (mut url, mut fp, mut secret) = (None, None, None);
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "url" => url = Some(v.into_owned()),
                "fp" if v.is_empty() => fp = None,
                "fp" => {
                    fp = Some(Fingerprint::parse(&v).map_err(PairingCodeError::BadFingerprint)?)
                }
                "secret" => secret = Some(PairingSecret::new(v.into_owned())),
                _ => {}
            }
        }
        Ok(PairingCode {
            url: url.ok_or(PairingCodeError::Missing("url"))?,
            fingerprint: fp,
            secret: secret.ok_or(PairingCodeError::Missing("secret"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_code_round_trip() {
        let code = PairingCode {
            url: "https://127.0.0.1:7443".into(),
            fingerprint: Some(Fingerprint::parse(&"ab".repeat(32)).unwrap()),
            secret: PairingSecret::new("s3cr&t"),
        };
        let parsed = PairingCode::parse(&code.to_link()).unwrap();
        assert_eq!(parsed.url, code.url);
        assert_eq!(parsed.fingerprint, code.fingerprint);
        assert_eq!(parsed.secret.secret(), "s3cr&t");
        assert!(PairingCode::parse("https://x").is_err());
    }

    #[test]
    fn a_bad_fingerprint_is_refused_when_the_code_is_read() {
        let err = PairingCode::parse("tether://pair?url=https%3A%2F%2Fx&fp=nothex&secret=s")
            .expect_err("a fingerprint that is not 64 hex digits");
        let msg = crate::report::chain(&err);
        assert!(
            msg.contains("`fp`") && msg.contains("nothex") && msg.contains("copy the whole"),
            "{msg}"
        );
        // An empty `fp=` means "no pin" (CA validation), as before.
        let code = PairingCode::parse("tether://pair?url=https%3A%2F%2Fx&fp=&secret=s").unwrap();
        assert!(code.fingerprint.is_none());
    }
}
