//! The OpenBao location: each credential is one KV v2 secret `<prefix>/<name>`, each
//! generation one version of it (`{"generation": N, "record": "<the record file>"}`).
//!
//! Writes are check-and-set against the version this process saw last (the commit lists
//! generations right before it writes), so a daemon whose view is stale gets
//! [`LocationError::Stale`] instead of replacing what another daemon committed. History
//! trimming destroys old versions (their refresh tokens are gone for good); a damaged
//! version is soft-deleted, so it can be inspected with `bao kv undelete`.

use super::client::{KvClient, KvError};
use crate::vault::location::{Location, LocationError};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// What this process last saw of one credential's secret.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// The newest version at the last look (0: no secret).
    current: u64,
    /// Generation stored in each live version (`None`: not a record written by tether).
    gens: BTreeMap<u64, Option<u64>>,
}

/// A KV v2 location on an OpenBao server.
#[derive(Debug)]
pub struct OpenBaoLocation {
    client: Arc<KvClient>,
    prefix: String,
    /// Version → generation never changes once written, so it is read once per version.
    seen: Mutex<HashMap<String, Seen>>,
}

impl OpenBaoLocation {
    /// A location over `client`, keeping records under `prefix`.
    pub fn new(client: Arc<KvClient>, prefix: &str) -> Self {
        OpenBaoLocation {
            client,
            prefix: prefix.trim_matches('/').to_string(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The client (shared with the HA lease).
    pub fn client(&self) -> &Arc<KvClient> {
        &self.client
    }

    /// The KV path of a credential inside the mount.
    pub fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    fn seen(&self) -> parking_lot::MutexGuard<'_, HashMap<String, Seen>> {
        // Only a cache: a panic elsewhere cannot leave it wrong, at worst stale (and CAS
        // catches stale).
        self.seen.lock()
    }

    fn err(&self, e: KvError) -> LocationError {
        let location = self.label();
        match e {
            KvError::Unreachable { detail, .. } => LocationError::Unreachable { location, detail },
            KvError::Denied { op, path, .. } => LocationError::Denied { location, op, path },
            KvError::CasMismatch { path, .. } => LocationError::Stale { location, path },
            other => LocationError::Remote {
                location,
                detail: other.to_string(),
            },
        }
    }

    /// Reads the metadata and the generation of every live version not seen before.
    fn refresh(&self, name: &str) -> Result<Seen, LocationError> {
        let path = self.path(name);
        let meta = self.client.metadata(&path).map_err(|e| self.err(e))?;
        let Some(meta) = meta else {
            self.seen().insert(name.to_string(), Seen::default());
            return Ok(Seen::default());
        };
        let known = self.seen().get(name).cloned().unwrap_or_default();
        let mut next = Seen {
            current: meta.current_version,
            gens: BTreeMap::new(),
        };
        for (v, m) in &meta.versions {
            if !m.live() {
                continue;
            }
            let g = match known.gens.get(v) {
                Some(g) => *g,
                None => match self.client.read(&path, Some(*v)).map_err(|e| self.err(e))? {
                    Some((_, data)) => data.get("generation").and_then(Value::as_u64),
                    // Deleted between the metadata and the read.
                    None => continue,
                },
            };
            next.gens.insert(*v, g);
        }
        self.seen().insert(name.to_string(), next.clone());
        Ok(next)
    }

    /// Live versions holding `generation`, newest first.
    fn versions_of(&self, name: &str, generation: u64) -> Result<Vec<u64>, LocationError> {
        // The cache guard must be gone before `refresh` takes it again.
        let cached = self.seen().get(name).cloned();
        let seen = match cached {
            Some(s) if s.gens.values().any(|g| *g == Some(generation)) => s,
            _ => self.refresh(name)?,
        };
        let mut vs: Vec<u64> = seen
            .gens
            .iter()
            .filter(|(_, g)| **g == Some(generation))
            .map(|(v, _)| *v)
            .collect();
        vs.sort_unstable_by(|a, b| b.cmp(a));
        Ok(vs)
    }

    /// Writes a new version holding `generation`, check-and-set against the version seen
    /// last.
    fn put(&self, name: &str, generation: u64, bytes: &[u8]) -> Result<(), LocationError> {
        let path = self.path(name);
        let cached = self.seen().get(name).map(|s| s.current);
        let cas = match cached {
            Some(c) => c,
            None => self.refresh(name)?.current,
        };
        // Record files are UTF-8 text (a header line and JSON); anything else is a bug.
        let text = String::from_utf8_lossy(bytes);
        let data = json!({ "generation": generation, "record": text });
        let version = self
            .client
            .write(&path, &data, Some(cas))
            .map_err(|e| self.err(e))?;
        let mut seen = self.seen();
        let s = seen.entry(name.to_string()).or_default();
        s.current = version;
        s.gens.insert(version, Some(generation));
        Ok(())
    }
}

impl Location for OpenBaoLocation {
    fn label(&self) -> String {
        // The vault prefixes its role (`openbao`).
        format!(
            "{}/{}/{}",
            self.client.address(),
            self.client.mount(),
            self.prefix
        )
    }

    fn slot_label(&self, name: &str, generation: u64) -> String {
        format!(
            "openbao {}/v1/{}/data/{} (generation {generation})",
            self.client.address(),
            self.client.mount(),
            self.path(name)
        )
    }

    fn prepare(&self) -> Result<Vec<String>, LocationError> {
        // Asking what the token may do writes nothing and answers for paths that do not
        // exist yet; a token that cannot write is a location that cannot be written.
        let mount = self.client.mount();
        let data = format!("{mount}/data/{}/probe", self.prefix);
        let meta = format!("{mount}/metadata/{}/probe", self.prefix);
        let caps = self
            .client
            .capabilities(&[data.clone(), meta.clone()])
            .map_err(|e| self.err(e))?;
        let has = |p: &str, want: &[&str]| {
            let c = caps.get(p).cloned().unwrap_or_default();
            c.iter().any(|x| x == "root") || want.iter().all(|w| c.iter().any(|x| x == w))
        };
        if !has(&data, &["create", "read", "update"]) {
            return Err(LocationError::Denied {
                location: self.label(),
                op: "create, read and update",
                path: data,
            });
        }
        if !has(&meta, &["read", "list"]) {
            return Err(LocationError::Denied {
                location: self.label(),
                op: "read and list",
                path: meta,
            });
        }
        Ok(Vec::new())
    }

    fn credentials(&self) -> Result<Vec<String>, LocationError> {
        let keys = self.client.list(&self.prefix).map_err(|e| self.err(e))?;
        let mut names: Vec<String> = keys
            .into_iter()
            .filter(|k| crate::protocol::valid_credential_name(k))
            .collect();
        names.sort();
        Ok(names)
    }

    fn generations(&self, name: &str) -> Result<Vec<u64>, LocationError> {
        let seen = self.refresh(name)?;
        let mut gens: Vec<u64> = seen.gens.values().flatten().copied().collect();
        gens.sort_unstable();
        gens.dedup();
        Ok(gens)
    }

    fn read(&self, name: &str, generation: u64) -> Result<Vec<u8>, LocationError> {
        let path = self.path(name);
        // A repaired copy is a newer version of the same generation: newest first.
        for v in self.versions_of(name, generation)? {
            if let Some((_, data)) = self.client.read(&path, Some(v)).map_err(|e| self.err(e))? {
                // A version without a text record reads as empty: reconcile repairs it.
                return Ok(data
                    .get("record")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .as_bytes()
                    .to_vec());
            }
        }
        Err(LocationError::Io {
            op: "read",
            path: self.slot_label(name, generation).into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
    }

    fn create(&self, name: &str, generation: u64, bytes: &[u8]) -> Result<(), LocationError> {
        // Judged on what the commit's own listing saw (not a fresh look, which would move
        // the check-and-set version past another daemon's write).
        let cached = self.seen().get(name).cloned();
        let seen = match cached {
            Some(s) => s,
            None => self.refresh(name)?,
        };
        if seen.gens.values().any(|g| *g == Some(generation)) {
            return Err(LocationError::Exists {
                path: self.slot_label(name, generation).into(),
            });
        }
        self.put(name, generation, bytes)
    }

    fn write(&self, name: &str, generation: u64, bytes: &[u8]) -> Result<(), LocationError> {
        self.put(name, generation, bytes)
    }

    fn remove(&self, name: &str, generation: u64) -> Result<(), LocationError> {
        let vs = self.versions_of(name, generation)?;
        if vs.is_empty() {
            return Ok(());
        }
        self.client
            .destroy_versions(&self.path(name), &vs)
            .map_err(|e| self.err(e))?;
        if let Some(s) = self.seen().get_mut(name) {
            for v in &vs {
                s.gens.remove(v);
            }
        }
        Ok(())
    }

    fn quarantine(&self, name: &str, generation: u64) -> Result<String, LocationError> {
        let vs = self.versions_of(name, generation)?;
        self.client
            .delete_versions(&self.path(name), &vs)
            .map_err(|e| self.err(e))?;
        if let Some(s) = self.seen().get_mut(name) {
            for v in &vs {
                s.gens.remove(v);
            }
        }
        let list = vs.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        Ok(format!(
            "soft-deleted version(s) {list} of {}/{} (inspect with `bao kv undelete -versions={list}`)",
            self.client.mount(),
            self.path(name)
        ))
    }

    fn shared(&self) -> bool {
        true
    }

    fn stamp(&self) -> Option<u64> {
        // One list and one metadata read per credential: cheap for a server, and it also
        // tells "OpenBao stopped answering" (None) between commits.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let names = self.credentials().ok()?;
        for n in names {
            let meta = self.client.metadata(&self.path(&n)).ok()?;
            n.hash(&mut h);
            if let Some(m) = meta {
                (m.current_version, m.updated_time).hash(&mut h);
                for (v, vm) in m.versions {
                    (v, vm.deleted, vm.destroyed).hash(&mut h);
                }
            }
        }
        Some(h.finish())
    }
}
