//! The credential record and its on-disk encoding: a header line with schema version,
//! length and SHA-256, then the record as JSON.
//!
//! ```text
//! tether-vault-record schema=1 len=<body bytes> sha256=<hex of body>\n
//! { ...the Record as pretty JSON... }\n
//! ```
//!
//! The checksum covers the exact body bytes, so a file cut short, padded, or overwritten
//! with garbage is detected before a single field is trusted. Decode errors never quote
//! the file's content (it holds tokens): they name a position or a count only.

use crate::secret::{AccessToken, RefreshToken};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt;

/// Version of the record format this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// First word of every record file.
const MAGIC: &str = "tether-vault-record";

/// A header line longer than this is not a header (keeps garbage from being scanned far).
const MAX_HEADER: usize = 256;

/// One generation of one credential.
#[derive(Clone, Serialize, Deserialize)]
pub struct Record {
    /// Record schema version ([`SCHEMA_VERSION`] for records written by this build).
    pub schema: u32,
    /// Credential name, `[a-z0-9][a-z0-9_-]{0,63}`.
    pub name: String,
    /// Provider preset name (`google`, `x`, `generic`, ...).
    pub provider: String,
    /// Account label, when known (a channel name, an e-mail address): shown, never
    /// compared.
    #[serde(default)]
    pub account: Option<String>,
    /// The account's stable id at the provider (`iss sub`, a numeric user id, a channel
    /// id), which the identity pin compares. Absent in records written before ids were
    /// kept (their pin is `account`; see `agent::human::account_pin`), and left out of the file
    /// when unknown, so such records read the same in older builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The current access token, if any.
    #[serde(default)]
    pub access_token: Option<AccessToken>,
    /// The refresh token (or, for paste-kind credentials, the long-lived token).
    #[serde(default)]
    pub refresh_token: Option<RefreshToken>,
    /// Token type, usually `Bearer`.
    pub token_type: String,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// When these tokens were obtained.
    pub obtained_at: DateTime<Utc>,
    /// When the access token stops working, if known.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// When the refresh token stops working, if the provider says so.
    #[serde(default)]
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// Generation number; assigned by [`Vault::commit`](super::Vault::commit).
    pub generation: u64,
    /// Free-form provider extras (an `id_token`, a Google `client_id`, ...).
    #[serde(default)]
    pub extras: Map<String, Value>,
}

impl Record {
    /// A record with no tokens yet, obtained now, `Bearer`, generation 0 (the vault assigns it).
    pub fn new(name: impl Into<String>, provider: impl Into<String>) -> Self {
        Record {
            schema: SCHEMA_VERSION,
            name: name.into(),
            provider: provider.into(),
            account: None,
            account_id: None,
            access_token: None,
            refresh_token: None,
            token_type: "Bearer".into(),
            scopes: Vec::new(),
            obtained_at: Utc::now(),
            expires_at: None,
            refresh_expires_at: None,
            generation: 0,
            extras: Map::new(),
        }
    }
}

impl fmt::Debug for Record {
    // Extras may hold secrets too (an id_token), so only their keys are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("schema", &self.schema)
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("account", &self.account)
            .field("account_id", &self.account_id)
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("token_type", &self.token_type)
            .field("scopes", &self.scopes)
            .field("obtained_at", &self.obtained_at)
            .field("expires_at", &self.expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("generation", &self.generation)
            .field("extras", &self.extras.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a record file could not be read. Never contains the file's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The file has 0 bytes.
    #[error("the file is empty (0 bytes)")]
    Empty,
    /// The file ends before the length its header announces (or inside the header).
    #[error("the file is truncated ({found} of {expected} bytes)")]
    Truncated {
        /// Bytes the header announced (header included).
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// Not a record file at all.
    #[error("the file is not a tether vault record ({0})")]
    Garbage(&'static str),
    /// The body does not match its checksum.
    #[error("the content does not match its sha256 checksum")]
    ChecksumMismatch,
    /// Written by a build with another record format.
    #[error("the record has schema version {found}, this build reads version {SCHEMA_VERSION}")]
    UnsupportedSchema {
        /// The version in the file.
        found: u32,
    },
    /// The checksum matched but the JSON is not a record.
    #[error("the record is not valid ({0})")]
    Unparsable(String),
    /// The record belongs to another slot (a file copied by hand under the wrong name).
    #[error("the record says {found_name} generation {found_generation}, but the file is {expected_name} generation {expected_generation}")]
    Misplaced {
        /// Name from the file name.
        expected_name: String,
        /// Generation from the file name.
        expected_generation: u64,
        /// Name inside the record.
        found_name: String,
        /// Generation inside the record.
        found_generation: u64,
    },
}

impl DecodeError {
    /// Short word for reports: `empty`, `truncated`, `corrupt`, `unsupported`.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::UnsupportedSchema { .. } => "unsupported",
            _ => "corrupt",
        }
    }
}

/// Encodes a record as a file: header line, then the JSON body.
pub fn encode(record: &Record) -> Vec<u8> {
    // Serializing plain data (strings, numbers, maps with string keys) cannot fail.
    let mut body = serde_json::to_vec_pretty(record).expect("a Record always serializes");
    body.push(b'\n');
    let digest = hex::encode(Sha256::digest(&body));
    let mut out = format!(
        "{MAGIC} schema={SCHEMA_VERSION} len={} sha256={digest}\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Decodes and verifies a record file.
pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let Some(nl) = bytes.iter().take(MAX_HEADER).position(|b| *b == b'\n') else {
        // A prefix of a header that never ends is a file cut inside its first line.
        let magic = MAGIC.as_bytes();
        let n = bytes.len().min(magic.len());
        if bytes.len() < MAX_HEADER && bytes[..n] == magic[..n] {
            return Err(DecodeError::Truncated {
                expected: bytes.len() + 1,
                found: bytes.len(),
            });
        }
        return Err(DecodeError::Garbage("no header line"));
    };
    let header = std::str::from_utf8(&bytes[..nl])
        .map_err(|_| DecodeError::Garbage("header is not text"))?;
    let mut words = header.split(' ');
    if words.next() != Some(MAGIC) {
        return Err(DecodeError::Garbage("wrong first word"));
    }
    let (mut schema, mut len, mut sha) = (None, None, None);
    for w in words {
        match w.split_once('=') {
            Some(("schema", v)) => schema = v.parse::<u32>().ok(),
            Some(("len", v)) => len = v.parse::<usize>().ok(),
            Some(("sha256", v)) => sha = Some(v),
            _ => {}
        }
    }
    let schema = schema.ok_or(DecodeError::Garbage("header has no schema"))?;
    if schema != SCHEMA_VERSION {
        return Err(DecodeError::UnsupportedSchema { found: schema });
    }
    let len = len.ok_or(DecodeError::Garbage("header has no length"))?;
    let sha = sha.ok_or(DecodeError::Garbage("header has no checksum"))?;
    let body = &bytes[nl + 1..];
    if body.len() < len {
        return Err(DecodeError::Truncated {
            expected: nl + 1 + len,
            found: bytes.len(),
        });
    }
    if body.len() > len {
        return Err(DecodeError::Garbage("file is longer than its header says"));
    }
    if !hex::encode(Sha256::digest(body)).eq_ignore_ascii_case(sha) {
        return Err(DecodeError::ChecksumMismatch);
    }
    let record: Record = serde_json::from_slice(body).map_err(|e| {
        // serde's message can quote a value (a token): keep only its category and place.
        DecodeError::Unparsable(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    if record.schema != SCHEMA_VERSION {
        return Err(DecodeError::UnsupportedSchema {
            found: record.schema,
        });
    }
    Ok(record)
}

/// Decodes a record file and checks it belongs to the slot `name`/`generation`.
pub fn decode_slot(bytes: &[u8], name: &str, generation: u64) -> Result<Record, DecodeError> {
    let record = decode(bytes)?;
    if record.name != name || record.generation != generation {
        return Err(DecodeError::Misplaced {
            expected_name: name.to_string(),
            expected_generation: generation,
            found_name: record.name,
            found_generation: record.generation,
        });
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        let mut r = Record::new("youtube", "google");
        r.access_token = Some(AccessToken::new("ya29.SECRET-ACCESS"));
        r.refresh_token = Some(RefreshToken::new("1//SECRET-REFRESH"));
        r.generation = 3;
        r.extras
            .insert("id_token".into(), Value::String("SECRET-ID".into()));
        r
    }

    #[test]
    fn round_trip() {
        let bytes = encode(&sample());
        let back = decode_slot(&bytes, "youtube", 3).unwrap();
        assert_eq!(back.refresh_token.unwrap().secret(), "1//SECRET-REFRESH");
        assert_eq!(back.extras["id_token"], "SECRET-ID");
    }

    #[test]
    fn debug_redacts_tokens_and_extras() {
        let dbg = format!("{:?}", sample());
        assert!(!dbg.contains("SECRET"), "{dbg}");
        assert!(dbg.contains("id_token"));
    }

    #[test]
    fn every_truncation_is_detected() {
        let bytes = encode(&sample());
        assert_eq!(decode(&[]).unwrap_err(), DecodeError::Empty);
        for cut in 1..bytes.len() {
            let err = decode(&bytes[..cut]).unwrap_err();
            assert_eq!(err.kind(), "truncated", "cut at {cut}: {err}");
        }
    }

    #[test]
    fn flipped_byte_and_garbage_are_detected() {
        let mut bytes = encode(&sample());
        let last = bytes.len() - 3;
        bytes[last] ^= 0x20;
        assert_eq!(decode(&bytes).unwrap_err(), DecodeError::ChecksumMismatch);
        assert!(matches!(
            decode(b"\x00\x01garbage\n{}").unwrap_err(),
            DecodeError::Garbage(_)
        ));
        let mut longer = encode(&sample());
        longer.extend_from_slice(b"tail");
        assert!(matches!(
            decode(&longer).unwrap_err(),
            DecodeError::Garbage(_)
        ));
    }

    #[test]
    fn other_schema_is_refused() {
        let bytes = encode(&sample());
        let text = String::from_utf8(bytes).unwrap();
        let v2 = text.replacen("schema=1", "schema=2", 1);
        assert_eq!(
            decode(v2.as_bytes()).unwrap_err(),
            DecodeError::UnsupportedSchema { found: 2 }
        );
    }

    #[test]
    fn parse_errors_do_not_quote_secrets() {
        let body = b"{\"schema\":1,\"name\":\"SECRET-VALUE\",\"generation\":\"SECRET\"}\n";
        let mut file = format!(
            "{MAGIC} schema=1 len={} sha256={}\n",
            body.len(),
            hex::encode(Sha256::digest(body))
        )
        .into_bytes();
        file.extend_from_slice(body);
        let err = decode(&file).unwrap_err();
        assert!(matches!(err, DecodeError::Unparsable(_)));
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }

    #[test]
    fn misplaced_record_is_refused() {
        let bytes = encode(&sample());
        assert!(matches!(
            decode_slot(&bytes, "youtube", 4).unwrap_err(),
            DecodeError::Misplaced { .. }
        ));
    }
}
