//! The PKCE code verifier (RFC 7636): single use, never cloned, never printed.

use crate::provider::PkceMode;
use std::fmt;

/// A PKCE code verifier. It is not `Clone`: [`exchange`](super::exchange) consumes it, so
/// one authorization can be redeemed at most once with it.
pub struct PkceVerifier(oauth2::PkceCodeVerifier);

impl PkceVerifier {
    /// A fresh verifier (32 random bytes, base64url: 43 characters) and its challenge for
    /// `mode` as `(code_challenge, code_challenge_method)`, or `None` when PKCE is off.
    pub(crate) fn generate(mode: PkceMode) -> (Self, Option<(String, &'static str)>) {
        let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        let challenge = match mode {
            PkceMode::None => None,
            PkceMode::S256 => Some((challenge.as_str().to_owned(), "S256")),
            PkceMode::S256Hex => {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(verifier.secret().as_bytes());
                Some((hex::encode(digest), "S256"))
            }
        };
        (PkceVerifier(verifier), challenge)
    }

    /// The verifier itself: call only where it is sent to the token endpoint.
    pub fn secret(&self) -> &str {
        self.0.secret()
    }

    /// The S256 challenge of this verifier (for tests and for a daemon re-sending a URL).
    pub fn s256_challenge(&self) -> String {
        oauth2::PkceCodeChallenge::from_code_verifier_sha256(&self.0)
            .as_str()
            .to_owned()
    }
}

impl fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PkceVerifier([redacted])")
    }
}
