//! `tether agent add` / `tether agent remove`: edits `agent.toml` in place, keeping the
//! operator's comments and layout (`toml_edit`), and writes nothing unless the result is a
//! valid config.
//!
//! Each edit reads the file, changes the `[[credentials]]` array, checks the whole new text
//! with [`config::parse_str`] and the new credential's provider with the daemon's own
//! resolution, and only then replaces the file atomically with its old mode and owner. A
//! lock file next to it keeps two editors from losing each other's change. A running
//! daemon picks the change up on SIGHUP (`systemctl reload tether-agent`).

use super::agent as config;
use super::credential::OutputKind;
use super::error::ConfigError;
use crate::protocol::valid_credential_name;
use crate::provider::{self, CredentialKind};
use std::path::{Path, PathBuf};
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table};

/// Why an edit was refused; nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigEditError {
    /// The file could not be read.
    #[error("failed to read agent config {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("agent config {path} is not valid TOML ({message}); fix it by hand first")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's words.
        message: String,
    },
    /// `credentials` is not an array of `[[credentials]]` tables.
    #[error("agent config {path}: `credentials` is not a list of [[credentials]] tables; edit it by hand")]
    Shape {
        /// The file.
        path: PathBuf,
    },
    /// The name does not fit the credential-name rule.
    #[error("credential name `{0}` is not allowed; use 1-64 of a-z, 0-9, `_` and `-`, starting with a letter or digit")]
    BadName(String),
    /// The provider is unknown or unusable as given.
    #[error("credential {name}")]
    Provider {
        /// The credential.
        name: String,
        /// The provider module's words (they list the known presets).
        #[source]
        source: provider::ProviderError,
    },
    /// An OAuth provider without a client id.
    #[error("credential {name}: provider {provider} is OAuth and needs --client-id (from the provider's developer console)")]
    MissingClientId {
        /// The credential.
        name: String,
        /// The provider.
        provider: String,
    },
    /// A client secret file that does not exist.
    #[error("credential {name}: client secret file {path} does not exist; write the secret into it first (first line, mode 0600)")]
    MissingSecretFile {
        /// The credential.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// `--output` not in `PATH:FORMAT` form.
    #[error("output `{0}` is not PATH:FORMAT; FORMAT is authorized_user, token_json or env")]
    BadOutput(String),
    /// A credential of that name exists already.
    #[error(
        "credential {name} is already in {path}; remove it first with `tether agent remove {name}`"
    )]
    Exists {
        /// The credential.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// No credential of that name.
    #[error("no credential {name} in {path} (it has: {known})")]
    NotFound {
        /// The credential.
        name: String,
        /// The file.
        path: PathBuf,
        /// The names it has.
        known: String,
    },
    /// The edited config would not be valid.
    #[error("the edited config would not be valid, so nothing was written")]
    Invalid(#[source] ConfigError),
    /// The file could not be written.
    #[error("failed to write agent config {path}; nothing was changed")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// One rendered output of a new credential (`--output PATH:FORMAT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutput {
    /// Where to write it.
    pub path: PathBuf,
    /// Its format.
    pub format: OutputKind,
}

impl std::str::FromStr for NewOutput {
    type Err = ConfigEditError;

    /// `PATH:FORMAT`; split at the last `:` so a path may hold colons.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ConfigEditError::BadOutput(s.to_string());
        let (path, format) = s.rsplit_once(':').ok_or_else(bad)?;
        let format = match format {
            "authorized_user" => OutputKind::AuthorizedUser,
            "token_json" => OutputKind::TokenJson,
            "env" => OutputKind::Env,
            _ => return Err(bad()),
        };
        if path.is_empty() {
            return Err(bad());
        }
        Ok(NewOutput {
            path: PathBuf::from(path),
            format,
        })
    }
}

/// What `tether agent add` puts in a new `[[credentials]]` table.
#[derive(Debug, Clone, Default)]
pub struct NewCredential {
    /// Credential name.
    pub name: String,
    /// Provider preset.
    pub provider: String,
    /// Issuer for OIDC discovery (`generic`).
    pub issuer: Option<String>,
    /// OAuth client id.
    pub client_id: Option<String>,
    /// File holding the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// Scopes (empty: the preset's).
    pub scopes: Vec<String>,
    /// Output files.
    pub outputs: Vec<NewOutput>,
}

/// Adds `new` to the config at `path`. Returns the new text (also written).
pub fn add(path: &Path, new: &NewCredential) -> Result<String, ConfigEditError> {
    if !valid_credential_name(&new.name) {
        return Err(ConfigEditError::BadName(new.name.clone()));
    }
    let preset =
        provider::preset_or_error(&new.provider).map_err(|source| ConfigEditError::Provider {
            name: new.name.clone(),
            source,
        })?;
    if preset.kind == CredentialKind::OAuth && new.client_id.is_none() {
        return Err(ConfigEditError::MissingClientId {
            name: new.name.clone(),
            provider: new.provider.clone(),
        });
    }
    if let Some(f) = &new.client_secret_file {
        if !f.exists() {
            return Err(ConfigEditError::MissingSecretFile {
                name: new.name.clone(),
                path: f.clone(),
            });
        }
    }
    let _lock = lock(path)?;
    edit(path, |doc| {
        let creds = credentials(doc, path, true)?.expect("created when missing");
        if creds
            .iter()
            .any(|t| t.get("name").and_then(Item::as_str) == Some(&new.name))
        {
            return Err(ConfigEditError::Exists {
                name: new.name.clone(),
                path: path.to_path_buf(),
            });
        }
        creds.push(table_for(new));
        Ok(())
    })
    .and_then(|text| {
        // The daemon resolves the provider when it (re)loads; an unusable one (a generic
        // provider with neither issuer nor endpoints) would fail the reload, so it fails here.
        let cfg = config::parse_str(&text).map_err(ConfigEditError::Invalid)?;
        let c = cfg
            .credential(&new.name)
            .expect("the credential was just added");
        c.base_provider()
            .map_err(|source| ConfigEditError::Provider {
                name: new.name.clone(),
                source,
            })?;
        write(path, &text)?;
        Ok(text)
    })
}

/// Removes credential `name` from the config at `path` (its own comments go with it; the
/// rest of the file is untouched). The vault's records are kept. Returns the new text.
pub fn remove(path: &Path, name: &str) -> Result<String, ConfigEditError> {
    if !valid_credential_name(name) {
        return Err(ConfigEditError::BadName(name.to_string()));
    }
    let _lock = lock(path)?;
    let text = edit(path, |doc| {
        let creds = credentials(doc, path, false)?;
        let names: Vec<String> = creds
            .as_ref()
            .map(|c| {
                c.iter()
                    .filter_map(|t| t.get("name").and_then(Item::as_str).map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let Some(i) = names.iter().position(|n| n == name) else {
            return Err(ConfigEditError::NotFound {
                name: name.to_string(),
                path: path.to_path_buf(),
                known: if names.is_empty() {
                    "no credentials".into()
                } else {
                    names.join(", ")
                },
            });
        };
        let creds = creds.expect("a name was found in it");
        let removed = creds.get(i).expect("index from the same list");
        let last = last_position(removed);
        let kept = unattached_comments(removed.decor().prefix().and_then(|p| p.as_str()));
        creds.remove(i);
        // Comments above the removed table that were separated from its header by a blank
        // line belong to what came before it (the `[tls]` section's commented keys, say):
        // they move to the next table instead of leaving with it.
        if !kept.is_empty() {
            keep_before_next(doc, last, &kept);
        }
        Ok(())
    })?;
    config::parse_str(&text).map_err(ConfigEditError::Invalid)?;
    write(path, &text)?;
    Ok(text)
}

/// Reads and parses `path`, applies `change`, and returns the new text (not written).
fn edit(
    path: &Path,
    change: impl FnOnce(&mut DocumentMut) -> Result<(), ConfigEditError>,
) -> Result<String, ConfigEditError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigEditError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut doc: DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigEditError::Syntax {
                path: path.to_path_buf(),
                message: e.message().to_string(),
            })?;
    change(&mut doc)?;
    Ok(doc.to_string())
}

/// Calls `f` on every table below `t`, depth first, in document order.
fn visit_tables(t: &mut Table, f: &mut dyn FnMut(&mut Table)) {
    for (_, item) in t.iter_mut() {
        match item {
            Item::Table(sub) => {
                f(sub);
                visit_tables(sub, f);
            }
            Item::ArrayOfTables(a) => {
                for sub in a.iter_mut() {
                    f(sub);
                    visit_tables(sub, f);
                }
            }
            _ => {}
        }
    }
}

/// The largest document position of `t` and the tables inside it.
fn last_position(t: &Table) -> Option<usize> {
    let mut copy = t.clone();
    let mut last = t.position();
    visit_tables(&mut copy, &mut |s| last = last.max(s.position()));
    last
}

/// The part of a header's prefix that is not its own comment: everything up to and
/// including the last blank line.
fn unattached_comments(prefix: Option<&str>) -> String {
    let prefix = prefix.unwrap_or("");
    let lines: Vec<&str> = prefix.split_inclusive('\n').collect();
    match lines.iter().rposition(|l| l.trim().is_empty()) {
        Some(i) => lines[..=i].concat(),
        None => String::new(),
    }
}

/// Puts `text` in front of the first table after position `after` (or at the end).
fn keep_before_next(doc: &mut DocumentMut, after: Option<usize>, text: &str) {
    let mut next: Option<usize> = None;
    visit_tables(doc.as_table_mut(), &mut |t| {
        if let (Some(p), Some(a)) = (t.position(), after) {
            if p > a && next.is_none_or(|n| p < n) {
                next = Some(p);
            }
        }
    });
    let mut placed = false;
    if let Some(n) = next {
        visit_tables(doc.as_table_mut(), &mut |t| {
            if !placed && t.position() == Some(n) {
                let old = t.decor().prefix().and_then(|p| p.as_str()).unwrap_or("");
                let joined = format!("{text}{old}");
                t.decor_mut().set_prefix(joined);
                placed = true;
            }
        });
    }
    if !placed {
        let old = doc.trailing().as_str().unwrap_or("").to_string();
        doc.set_trailing(format!("{text}{old}"));
    }
}

/// The `[[credentials]]` array, created when `create` and missing.
fn credentials<'d>(
    doc: &'d mut DocumentMut,
    path: &Path,
    create: bool,
) -> Result<Option<&'d mut ArrayOfTables>, ConfigEditError> {
    if !doc.contains_key("credentials") {
        if !create {
            return Ok(None);
        }
        doc.insert("credentials", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    doc["credentials"]
        .as_array_of_tables_mut()
        .map(Some)
        .ok_or_else(|| ConfigEditError::Shape {
            path: path.to_path_buf(),
        })
}

/// The `[[credentials]]` table for `new`, with a comment saying where it came from.
fn table_for(new: &NewCredential) -> Table {
    let mut t = Table::new();
    t.decor_mut().set_prefix(format!(
        "\n# Added by `tether agent add` on {}.\n",
        chrono::Utc::now().format("%Y-%m-%d")
    ));
    t["name"] = toml_edit::value(&new.name);
    t["provider"] = toml_edit::value(&new.provider);
    if let Some(i) = &new.issuer {
        t["issuer"] = toml_edit::value(i);
    }
    if let Some(c) = &new.client_id {
        t["client_id"] = toml_edit::value(c);
    }
    if let Some(f) = &new.client_secret_file {
        t["client_secret_file"] = toml_edit::value(f.display().to_string());
    }
    if !new.scopes.is_empty() {
        t["scopes"] = toml_edit::value(new.scopes.iter().collect::<Array>());
    }
    if !new.outputs.is_empty() {
        let mut outs = ArrayOfTables::new();
        for o in &new.outputs {
            let mut ot = Table::new();
            ot["path"] = toml_edit::value(o.path.display().to_string());
            ot["format"] = toml_edit::value(match o.format {
                OutputKind::AuthorizedUser => "authorized_user",
                OutputKind::TokenJson => "token_json",
                OutputKind::Env => "env",
            });
            if o.format == OutputKind::Env {
                // An env output needs variable names; these follow the credential's name.
                let stem = new.name.to_ascii_uppercase().replace('-', "_");
                ot["access_var"] = toml_edit::value(format!("{stem}_ACCESS_TOKEN"));
                ot["refresh_var"] = toml_edit::value(format!("{stem}_REFRESH_TOKEN"));
            }
            outs.push(ot);
        }
        t["outputs"] = Item::ArrayOfTables(outs);
    }
    t
}

/// Held from the read to the write, so two editors never lose each other's change.
fn lock(path: &Path) -> Result<crate::files::FileLock, ConfigEditError> {
    let lock_path = path.with_file_name(format!(
        ".{}.lock",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    crate::files::FileLock::acquire(&lock_path).map_err(|source| ConfigEditError::Write {
        path: lock_path,
        source,
    })
}

fn write(path: &Path, text: &str) -> Result<(), ConfigEditError> {
    crate::files::replace_keeping_mode(path, text.as_bytes()).map_err(|source| {
        ConfigEditError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_specs_parse_at_the_last_colon() {
        let o: NewOutput = "/srv/a:b/token.json:token_json".parse().unwrap();
        assert_eq!(o.path, PathBuf::from("/srv/a:b/token.json"));
        assert_eq!(o.format, OutputKind::TokenJson);
        assert!("/srv/token.json".parse::<NewOutput>().is_err());
        assert!("/srv/token.json:yaml".parse::<NewOutput>().is_err());
        assert!(":env".parse::<NewOutput>().is_err());
    }
}
