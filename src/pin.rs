//! The pinned TLS identity, shared by both sides: the [`Fingerprint`] of the daemon's
//! self-signed certificate (what pairing codes carry) and a rustls client configuration
//! that accepts exactly the certificate with that fingerprint.
//!
//! The verifier replaces chain and name validation (no CA, no name check) and still
//! verifies the handshake signatures with the ring provider's algorithms, so only the
//! holder of that certificate's key can answer. A wrong certificate fails with an error
//! that [`pin_mismatch`] finds in the chain, so callers can name both fingerprints.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

use serde::Deserialize;

/// A normalized SHA-256 certificate fingerprint: what the daemon's TLS identity hashes to,
/// what a pairing code carries and what a companion pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Parses 64 hex digits, tolerating `:` separators and upper case.
    pub fn parse(s: &str) -> Result<Fingerprint, BadFingerprint> {
        let clean: String = s.chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(clean.trim()).map_err(|_| BadFingerprint(s.into()))?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| BadFingerprint(s.into()))?;
        Ok(Fingerprint(arr))
    }

    /// Fingerprint of a DER certificate.
    pub fn of_der(der: &[u8]) -> Fingerprint {
        use sha2::Digest;
        Fingerprint(sha2::Sha256::digest(der).into())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// On the wire and in companion.toml: the lower-case hex text.
impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Fingerprint, D::Error> {
        let text = String::deserialize(d)?;
        Fingerprint::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An optional pin as companion.toml spells it: absent or empty means "no pin", as in a
/// pairing code.
pub fn optional<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Fingerprint>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(t) if !t.trim().is_empty() => Fingerprint::parse(&t)
            .map(Some)
            .map_err(serde::de::Error::custom),
        _ => Ok(None),
    }
}

/// How a pairing's certificate is checked, in words: "sha256 3f9a…" when pinned.
pub fn certificate_words(pin: Option<&Fingerprint>) -> String {
    match pin {
        Some(fp) => format!("sha256 {fp}"),
        None => "checked by certificate authorities".into(),
    }
}

/// A fingerprint that is not 64 hex digits (the text as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("certificate fingerprint `{0}` is not a hex sha-256 (64 hex digits); copy the whole pairing code again")]
pub struct BadFingerprint(pub String);

/// Carried inside rustls' error so the client can name both fingerprints.
#[derive(Debug, thiserror::Error)]
#[error("certificate fingerprint {got} does not match the pinned {expected}")]
pub(crate) struct PinMismatch {
    pub(crate) expected: String,
    pub(crate) got: String,
}

/// Accepts exactly the pinned end-entity certificate; verifies handshake signatures.
#[derive(Debug)]
struct PinnedCertVerifier {
    pin: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The pin replaces chain and name validation: the pairing code told us which
        // certificate this agent has, and nothing else is acceptable.
        let got = Fingerprint::of_der(end_entity.as_ref());
        if crate::secret::constant_time_eq(&got.0, &self.pin.0) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(PinMismatch {
                    expected: self.pin.to_hex(),
                    got: got.to_hex(),
                })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A rustls client configuration that accepts exactly the certificate pinned by `pin`
/// (handshake signatures still verified with ring's algorithms).
pub fn pinned_tls_config(pin: &Fingerprint) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCertVerifier {
                pin: pin.clone(),
                provider,
            }))
            .with_no_client_auth(),
    )
}

/// The pinned and the presented fingerprints, when `err` (from a request through a
/// client made with [`pinned_tls_config`]) failed because the certificate did not match.
pub fn pin_mismatch(err: &(dyn std::error::Error + 'static)) -> Option<(String, String)> {
    find_pin_mismatch(err).map(|m| (m.expected.clone(), m.got.clone()))
}

/// Walks an error chain (through `io::Error` wrappers, whose `source()` skips the inner
/// error) looking for our pin mismatch inside rustls' error.
pub(crate) fn find_pin_mismatch<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a PinMismatch> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) =
            e.downcast_ref::<rustls::Error>()
        {
            return other.0.downcast_ref::<PinMismatch>();
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(m) = find_pin_mismatch(inner) {
                    return Some(m);
                }
            }
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_normalize() {
        let hex = "AB".repeat(32);
        let colon = vec!["ab"; 32].join(":");
        assert_eq!(
            Fingerprint::parse(&hex).unwrap(),
            Fingerprint::parse(&colon).unwrap()
        );
        assert!(Fingerprint::parse("abcd").is_err());
        assert!(Fingerprint::parse(&"zz".repeat(32)).is_err());
    }
}
