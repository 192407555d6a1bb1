//! `[[vault.locations]] kind = "openbao"`: where the OpenBao server is, which KV v2 mount
//! and path prefix hold the records, how the daemon logs in, and the HA lease settings.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// An extra vault location beside the directories, as written in the config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[non_exhaustive]
pub enum LocationConfig {
    /// An OpenBao (or HashiCorp Vault) KV version 2 mount.
    Openbao(OpenBaoConfig),
}

fn default_mount() -> String {
    "secret".into()
}

fn default_prefix() -> String {
    "tether".into()
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_lease_ttl() -> Duration {
    Duration::from_secs(15)
}

fn default_approle_mount() -> String {
    "approle".into()
}

/// An OpenBao KV v2 location.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenBaoConfig {
    /// `https://bao.example:8200` (plain http only to a loopback address).
    pub address: String,
    /// The KV version 2 mount (default `secret`).
    #[serde(default = "default_mount")]
    pub mount: String,
    /// Path prefix inside the mount; each credential is the secret `<prefix>/<name>`
    /// (default `tether`). Daemons that share credentials share the prefix.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// A file holding the token (0600).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// An environment variable holding the token (`BAO_TOKEN`).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Log in with AppRole instead of a fixed token.
    #[serde(default)]
    pub approle: Option<AppRoleConfig>,
    /// PEM file of the CA that signed the server's certificate (instead of the public roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Deadline of one request to OpenBao.
    #[serde(default = "default_timeout", with = "crate::duration::humane")]
    pub timeout: Duration,
    /// Elect one refresher per credential among the daemons sharing this location (a
    /// lease kept here); off, every daemon refreshes on its own, as with files.
    #[serde(default)]
    pub ha: bool,
    /// How long a lease lasts unless renewed; renewed every third of it.
    #[serde(default = "default_lease_ttl", with = "crate::duration::humane")]
    pub lease_ttl: Duration,
}

/// AppRole login: `role_id` and `secret_id` read from files.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRoleConfig {
    /// File holding the role id.
    pub role_id_file: PathBuf,
    /// File holding the secret id (0600).
    pub secret_id_file: PathBuf,
    /// Where the AppRole auth method is mounted (default `approle`).
    #[serde(default = "default_approle_mount")]
    pub mount: String,
}

impl OpenBaoConfig {
    /// A config for `address` with a token from `token_file`, defaults elsewhere.
    pub fn with_token_file(address: impl Into<String>, token_file: impl Into<PathBuf>) -> Self {
        OpenBaoConfig {
            address: address.into(),
            mount: default_mount(),
            prefix: default_prefix(),
            token_file: Some(token_file.into()),
            token_env: None,
            approle: None,
            ca_file: None,
            timeout: default_timeout(),
            ha: false,
            lease_ttl: default_lease_ttl(),
        }
    }

    /// Checks the values that can be checked without a network: the address rule, one
    /// way to log in, path segments that cannot escape the mount.
    pub fn validate(&self) -> Result<Url, OpenBaoConfigError> {
        let bad_address = |why| OpenBaoConfigError::Address {
            address: self.address.clone(),
            why,
        };
        let url = Url::parse(&self.address).map_err(|e| bad_address(format!("not a url ({e})")))?;
        if crate::provider::check_endpoint(&url).is_err() {
            return Err(bad_address(
                "not https; use https (plain http is allowed only to 127.0.0.1, ::1 and localhost), since the token and every refresh token travel over it".into(),
            ));
        }
        let ways = [
            self.token_file.is_some(),
            self.token_env.is_some(),
            self.approle.is_some(),
        ]
        .iter()
        .filter(|w| **w)
        .count();
        if ways != 1 {
            return Err(OpenBaoConfigError::Login {
                address: self.address.clone(),
                found: ways,
            });
        }
        for (what, v) in [("mount", &self.mount), ("prefix", &self.prefix)] {
            let ok = !v.is_empty()
                && v.split('/').all(|s| {
                    !s.is_empty()
                        && s != "."
                        && s != ".."
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                });
            if !ok {
                return Err(OpenBaoConfigError::Path {
                    what,
                    value: v.clone(),
                });
            }
        }
        if self.lease_ttl < Duration::from_secs(3) {
            return Err(OpenBaoConfigError::LeaseTtl);
        }
        Ok(url)
    }
}

/// What is wrong with an OpenBao location's settings ([`OpenBaoConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenBaoConfigError {
    /// The address is not a URL, or not one a token may travel to.
    #[error("openbao address {address:?}: {why}")]
    Address {
        /// The configured address.
        address: String,
        /// What is wrong with it.
        why: String,
    },
    /// Not exactly one way to log in.
    #[error("openbao location {address}: set exactly one of token_file, token_env or [approle] (found {found})")]
    Login {
        /// The configured address.
        address: String,
        /// How many were set.
        found: usize,
    },
    /// `mount` or `prefix` could escape its place.
    #[error("openbao {what} {value:?} is not a plain path: use letters, digits, `-`, `_`, `.` and `/` between segments")]
    Path {
        /// `mount` or `prefix`.
        what: &'static str,
        /// The configured value.
        value: String,
    },
    /// A lease shorter than the renewal needs.
    #[error("openbao lease_ttl must be at least 3s")]
    LeaseTtl,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrap {
        locations: Vec<LocationConfig>,
    }

    #[test]
    fn parses_with_defaults_and_refuses_unknown_fields() {
        let w: Wrap = toml::from_str(
            "[[locations]]\nkind = \"openbao\"\naddress = \"https://bao:8200\"\ntoken_env = \"BAO_TOKEN\"\n",
        )
        .unwrap();
        let LocationConfig::Openbao(c) = &w.locations[0];
        assert_eq!(c.mount, "secret");
        assert_eq!(c.prefix, "tether");
        assert!(!c.ha);
        assert!(c.validate().is_ok());
        assert!(toml::from_str::<Wrap>(
            "[[locations]]\nkind = \"openbao\"\naddress = \"https://bao\"\nbogus = 1\n"
        )
        .is_err());
    }

    #[test]
    fn plain_http_is_loopback_only_and_one_login_is_required() {
        let mut c = OpenBaoConfig::with_token_file("http://10.1.2.3:8200", "/t");
        assert!(matches!(
            c.validate(),
            Err(OpenBaoConfigError::Address { .. })
        ));
        assert!(c.validate().unwrap_err().to_string().contains("https"));
        c.address = "http://127.0.0.1:8200".into();
        assert!(c.validate().is_ok());
        c.token_env = Some("X".into());
        assert_eq!(
            c.validate().unwrap_err(),
            OpenBaoConfigError::Login {
                address: c.address.clone(),
                found: 2
            }
        );
        c.token_env = None;
        c.prefix = "../x".into();
        assert!(c.validate().is_err());
    }
}
