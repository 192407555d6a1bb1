//! The vault an agent config describes: its locations (the state directory's `vault/` and
//! the backup directories) and the output files rendered for the user's agent.

use super::agent::AgentConfig;
use super::credential::OutputKind;
use super::error::ConfigError;
use crate::oauth::ClientCredentials;
use crate::vault::{OutputFormat, OutputSpec, VaultConfig};
use std::collections::BTreeMap;

/// Directory of the primary vault location inside the state directory.
pub const VAULT_DIR: &str = "vault";

/// The vault an agent config describes (locations and outputs), for operators' commands
/// (`tether vault ... --config agent.toml`) that must see the same vault as the daemon.
pub fn vault_config_for(cfg: &AgentConfig) -> Result<VaultConfig, ConfigError> {
    let mut clients = BTreeMap::new();
    for c in &cfg.credentials {
        clients.insert(
            c.name.clone(),
            ClientCredentials {
                client_id: c.client_id.clone().unwrap_or_default(),
                client_secret: c.client_secret()?,
            },
        );
    }
    Ok(vault_config(cfg, &clients))
}

pub(in crate::agent) fn vault_config(
    cfg: &AgentConfig,
    clients: &BTreeMap<String, ClientCredentials>,
) -> VaultConfig {
    let mut vc = VaultConfig::new(cfg.state_dir.join(VAULT_DIR), cfg.backup_dirs.clone());
    vc.keep = cfg.keep;
    vc.locations = cfg.vault.locations.clone();
    for c in &cfg.credentials {
        for o in &c.outputs {
            let format = match o.format {
                OutputKind::AuthorizedUser => {
                    let client = clients.get(&c.name);
                    OutputFormat::AuthorizedUser {
                        client_id: client.map(|c| c.client_id.clone()).unwrap_or_default(),
                        client_secret: client.and_then(|c| c.client_secret.clone()),
                    }
                }
                OutputKind::TokenJson => OutputFormat::TokenJson,
                OutputKind::Env => OutputFormat::Env {
                    access_var: o.access_var.clone(),
                    refresh_var: o.refresh_var.clone(),
                },
            };
            vc.outputs.push(OutputSpec {
                credential: c.name.clone(),
                path: o.path.clone(),
                format,
            });
        }
    }
    vc
}
