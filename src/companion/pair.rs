//! Pairing: redeem a one-time code for a device token, pin the certificate, remember the agent.

use super::config::{AgentEntry, Config};
use super::error::CompanionError;
use super::secrets::{SecretStore, Stored};
use crate::client::{AgentClient, AgentEndpoint};
use crate::pin::Fingerprint;
use crate::protocol::{HealthReport, PairRequest, PairingCode};
use std::path::Path;

/// Options for [`pair`].
#[derive(Debug, Clone, Default)]
pub struct PairOptions {
    /// Local name for the agent; default: the name the agent reports.
    pub local_name: Option<String>,
    /// Label this computer gives itself on the agent; default: the host name.
    pub device_name: Option<String>,
}

/// An existing pairing that the new one would replace.
#[derive(Debug, Clone)]
pub struct Replacement {
    /// The agent already in the config.
    pub existing: AgentEntry,
    /// The URL being paired now.
    pub new_url: String,
    /// The certificate fingerprint being pinned now (`None`: CA validation).
    pub new_fingerprint: Option<Fingerprint>,
    /// True when the conflict showed only after the code was redeemed (the agent reported
    /// a name already in use). Answering no then keeps both: the new agent gets a unique
    /// local name, because the single-use code is spent.
    pub redeemed: bool,
}

/// A completed pairing.
#[derive(Debug)]
pub struct Paired {
    /// What was written to the config.
    pub agent: AgentEntry,
    /// The agent's own name.
    pub remote_name: String,
    /// The daemon's version.
    pub version: String,
    /// Where the device token went.
    pub stored: Stored,
    /// The pairing it replaced, if any.
    pub replaced: Option<AgentEntry>,
    /// The already paired agent whose name the new one would have taken; both are kept
    /// and the new one got a unique local name (`agent.name`).
    pub kept_beside: Option<AgentEntry>,
    /// The agent's health right after pairing (None when that call failed).
    pub health: Option<HealthReport>,
}

impl Paired {
    /// What the owner should do after a replacement: the old pairing's device still has
    /// a valid token on its server until it is revoked there.
    pub fn revoke_notice(&self) -> Option<String> {
        let old = self.replaced.as_ref()?;
        Some(match &old.device_id {
            Some(id) => format!(
                "the agent at {} still accepts this computer's old device {id}; revoke it on that server with `tether agent revoke {id}`",
                old.url
            ),
            None => format!(
                "the agent at {} may still accept this computer's old device; list it with `tether agent devices` on that server and revoke it with `tether agent revoke ID`",
                old.url
            ),
        })
    }
}

/// What a window is told after a pairing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PairResult {
    /// The new agent's local name.
    pub name: String,
    /// What the owner should do or know now (revoke the replaced device; both kept).
    pub notice: Option<String>,
}

impl PairResult {
    /// The result of `paired`.
    pub fn of(paired: &Paired) -> PairResult {
        let name = paired.agent.name.clone();
        PairResult {
            notice: paired.revoke_notice().or_else(|| {
                paired.kept_beside.as_ref().map(|o| {
                    format!(
                        "Agent {} at {} was already paired and is kept; this one is {}.",
                        o.name, o.url, name
                    )
                })
            }),
            name,
        }
    }
}

/// The question a window asks before replacing a pairing: old and new URL and certificate.
pub fn replace_question(r: &Replacement) -> String {
    let fp = |f: &Option<Fingerprint>| crate::pin::certificate_words(f.as_ref());
    format!(
        "agent {} is already paired at {} (certificate {}). Replace it with {} (certificate {})?",
        r.existing.name,
        r.existing.url,
        fp(&r.existing.fingerprint),
        r.new_url,
        fp(&r.new_fingerprint)
    )
}

/// What the dashboard shows of a pairing: where the agent is and which certificate is
/// pinned, so two agents of one name can be told apart.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PairingView {
    /// Local name.
    pub name: String,
    /// The daemon's URL.
    pub url: String,
    /// The pinned certificate's SHA-256 (`None`: checked by certificate authorities).
    pub fingerprint: Option<Fingerprint>,
    /// This computer's device id on that agent.
    pub device_id: Option<String>,
}

impl From<&AgentEntry> for PairingView {
    fn from(a: &AgentEntry) -> Self {
        PairingView {
            name: a.name.clone(),
            url: a.url.clone(),
            fingerprint: a.fingerprint.clone(),
            device_id: a.device_id.clone(),
        }
    }
}

/// A removed pairing.
#[derive(Debug)]
pub struct Unpaired {
    /// The removed entry.
    pub agent: AgentEntry,
}

/// True for a usable local agent name (it appears in `AGENT/CRED` arguments and file keys).
pub fn valid_agent_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// This computer's host name, for the device label.
pub fn host_name() -> String {
    label_or_default(raw_host_name())
}

/// A host name as the device label, or "companion" when there is none.
fn label_or_default(name: String) -> String {
    let name = name.trim();
    if name.is_empty() {
        "companion".into()
    } else {
        name.to_string()
    }
}

#[cfg(unix)]
fn raw_host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success
    // (and we stop at the first NUL or the end anyway).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    }
}

/// Windows names the computer in the environment of every session (the NetBIOS name),
/// which saves a call into kernel32 for a label.
#[cfg(not(unix))]
fn raw_host_name() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_default()
}

/// Redeems `code`, stores the device token, and records the agent in the config at
/// `config_path`. `confirm` is asked before an existing pairing (same name or same URL)
/// is replaced. Answering false before the code is redeemed leaves everything as it was;
/// after (see [`Replacement::redeemed`]) it keeps the existing agent and gives the new one
/// a unique local name.
pub async fn pair(
    config_path: &Path,
    secrets: &SecretStore,
    code: &str,
    opts: &PairOptions,
    confirm: &mut (dyn FnMut(&Replacement) -> bool + Send),
) -> Result<Paired, CompanionError> {
    let code = PairingCode::parse(code)?;
    if let Some(name) = &opts.local_name {
        if !valid_agent_name(name) {
            return Err(CompanionError::BadAgentName(name.clone()));
        }
    }
    let mut asked_for: Option<String> = None;
    let cfg = Config::load(config_path)?;
    // Ask before redeeming when we can already see the conflict (the code is single-use).
    if let Some(existing) = find_conflict(&cfg, opts.local_name.as_deref(), &code.url) {
        let r = Replacement {
            existing: existing.clone(),
            new_url: code.url.clone(),
            new_fingerprint: code.fingerprint.clone(),
            redeemed: false,
        };
        if !confirm(&r) {
            return Err(CompanionError::NotReplaced {
                name: existing.name.clone(),
                url: existing.url.clone(),
            });
        }
        asked_for = Some(existing.name.clone());
    }
    let endpoint = AgentEndpoint {
        name: opts
            .local_name
            .clone()
            .unwrap_or_else(|| "new agent".into()),
        url: code.url.clone(),
        fingerprint: code.fingerprint.clone(),
    };
    let client = AgentClient::new(&endpoint, None)?;
    let device_name = opts.device_name.clone().unwrap_or_else(host_name);
    let resp = client
        .pair(&PairRequest {
            secret: code.secret.clone(),
            device_name,
        })
        .await?;
    let mut name = opts
        .local_name
        .clone()
        .unwrap_or_else(|| resp.agent.clone());
    if !valid_agent_name(&name) {
        return Err(CompanionError::BadAgentName(name));
    }
    // Re-read: another `tether pair` may have written meanwhile.
    let mut cfg = Config::load(config_path)?;
    let mut conflict = find_conflict(&cfg, Some(&name), &code.url).cloned();
    let mut kept_beside = None;
    if let Some(existing) = conflict.clone() {
        if asked_for.as_deref() != Some(existing.name.as_str()) {
            let r = Replacement {
                existing: existing.clone(),
                new_url: code.url.clone(),
                new_fingerprint: code.fingerprint.clone(),
                redeemed: true,
            };
            if !confirm(&r) {
                // The code is spent: keep both rather than lose the new device token.
                name = unique_name(&cfg, &name);
                conflict = None;
                kept_beside = Some(existing);
            }
        }
    }
    let entry = AgentEntry {
        name: name.clone(),
        url: code.url.clone(),
        fingerprint: code.fingerprint.clone(),
        device_id: Some(resp.device_id.clone()),
        // The replaced pairing's authorization servers stay the reference: a new daemon
        // under an old name that sends the owner elsewhere is asked about, not trusted.
        authorizations: conflict
            .as_ref()
            .map(|c| c.authorizations.clone())
            .unwrap_or_default(),
    };
    // Token first: a config entry without a token is worse than an unused token.
    let stored = secrets.store(&name, &resp.device_token)?;
    cfg.agents.retain(|a| {
        a.name != name && a.url != code.url && Some(&a.name) != conflict.as_ref().map(|c| &c.name)
    });
    cfg.agents.push(entry.clone());
    cfg.agents.sort_by(|a, b| a.name.cmp(&b.name));
    cfg.save(config_path, &secrets.agents_in_file(), secrets.file())?;
    if let Some(old) = &conflict {
        if old.name != name {
            // The replaced agent's token is of no use any more.
            let _ = secrets.delete(&old.name);
        }
    }
    let endpoint = AgentEndpoint {
        name: name.clone(),
        url: entry.url.clone(),
        fingerprint: code.fingerprint.clone(),
    };
    let health = match AgentClient::new(&endpoint, Some(resp.device_token)) {
        Ok(c) => c.health().await.ok(),
        Err(_) => None,
    };
    Ok(Paired {
        agent: entry,
        remote_name: resp.agent,
        version: resp.version,
        stored,
        replaced: conflict,
        kept_beside,
        health,
    })
}

/// `base-2`, `base-3`, ...: the first that no paired agent uses (and still a valid name).
fn unique_name(cfg: &Config, base: &str) -> String {
    (2..)
        .map(|i| {
            let suffix = format!("-{i}");
            let keep = base.len().min(64 - suffix.len());
            // Agent names are ASCII (valid_agent_name), so any byte index is a boundary.
            format!("{}{suffix}", &base[..keep])
        })
        .find(|n| cfg.agent(n).is_none())
        .expect("invariant: finitely many agents leave some suffix free")
}

fn find_conflict<'a>(cfg: &'a Config, name: Option<&str>, url: &str) -> Option<&'a AgentEntry> {
    let norm = |u: &str| u.trim_end_matches('/').to_ascii_lowercase();
    cfg.agents
        .iter()
        .find(|a| Some(a.name.as_str()) == name || norm(&a.url) == norm(url))
}

/// Forgets agent `name`: removes it from the config and deletes its device token.
pub fn unpair(
    config_path: &Path,
    secrets: &SecretStore,
    name: &str,
) -> Result<Unpaired, CompanionError> {
    let mut cfg = Config::load(config_path)?;
    let Some(pos) = cfg.agents.iter().position(|a| a.name == name) else {
        return Err(unknown_agent(&cfg, name));
    };
    let entry = cfg.agents.remove(pos);
    cfg.save(config_path, &secrets.agents_in_file(), secrets.file())?;
    secrets.delete(name)?;
    Ok(Unpaired { agent: entry })
}

pub(crate) fn unknown_agent(cfg: &Config, name: &str) -> CompanionError {
    let known = if cfg.agents.is_empty() {
        "none".to_string()
    } else {
        cfg.agents
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    CompanionError::UnknownAgent {
        name: name.into(),
        known,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_host_name_labels_the_device_companion() {
        assert_eq!(label_or_default(String::new()), "companion");
        assert_eq!(label_or_default(" \n".into()), "companion");
        assert_eq!(label_or_default("laptop\n".into()), "laptop");
    }

    #[test]
    fn this_machine_has_a_host_name_label() {
        let name = host_name();
        assert!(!name.is_empty() && name.trim() == name, "{name:?}");
    }
}
