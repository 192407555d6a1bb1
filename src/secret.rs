//! Secret newtypes: values that must never reach a log line, a `Debug` dump or an error.
//!
//! Each type prints `[redacted]`, exposes its value only through `.secret()`, has no
//! `PartialEq` (comparisons go through [`constant_time_eq`]) and serializes as the plain
//! string so it can be stored and sent where it belongs.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            /// The secret itself: call only where it is sent or stored.
            pub fn secret(&self) -> &str {
                &self.0
            }
            /// True when the secret is empty (a wiped or never-set value).
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }
    };
}

secret_type!(
    /// An OAuth access token.
    AccessToken
);
secret_type!(
    /// An OAuth refresh token (or, for paste-kind credentials, the long-lived token itself).
    RefreshToken
);
secret_type!(
    /// An OAuth client secret.
    ClientSecret
);
secret_type!(
    /// A companion's long-lived device token, or an agent token for the user's agent.
    ApiToken
);
secret_type!(
    /// A one-time pairing secret.
    PairingSecret
);
secret_type!(
    /// An OAuth authorization code from the redirect.
    AuthorizationCode
);
secret_type!(
    /// An OpenBao token (read from a file or the environment, or issued by an AppRole
    /// login); it can read every credential the vault keeps there.
    OpenBaoToken
);
secret_type!(
    /// An OpenBao AppRole `secret_id` (read from a file), exchanged for a token at login.
    AppRoleSecretId
);

/// Compares two byte strings in constant time (for tokens, states and hashes).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    // Length is not secret for our fixed-format tokens; the content comparison is.
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A random URL-safe string with `bytes` bytes of entropy (for states, tokens, secrets).
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Hex SHA-256 of a string, used to store only hashes of device and agent tokens.
pub fn sha256_hex(value: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let t = RefreshToken::new("1//0gSECRETVALUE");
        assert_eq!(format!("{t:?}"), "RefreshToken([redacted])");
        assert_eq!(format!("{t}"), "[redacted]");
        assert!(!format!("{t:?} {t}").contains("SECRET"));
        assert_eq!(t.secret(), "1//0gSECRETVALUE");
    }

    #[test]
    fn serializes_as_plain_string() {
        let t = AccessToken::new("ya29.x");
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"ya29.x\"");
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn random_tokens_differ_and_carry_entropy() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
    }
}
