//! Rendered output files: the token files a user's agent already reads (Google's
//! `authorized_user` JSON, a plain token JSON, an env file), written atomically from the
//! newest generation and re-rendered when wiped or corrupted.
//!
//! Rendering is deterministic (same record, same bytes), so "is this output current?" is a
//! byte comparison with a fresh rendering: a wiped, truncated or hand-edited file differs.

use super::atomic::{self, Kind, ReadError};
use super::error::VaultError;
use super::record::Record;
use crate::secret::ClientSecret;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// One output file to keep rendered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputSpec {
    /// The credential it is rendered from.
    pub credential: String,
    /// Where the file goes (its directory is created 0700 if missing).
    pub path: PathBuf,
    /// What it contains (the `format` key in the config, plus that format's own keys).
    #[serde(flatten)]
    pub format: OutputFormat,
}

impl OutputSpec {
    /// Refuses every output that names an invalid credential, before any is used.
    pub(crate) fn check_all(outputs: &[OutputSpec]) -> Result<(), VaultError> {
        match outputs
            .iter()
            .find(|o| !crate::protocol::valid_credential_name(&o.credential))
        {
            Some(o) => Err(VaultError::Config(format!(
                "output {} names credential {:?}, which is not a valid credential name",
                o.path.display(),
                o.credential
            ))),
            None => Ok(()),
        }
    }
}

/// The content of an output file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum OutputFormat {
    /// Google's `authorized_user` JSON, loadable by google-auth's
    /// `Credentials.from_authorized_user_file`. google-auth insists on a `client_secret` key;
    /// without one configured it is written as an empty string.
    AuthorizedUser {
        /// OAuth client id.
        client_id: String,
        /// OAuth client secret.
        #[serde(default)]
        client_secret: Option<ClientSecret>,
    },
    /// `{access_token, refresh_token, token_type, scope, expires_at, ...}`.
    TokenJson,
    /// `NAME_ACCESS_TOKEN=...` and `NAME_REFRESH_TOKEN=...` lines. Values made only of
    /// token characters (`[A-Za-z0-9_./+=:@%,-]`: every real token) are written unquoted,
    /// as systemd, docker and dotenv read them; any other value is single-quoted, so a
    /// shell that sources the file runs nothing and gets the exact value.
    Env {
        /// Variable for the access token; default `<NAME>_ACCESS_TOKEN`.
        #[serde(default)]
        access_var: Option<String>,
        /// Variable for the refresh token; default `<NAME>_REFRESH_TOKEN`.
        #[serde(default)]
        refresh_var: Option<String>,
    },
}

impl OutputFormat {
    /// Short name as in the config (`authorized_user`, `token_json`, `env`).
    pub fn as_str(&self) -> &'static str {
        match self {
            OutputFormat::AuthorizedUser { .. } => "authorized_user",
            OutputFormat::TokenJson => "token_json",
            OutputFormat::Env { .. } => "env",
        }
    }
}

/// Why an output could not be rendered or written. Messages name the file and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// A symbolic link at the output path.
    #[error("output {path} is a symbolic link; tether does not write through links: point the output at the real file")]
    Symlink {
        /// The output path.
        path: PathBuf,
    },
    /// A directory or device at the output path.
    #[error(
        "output {path} is not a regular file; move what is there away or change the output path"
    )]
    NotAFile {
        /// The output path.
        path: PathBuf,
    },
    /// An env variable name that shells and env-file readers reject.
    #[error("output {path}: {var:?} is not a valid environment variable name; set access_var/refresh_var to names like YOUTUBE_ACCESS_TOKEN")]
    BadVariable {
        /// The output path.
        path: PathBuf,
        /// The name.
        var: String,
    },
    /// A token containing a line break (or NUL) cannot go into an env file: readers that
    /// go line by line (systemd, docker) would take the rest as a variable of its own.
    #[error("output {path}: the {what} of credential {credential} contains a line break and cannot be written to an env file; use a token_json output")]
    BadValue {
        /// The output path.
        path: PathBuf,
        /// The credential.
        credential: String,
        /// Which value.
        what: &'static str,
    },
    /// Writing failed.
    #[error("failed to {step} output {path}")]
    Write {
        /// The output path.
        path: PathBuf,
        /// Which step.
        step: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Renders the content of an output from a record.
pub fn render(spec: &OutputSpec, record: &Record) -> Result<Vec<u8>, OutputError> {
    let access = record.access_token.as_ref().map(|t| t.secret());
    let refresh = record.refresh_token.as_ref().map(|t| t.secret());
    let mut out = match &spec.format {
        OutputFormat::AuthorizedUser {
            client_id,
            client_secret,
        } => {
            let mut v = json!({
                "type": "authorized_user",
                "client_id": client_id,
                "client_secret": client_secret.as_ref().map(|s| s.secret()).unwrap_or(""),
                "refresh_token": refresh,
                "token": access,
                "scopes": record.scopes,
            });
            // google-auth parses `expiry` as naive UTC "%Y-%m-%dT%H:%M:%S" (a trailing Z is
            // stripped), the same form its own `to_json` writes.
            if let Some(exp) = record.expires_at {
                v["expiry"] = Value::String(exp.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            }
            if let Some(account) = &record.account {
                v["account"] = Value::String(account.clone());
            }
            // Serializing a json! value cannot fail.
            serde_json::to_vec_pretty(&v).expect("a json value serializes")
        }
        OutputFormat::TokenJson => {
            let v = json!({
                "access_token": access,
                "refresh_token": refresh,
                "token_type": record.token_type,
                "scope": record.scopes.join(" "),
                "expires_at": record.expires_at.map(|t| t.to_rfc3339()),
                "refresh_expires_at": record.refresh_expires_at.map(|t| t.to_rfc3339()),
                "obtained_at": record.obtained_at.to_rfc3339(),
                "provider": record.provider,
                "account": record.account,
                "generation": record.generation,
            });
            // Serializing a json! value cannot fail.
            serde_json::to_vec_pretty(&v).expect("a json value serializes")
        }
        OutputFormat::Env {
            access_var,
            refresh_var,
        } => {
            let base = record.name.to_ascii_uppercase().replace('-', "_");
            let access_var = access_var
                .clone()
                .unwrap_or_else(|| format!("{base}_ACCESS_TOKEN"));
            let refresh_var = refresh_var
                .clone()
                .unwrap_or_else(|| format!("{base}_REFRESH_TOKEN"));
            let mut text = String::new();
            for (var, what, value) in [
                (&access_var, "access token", access),
                (&refresh_var, "refresh token", refresh),
            ] {
                if !valid_env_name(var) {
                    return Err(OutputError::BadVariable {
                        path: spec.path.clone(),
                        var: var.clone(),
                    });
                }
                let value = value.unwrap_or("");
                if value.contains(['\n', '\r', '\0']) {
                    return Err(OutputError::BadValue {
                        path: spec.path.clone(),
                        credential: record.name.clone(),
                        what,
                    });
                }
                text.push_str(&format!("{var}={}\n", env_value(value)));
            }
            return Ok(text.into_bytes());
        }
    };
    out.push(b'\n');
    Ok(out)
}

/// `value` as the right-hand side of `VAR=` in a file that shells source: unquoted when
/// every character is one that no shell treats specially in an assignment (`~` is left out:
/// `VAR=~/x` and `VAR=a:~` expand), otherwise in single quotes, where nothing is special,
/// with each `'` written as `'\''`. Line breaks never reach here (see `BadValue`).
fn env_value(value: &str) -> std::borrow::Cow<'_, str> {
    let plain = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_./+=:@%,-".contains(&b));
    if plain {
        value.into()
    } else {
        format!("'{}'", value.replace('\'', r"'\''")).into()
    }
}

fn valid_env_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// True when the file at `spec.path` holds exactly `expected`.
pub fn is_current(spec: &OutputSpec, expected: &[u8]) -> Result<bool, OutputError> {
    match atomic::read_file(&spec.path, expected.len() as u64) {
        Ok(bytes) => Ok(bytes == expected),
        // Longer than expected is simply not current.
        Err(ReadError::TooLarge(_)) => Ok(false),
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(ReadError::Symlink) => Err(OutputError::Symlink {
            path: spec.path.clone(),
        }),
        Err(ReadError::NotAFile) => Err(OutputError::NotAFile {
            path: spec.path.clone(),
        }),
        Err(ReadError::Io(source)) => Err(OutputError::Write {
            path: spec.path.clone(),
            step: "read",
            source,
        }),
    }
}

/// Writes an output atomically (0600; its directory created 0700 if missing).
pub fn write(spec: &OutputSpec, bytes: &[u8]) -> Result<(), OutputError> {
    let path = &spec.path;
    let err = |step: &'static str| {
        move |source| OutputError::Write {
            path: path.clone(),
            step,
            source,
        }
    };
    match atomic::kind(path).map_err(err("inspect"))? {
        Kind::Missing | Kind::File => {}
        Kind::Symlink => return Err(OutputError::Symlink { path: path.clone() }),
        Kind::Dir | Kind::Other => return Err(OutputError::NotAFile { path: path.clone() }),
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    atomic::create_private_dir_all(&dir).map_err(err("create the directory of"))?;
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| OutputError::NotAFile { path: path.clone() })?;
    crate::files::write_atomic_in(&dir, file_name, bytes).map_err(|(step, source)| {
        OutputError::Write {
            path: path.clone(),
            step: step.as_str(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{AccessToken, RefreshToken};
    use chrono::TimeZone;

    fn record() -> Record {
        let mut r = Record::new("my-yt", "google");
        r.access_token = Some(AccessToken::new("ya29.a"));
        r.refresh_token = Some(RefreshToken::new("1//r"));
        r.scopes = vec!["s1".into(), "s2".into()];
        r.expires_at = Some(chrono::Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap());
        r.generation = 7;
        r
    }

    fn spec(format: OutputFormat) -> OutputSpec {
        OutputSpec {
            credential: "my-yt".into(),
            path: "/x/out".into(),
            format,
        }
    }

    #[test]
    fn authorized_user_fields() {
        let out = render(
            &spec(OutputFormat::AuthorizedUser {
                client_id: "cid".into(),
                client_secret: Some(ClientSecret::new("cs")),
            }),
            &record(),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["type"], "authorized_user");
        assert_eq!(v["client_id"], "cid");
        assert_eq!(v["client_secret"], "cs");
        assert_eq!(v["refresh_token"], "1//r");
        assert_eq!(v["token"], "ya29.a");
        assert_eq!(v["expiry"], "2030-01-02T03:04:05Z");
    }

    #[test]
    fn env_default_and_custom_names() {
        let out = render(
            &spec(OutputFormat::Env {
                access_var: None,
                refresh_var: None,
            }),
            &record(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "MY_YT_ACCESS_TOKEN=ya29.a\nMY_YT_REFRESH_TOKEN=1//r\n"
        );
        let out = render(
            &spec(OutputFormat::Env {
                access_var: Some("TOK".into()),
                refresh_var: Some("REF".into()),
            }),
            &record(),
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "TOK=ya29.a\nREF=1//r\n");
    }

    #[test]
    fn env_refuses_bad_names_and_line_breaks() {
        let bad = spec(OutputFormat::Env {
            access_var: Some("1X".into()),
            refresh_var: None,
        });
        assert!(matches!(
            render(&bad, &record()),
            Err(OutputError::BadVariable { .. })
        ));
        let mut r = record();
        r.refresh_token = Some(RefreshToken::new("a\nEVIL=1"));
        let env = spec(OutputFormat::Env {
            access_var: None,
            refresh_var: None,
        });
        let err = render(&env, &r).unwrap_err();
        assert!(matches!(err, OutputError::BadValue { .. }));
        assert!(!err.to_string().contains("EVIL"));
    }

    #[test]
    fn env_quotes_values_outside_the_token_alphabet() {
        let mut r = record();
        r.access_token = Some(AccessToken::new("a'b $(x)"));
        let out = render(
            &spec(OutputFormat::Env {
                access_var: Some("A".into()),
                refresh_var: Some("R".into()),
            }),
            &r,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "A='a'\\''b $(x)'\nR=1//r\n"
        );
    }

    #[test]
    fn rendering_is_deterministic() {
        let s = spec(OutputFormat::TokenJson);
        let r = record();
        assert_eq!(render(&s, &r).unwrap(), render(&s, &r.clone()).unwrap());
    }

    #[test]
    fn config_form_deserializes() {
        let spec: OutputSpec = toml::from_str(
            "credential = \"yt\"\npath = \"/a/token.json\"\nformat = \"authorized_user\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
        )
        .unwrap();
        assert!(matches!(spec.format, OutputFormat::AuthorizedUser { .. }));
        let spec: OutputSpec =
            toml::from_str("credential = \"yt\"\npath = \"/a/env\"\nformat = \"env\"\n").unwrap();
        assert!(matches!(spec.format, OutputFormat::Env { .. }));
    }
}
