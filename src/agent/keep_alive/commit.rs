//! The vault side of keeping a credential alive: reading the stored record, room for the
//! next generation, and committing a new one to every vault location (refused when a
//! daemon sharing the vault committed a newer one).

use crate::agent::credential::runtime::Credential;
use crate::agent::daemon::Daemon;
use crate::agent::error::CheckError;
use crate::vault::Record;
use std::sync::Arc;

impl Daemon {
    pub(in crate::agent) async fn read_stored(
        &self,
        name: &str,
    ) -> Result<Option<Record>, CheckError> {
        let n = name.to_string();
        self.vault_task(
            format!("cannot read credential {name} from the vault"),
            move |v| v.get(&n),
        )
        .await
        .map_err(CheckError::Vault)
    }

    /// Commits `record` to every vault location; the caller holds the credential's flight
    /// lock and a `writes` guard.
    pub(in crate::agent) async fn commit(
        self: &Arc<Self>,
        cred: &Credential,
        record: Record,
    ) -> Result<u64, CheckError> {
        self.commit_after(cred, record, None).await
    }

    /// [`commit`](Self::commit) of a record made from generation `based_on`: refused
    /// (nothing written) when a daemon sharing the vault committed a newer one since.
    pub(in crate::agent::keep_alive) async fn commit_after(
        self: &Arc<Self>,
        cred: &Credential,
        record: Record,
        based_on: Option<u64>,
    ) -> Result<u64, CheckError> {
        // The locations' health is read on the blocking thread too: it takes the vault's
        // lock, which another commit may hold.
        let d = self.clone();
        let res = self
            .vault_task(
                format!(
                    "cannot store credential {}'s new token in the vault",
                    cred.name
                ),
                move |v| {
                    let r = match based_on {
                        Some(base) => v.commit_after(record, base),
                        None => v.commit(record),
                    };
                    d.refresh_locations();
                    r
                },
            )
            .await;
        match res {
            Ok(report) => {
                for f in &report.failed {
                    tracing::warn!(
                        "credential {}: vault location {} failed: {}",
                        cred.name,
                        f.location,
                        f.error
                    );
                }
                for e in &report.output_errors {
                    tracing::warn!("credential {}: output: {e}", cred.name);
                }
                self.add_repaired(report.repairs.iter().map(|r| r.to_string()));
                cred.set_generation(report.generation);
                Ok(report.generation)
            }
            Err(f) if f.is_stale() => Err(CheckError::Superseded(
                f.source.as_ref().map_or(f.what.clone(), |e| e.to_string()),
            )),
            Err(f) => Err(CheckError::Vault(f)),
        }
    }

    /// Room for the next generation in at least one vault location.
    pub(in crate::agent::keep_alive) async fn reserve(
        &self,
        name: &str,
    ) -> Result<crate::vault::Reserved, CheckError> {
        let n = name.to_string();
        self.vault_task(
            format!("no vault location has room for credential {name}'s next generation"),
            move |v| v.reserve(&n),
        )
        .await
        .map_err(CheckError::Vault)
    }
}
