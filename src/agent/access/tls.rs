//! The daemon's TLS identity: a self-signed certificate made on first start (rcgen), kept
//! in the state directory (0600), and its [`Fingerprint`] that pairing codes carry (the
//! client side that pins it is [`crate::pin`]).

use crate::files;
use crate::pin::Fingerprint;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File (in the state directory) holding the certificate and key, PEM.
pub const IDENTITY_FILE: &str = "tls-identity.pem";

/// Why the TLS identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Reading or writing the identity file failed.
    #[error("failed to access the tls identity {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The identity file is not a certificate and key.
    #[error("tls identity {path} is corrupt ({what}); move it away and restart to make a new one (paired devices must then pair again)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// rcgen could not make a certificate.
    #[error("failed to generate a self-signed certificate")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate or key.
    #[error("the tls certificate or key was refused")]
    Rustls(#[from] rustls::Error),
}

/// The certificate and key the daemon serves.
pub struct TlsIdentity {
    /// The certificate, DER.
    pub cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    /// SHA-256 of the certificate DER.
    pub fingerprint: Fingerprint,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Loads the identity from `state_dir`, or makes one (valid for `localhost`, the loopback
/// addresses and `names`) on first use. Returns the identity and whether it is new.
pub fn load_or_create(state_dir: &Path, names: &[String]) -> Result<(TlsIdentity, bool), TlsError> {
    let path = state_dir.join(IDENTITY_FILE);
    let io = |source| TlsError::Io {
        path: path.clone(),
        source,
    };
    files::ensure_private_dir(state_dir).map_err(io)?;
    let mut created = false;
    if !path.exists() {
        let mut sans = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        sans.extend(names.iter().cloned());
        sans.dedup();
        let ck = rcgen::generate_simple_self_signed(sans)?;
        let pem = format!("{}{}", ck.cert.pem(), ck.key_pair.serialize_pem());
        // `tether agent pair` and the daemon may race on first start: whoever links the
        // file first wins and both then read the same identity.
        created = files::create_new(&path, pem.as_bytes()).map_err(io)?;
    }
    let pem = std::fs::read(&path).map_err(io)?;
    let corrupt = |what: &str| TlsError::Corrupt {
        path: path.clone(),
        what: what.to_string(),
    };
    let cert = CertificateDer::pem_slice_iter(&pem)
        .next()
        .ok_or_else(|| corrupt("no certificate"))?
        .map_err(|_| corrupt("unreadable certificate"))?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| corrupt("no private key"))?;
    let fingerprint = Fingerprint::of_der(&cert);
    Ok((
        TlsIdentity {
            cert,
            key,
            fingerprint,
        },
        created,
    ))
}

/// The fingerprint of the identity already in `state_dir` (never makes one): for commands
/// that talk to a running daemon.
pub fn existing_fingerprint(state_dir: &Path) -> Result<Fingerprint, TlsError> {
    let path = state_dir.join(IDENTITY_FILE);
    let pem = std::fs::read(&path).map_err(|source| TlsError::Io {
        path: path.clone(),
        source,
    })?;
    let cert = CertificateDer::pem_slice_iter(&pem)
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| TlsError::Corrupt {
            path,
            what: "no certificate".into(),
        })?;
    Ok(Fingerprint::of_der(&cert))
}

impl TlsIdentity {
    /// A rustls server configuration serving this identity (HTTP/1.1).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_then_reused_with_same_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let (a, created) = load_or_create(dir.path(), &[]).unwrap();
        assert!(created);
        let (b, created) = load_or_create(dir.path(), &[]).unwrap();
        assert!(!created);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint.to_hex().len(), 64);
        let mode = std::fs::metadata(dir.path().join(IDENTITY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        a.server_config().unwrap();
    }

    #[test]
    fn corrupt_identity_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(IDENTITY_FILE), "garbage").unwrap();
        let err = load_or_create(dir.path(), &[]).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }
}
