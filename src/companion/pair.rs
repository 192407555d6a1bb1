//! Pairing: redeem a one-time code for a device token, pin the certificate, remember the agent.

use super::client::{AgentClient, AgentEndpoint};
use super::config::{AgentEntry, Config};
use super::error::CompanionError;
use super::secrets::{SecretStore, Stored};
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
    /// The agent's health right after pairing (None when that call failed).
    pub health: Option<HealthReport>,
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
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success
    // (and we stop at the first NUL or the end anyway).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    if name.is_empty() {
        "companion".into()
    } else {
        name
    }
}

/// Redeems `code`, stores the device token, and records the agent in the config at
/// `config_path`. `confirm` is asked before an existing pairing (same name or same URL)
/// is replaced; answering false leaves everything as it was.
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
    let name = opts
        .local_name
        .clone()
        .unwrap_or_else(|| resp.agent.clone());
    if !valid_agent_name(&name) {
        return Err(CompanionError::BadAgentName(name));
    }
    // Re-read: another `tether pair` may have written meanwhile.
    let mut cfg = Config::load(config_path)?;
    let conflict = find_conflict(&cfg, Some(&name), &code.url).cloned();
    if let Some(existing) = &conflict {
        if asked_for.as_deref() != Some(existing.name.as_str()) {
            let r = Replacement {
                existing: existing.clone(),
                new_url: code.url.clone(),
            };
            if !confirm(&r) {
                return Err(CompanionError::NotReplaced {
                    name: existing.name.clone(),
                    url: existing.url.clone(),
                });
            }
        }
    }
    let entry = AgentEntry {
        name: name.clone(),
        url: code.url.clone(),
        fingerprint: code.fingerprint.clone(),
        device_id: Some(resp.device_id.clone()),
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
        fingerprint: entry.fingerprint.clone(),
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
        health,
    })
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
