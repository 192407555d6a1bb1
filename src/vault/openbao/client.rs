//! A small, blocking OpenBao KV version 2 client over reqwest: login (token or AppRole),
//! read a version, check-and-set write, metadata, list, soft-delete and destroy versions,
//! and the token's capabilities. Only what the vault location and the HA lease need.
//!
//! Blocking because the vault is synchronous (`std::fs`, called through `spawn_blocking`);
//! never call it on an async runtime thread.

use super::config::{AppRoleConfig, OpenBaoConfig};
use super::relogin::{LoginState, OnDenied};
use crate::secret::{AppRoleSecretId, OpenBaoToken};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use url::Url;

/// What went wrong talking to OpenBao. Messages name the server and the path, never a
/// token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// No answer (connection refused, timeout, TLS failure).
    #[error("cannot reach OpenBao at {address} ({detail}); check that it runs and that the address and CA file are right")]
    Unreachable {
        /// The server.
        address: String,
        /// The transport error, with its causes.
        detail: String,
    },
    /// 403: the token may not do this.
    #[error("OpenBao at {address} refused to {op} {path}: permission denied; give the daemon's token the policy in dist/openbao-policy.hcl")]
    Denied {
        /// The server.
        address: String,
        /// What was tried.
        op: &'static str,
        /// The API path.
        path: String,
    },
    /// A check-and-set write whose expected version is no longer the current one.
    #[error("OpenBao at {address}: {path} changed since it was read (check-and-set refused the write; current version is newer than {expected})")]
    CasMismatch {
        /// The server.
        address: String,
        /// The API path.
        path: String,
        /// The version the write expected to replace.
        expected: u64,
    },
    /// Logging in failed (no token file, a refused AppRole secret id).
    #[error("cannot log in to OpenBao at {address}: {detail}")]
    Login {
        /// The server.
        address: String,
        /// What failed and how to fix it.
        detail: String,
    },
    /// Sealed, standby without forwarding, an unexpected status or body.
    #[error("OpenBao at {address} answered {op} {path} with HTTP {status}: {detail}")]
    Server {
        /// The server.
        address: String,
        /// What was tried.
        op: &'static str,
        /// The API path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// OpenBao's `errors`, or a description of the body.
        detail: String,
    },
    /// The config cannot work (unreadable CA file, no HTTP client).
    #[error("openbao location: {0}")]
    Config(String),
    /// The location's settings break a rule.
    #[error(transparent)]
    BadConfig(#[from] super::config::OpenBaoConfigError),
}

/// A version number and that version's data.
pub type VersionData = (u64, Map<String, Value>);

/// One version's state in the secret's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionMeta {
    /// Soft-deleted (`bao kv delete`): unreadable until undeleted.
    pub deleted: bool,
    /// Destroyed: its data is gone for good.
    pub destroyed: bool,
}

impl VersionMeta {
    /// Readable: neither deleted nor destroyed.
    pub fn live(&self) -> bool {
        !self.deleted && !self.destroyed
    }
}

/// A secret's metadata: its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The newest version (0 when every version was deleted with the metadata).
    pub current_version: u64,
    /// `updated_time` as OpenBao wrote it.
    pub updated_time: String,
    /// Every version OpenBao still lists.
    pub versions: BTreeMap<u64, VersionMeta>,
}

/// A KV v2 mount on one OpenBao server, with the login that reaches it.
pub struct KvClient {
    http: reqwest::blocking::Client,
    base: Url,
    address: String,
    mount: String,
    login: Login,
    held: Mutex<Held>,
}

/// The token in use and the logins so far (see `relogin` for when another is allowed).
#[derive(Default)]
struct Held {
    token: Option<OpenBaoToken>,
    logins: LoginState,
    /// Why the last login failed, while backing off after it.
    last_refusal: Option<String>,
}

enum Login {
    TokenFile(std::path::PathBuf),
    TokenEnv(String),
    AppRole(AppRoleConfig),
}

impl std::fmt::Debug for KvClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvClient")
            .field("address", &self.address)
            .field("mount", &self.mount)
            .finish_non_exhaustive()
    }
}

impl KvClient {
    /// A client for the location `cfg` describes (nothing is sent until the first call).
    pub fn new(cfg: &OpenBaoConfig) -> Result<KvClient, KvError> {
        let base = cfg.validate()?;
        let mut b = reqwest::blocking::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(std::time::Duration::from_secs(2)))
            // A token must never follow a redirect to another host.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                KvError::Config(format!(
                    "cannot read the CA file {} ({e}); point ca_file at the PEM of the CA that signed OpenBao's certificate",
                    ca.display()
                ))
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                KvError::Config(format!("{} is not a PEM certificate ({e})", ca.display()))
            })?;
            b = b.tls_built_in_root_certs(false).add_root_certificate(cert);
        }
        let http = b.build().map_err(|e| {
            KvError::Config(format!(
                "cannot build the HTTP client: {}",
                crate::report::chain(&e)
            ))
        })?;
        let login = match (&cfg.token_file, &cfg.token_env, &cfg.approle) {
            (Some(f), _, _) => Login::TokenFile(f.clone()),
            (_, Some(v), _) => Login::TokenEnv(v.clone()),
            (_, _, Some(a)) => Login::AppRole(a.clone()),
            // validate() requires exactly one.
            _ => unreachable!("validate() requires one way to log in"),
        };
        Ok(KvClient {
            http,
            address: base.as_str().trim_end_matches('/').to_string(),
            base,
            mount: cfg.mount.trim_matches('/').to_string(),
            login,
            held: Mutex::new(Held::default()),
        })
    }

    /// The server's address, for labels.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The KV mount.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    fn url(&self, api_path: &str) -> Url {
        // The path segments were checked by validate(); credential names are plain.
        self.base
            .join(&format!("v1/{api_path}"))
            .expect("a checked base url joins a plain path")
    }

    /// The token to use and the login it came from; logs in when none is held, unless the
    /// last logins did not help and the wait is not over.
    fn token(&self) -> Result<(OpenBaoToken, u64), KvError> {
        let mut held = self.held.lock();
        if let Some(t) = held.token.as_ref() {
            return Ok((t.clone(), held.logins.generation));
        }
        let now = std::time::Instant::now();
        if let Err(left) = held.logins.may_login(now) {
            return Err(KvError::Login {
                address: self.address.clone(),
                detail: format!(
                    "the last login did not help ({}); the next is tried in {} s. Check the daemon's policy (dist/openbao-policy.hcl) and login settings",
                    held.last_refusal
                        .as_deref()
                        .unwrap_or("its token was denied at once"),
                    left.as_secs().max(1)
                ),
            });
        }
        // Under the lock: concurrent requests wait for one login instead of each making
        // their own.
        let t = match self.login() {
            Ok(t) => t,
            // No answer says nothing about the login; the next request tries again.
            Err(e @ KvError::Unreachable { .. }) => return Err(e),
            Err(e) => {
                held.logins.logged_in(false, now);
                held.last_refusal = Some(match &e {
                    KvError::Login { detail, .. } => detail.clone(),
                    other => other.to_string(),
                });
                return Err(e);
            }
        };
        held.logins.logged_in(true, now);
        held.last_refusal = None;
        held.token = Some(t.clone());
        Ok((t, held.logins.generation))
    }

    /// Revokes a token this client obtained by AppRole login and no longer uses, so
    /// replaced tokens do not stay valid until their TTL. Best effort: the token may have
    /// expired already, which is why it was replaced. A token from a file or the
    /// environment is the operator's and is left alone.
    fn revoke_self(&self, old: OpenBaoToken) {
        if !matches!(self.login, Login::AppRole(_)) {
            return;
        }
        let sent = self
            .http
            .post(self.url("auth/token/revoke-self"))
            .header("X-Vault-Token", old.secret())
            .header("X-Vault-Request", "true")
            .send();
        match sent {
            Ok(r) if r.status().is_success() => {
                tracing::debug!(address = %self.address, "revoked the replaced OpenBao token")
            }
            Ok(r) => tracing::debug!(
                address = %self.address,
                status = r.status().as_u16(),
                "the replaced OpenBao token was not revoked (it may have expired)"
            ),
            Err(e) => tracing::debug!(
                address = %self.address,
                "the replaced OpenBao token was not revoked: {}",
                crate::report::chain(&e)
            ),
        }
    }

    fn login(&self) -> Result<OpenBaoToken, KvError> {
        let fail = |detail: String| KvError::Login {
            address: self.address.clone(),
            detail,
        };
        let read = |path: &std::path::Path, what: &str| -> Result<String, KvError> {
            let text = std::fs::read_to_string(path).map_err(|e| {
                fail(format!(
                    "cannot read the {what} file {} ({e}); create it (mode 0600) or fix the path in the config",
                    path.display()
                ))
            })?;
            let text = text.trim().to_string();
            if text.is_empty() {
                return Err(fail(format!("the {what} file {} is empty", path.display())));
            }
            Ok(text)
        };
        match &self.login {
            Login::TokenFile(p) => Ok(OpenBaoToken::new(read(p, "token")?)),
            Login::TokenEnv(v) => match std::env::var(v) {
                Ok(t) if !t.trim().is_empty() => Ok(OpenBaoToken::new(t.trim())),
                _ => Err(fail(format!(
                    "the environment variable {v} is not set; set it to the daemon's token"
                ))),
            },
            Login::AppRole(a) => {
                let role_id = read(&a.role_id_file, "AppRole role_id")?;
                let secret_id = AppRoleSecretId::new(read(&a.secret_id_file, "AppRole secret_id")?);
                let path = format!("auth/{}/login", a.mount.trim_matches('/'));
                let resp = self
                    .http
                    .post(self.url(&path))
                    .json(&json!({"role_id": role_id, "secret_id": secret_id.secret()}))
                    .send()
                    .map_err(|e| self.unreachable(&e))?;
                let status = resp.status().as_u16();
                let body: Value = resp.json().unwrap_or(Value::Null);
                if status != 200 {
                    return Err(fail(format!(
                        "AppRole login at {path} answered HTTP {status} ({}); check the role_id and secret_id files (a secret id can expire or be used up)",
                        errors(&body)
                    )));
                }
                body.pointer("/auth/client_token")
                    .and_then(Value::as_str)
                    .map(OpenBaoToken::new)
                    .ok_or_else(|| fail(format!("AppRole login at {path} gave no client_token")))
            }
        }
    }

    fn unreachable(&self, e: &reqwest::Error) -> KvError {
        KvError::Unreachable {
            address: self.address.clone(),
            detail: crate::report::chain(e),
        }
    }

    /// Sends one request with the token; on a 403 logs in again when `relogin` allows it
    /// (a rotated token file, an expired AppRole token; never in a loop when the policy
    /// refuses), revoking the refused AppRole token, and tries once more. Returns the
    /// status and the JSON body (`Null` when empty).
    fn send(
        &self,
        method: reqwest::Method,
        api_path: &str,
        body: Option<&Value>,
        op: &'static str,
    ) -> Result<(u16, Value), KvError> {
        for attempt in 0..2 {
            let (token, generation) = self.token()?;
            let mut req = self
                .http
                .request(method.clone(), self.url(api_path))
                .header("X-Vault-Token", token.secret())
                .header("X-Vault-Request", "true");
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().map_err(|e| self.unreachable(&e))?;
            let status = resp.status().as_u16();
            let text = resp.text().map_err(|e| self.unreachable(&e))?;
            let value = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::Null)
            };
            if status != 403 {
                self.held.lock().logins.answered(generation);
                return Ok((status, value));
            }
            let (decision, refused) = {
                let mut held = self.held.lock();
                let d = held.logins.denied(generation, std::time::Instant::now());
                let refused = if d == OnDenied::Relogin {
                    held.token.take()
                } else {
                    None
                };
                (d, refused)
            };
            if let Some(old) = refused {
                self.revoke_self(old);
            }
            match decision {
                OnDenied::Retry | OnDenied::Relogin if attempt == 0 => continue,
                _ => {
                    return Err(KvError::Denied {
                        address: self.address.clone(),
                        op,
                        path: api_path.to_string(),
                    })
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    fn server_error(&self, op: &'static str, path: &str, status: u16, body: &Value) -> KvError {
        KvError::Server {
            address: self.address.clone(),
            op,
            path: path.to_string(),
            status,
            detail: errors(body),
        }
    }

    /// The data of one version (`None`: the newest), with its version number; `None`
    /// when there is no such secret or version, or it was deleted.
    pub fn read(&self, path: &str, version: Option<u64>) -> Result<Option<VersionData>, KvError> {
        let mut api = format!("{}/data/{path}", self.mount);
        if let Some(v) = version {
            api.push_str(&format!("?version={v}"));
        }
        let (status, body) = self.send(reqwest::Method::GET, &api, None, "read")?;
        match status {
            200 => {
                let version = body
                    .pointer("/data/metadata/version")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                match body.pointer("/data/data") {
                    Some(Value::Object(m)) => Ok(Some((version, m.clone()))),
                    // A deleted version answers 200 with `data: null` on some versions.
                    _ => Ok(None),
                }
            }
            404 => Ok(None),
            s => Err(self.server_error("read", &api, s, &body)),
        }
    }

    /// Writes a new version; with `cas`, only if the current version is still `cas` (0:
    /// only if the secret does not exist). Returns the new version number.
    pub fn write(&self, path: &str, data: &Value, cas: Option<u64>) -> Result<u64, KvError> {
        let api = format!("{}/data/{path}", self.mount);
        let mut body = json!({ "data": data });
        if let Some(c) = cas {
            body["options"] = json!({ "cas": c });
        }
        let (status, resp) = self.send(reqwest::Method::POST, &api, Some(&body), "write")?;
        match status {
            200 | 204 => Ok(resp
                .pointer("/data/version")
                .and_then(Value::as_u64)
                .unwrap_or(0)),
            400 if errors(&resp).contains("check-and-set") => Err(KvError::CasMismatch {
                address: self.address.clone(),
                path: api,
                expected: cas.unwrap_or(0),
            }),
            s => Err(self.server_error("write", &api, s, &resp)),
        }
    }

    /// The secret's metadata, `None` when it does not exist.
    pub fn metadata(&self, path: &str) -> Result<Option<Metadata>, KvError> {
        let api = format!("{}/metadata/{path}", self.mount);
        let (status, body) = self.send(reqwest::Method::GET, &api, None, "read the metadata of")?;
        match status {
            200 => {
                let d = body.get("data").cloned().unwrap_or(Value::Null);
                let mut versions = BTreeMap::new();
                if let Some(Value::Object(vs)) = d.get("versions") {
                    for (k, v) in vs {
                        let Ok(n) = k.parse::<u64>() else { continue };
                        versions.insert(
                            n,
                            VersionMeta {
                                deleted: v
                                    .get("deletion_time")
                                    .and_then(Value::as_str)
                                    .is_some_and(|t| !t.is_empty()),
                                destroyed: v
                                    .get("destroyed")
                                    .and_then(Value::as_bool)
                                    .unwrap_or(false),
                            },
                        );
                    }
                }
                Ok(Some(Metadata {
                    current_version: d
                        .get("current_version")
                        .and_then(Value::as_u64)
                        .unwrap_or(0),
                    updated_time: d
                        .get("updated_time")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    versions,
                }))
            }
            404 => Ok(None),
            s => Err(self.server_error("read the metadata of", &api, s, &body)),
        }
    }

    /// The keys under `path` (sub-paths end with `/`); empty when there are none.
    pub fn list(&self, path: &str) -> Result<Vec<String>, KvError> {
        let api = format!("{}/metadata/{path}", self.mount);
        let method = reqwest::Method::from_bytes(b"LIST").expect("LIST is a valid method token");
        let (status, body) = self.send(method, &api, None, "list")?;
        match status {
            200 => Ok(body
                .pointer("/data/keys")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()),
            404 => Ok(Vec::new()),
            s => Err(self.server_error("list", &api, s, &body)),
        }
    }

    /// Soft-deletes versions (readable again after `bao kv undelete`).
    pub fn delete_versions(&self, path: &str, versions: &[u64]) -> Result<(), KvError> {
        self.versions_op("delete", path, versions)
    }

    /// Destroys versions: their data is gone for good.
    pub fn destroy_versions(&self, path: &str, versions: &[u64]) -> Result<(), KvError> {
        self.versions_op("destroy", path, versions)
    }

    fn versions_op(&self, what: &'static str, path: &str, versions: &[u64]) -> Result<(), KvError> {
        let api = format!("{}/{what}/{path}", self.mount);
        let body = json!({ "versions": versions });
        let (status, resp) = self.send(reqwest::Method::POST, &api, Some(&body), what)?;
        match status {
            200 | 204 => Ok(()),
            s => Err(self.server_error(what, &api, s, &resp)),
        }
    }

    /// Deletes the secret with every version and its metadata (tests, `wipe`).
    pub fn delete_all(&self, path: &str) -> Result<(), KvError> {
        let api = format!("{}/metadata/{path}", self.mount);
        let (status, resp) = self.send(reqwest::Method::DELETE, &api, None, "delete")?;
        match status {
            200 | 204 | 404 => Ok(()),
            s => Err(self.server_error("delete", &api, s, &resp)),
        }
    }

    /// What the token may do on each API path (`sys/capabilities-self`), e.g.
    /// `["create", "read", "update"]` or `["root"]`.
    pub fn capabilities(
        &self,
        api_paths: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, KvError> {
        let body = json!({ "paths": api_paths });
        let (status, resp) = self.send(
            reqwest::Method::POST,
            "sys/capabilities-self",
            Some(&body),
            "check the capabilities on",
        )?;
        if status != 200 {
            return Err(self.server_error(
                "check the capabilities on",
                "sys/capabilities-self",
                status,
                &resp,
            ));
        }
        let mut out = BTreeMap::new();
        for p in api_paths {
            let caps = resp
                .get(p)
                .or_else(|| resp.pointer(&format!("/data/{}", p.replace('/', "~1"))))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            out.insert(p.clone(), caps);
        }
        Ok(out)
    }
}

/// OpenBao's `{"errors": [...]}` as one line (never a token: OpenBao does not echo them).
fn errors(body: &Value) -> String {
    match body.get("errors").and_then(Value::as_array) {
        Some(a) if !a.is_empty() => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("; "),
        Some(_) => "no details".into(),
        None => "no error details in the answer".into(),
    }
}
