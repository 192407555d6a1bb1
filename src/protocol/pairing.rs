//! Pairing: the one-time pairing code (`tether://pair?url=...&fp=...&secret=...`) and the
//! `POST /v1/pair` exchange that turns it into a device token.

use super::PAIR_LINK_PREFIX;
use crate::secret::{ApiToken, PairingSecret};
use serde::{Deserialize, Serialize};

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
    /// Hex SHA-256 fingerprint of the daemon's certificate (DER), if it uses its own.
    pub fingerprint: Option<String>,
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
}

impl PairingCode {
    /// Renders the code as a `tether://pair?` link.
    pub fn to_link(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("url", &self.url);
        if let Some(fp) = &self.fingerprint {
            q.append_pair("fp", fp);
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
                "fp" => fp = Some(v.into_owned()),
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
            fingerprint: Some("ab".repeat(32)),
            secret: PairingSecret::new("s3cr&t"),
        };
        let parsed = PairingCode::parse(&code.to_link()).unwrap();
        assert_eq!(parsed.url, code.url);
        assert_eq!(parsed.fingerprint, code.fingerprint);
        assert_eq!(parsed.secret.secret(), "s3cr&t");
        assert!(PairingCode::parse("https://x").is_err());
    }
}
