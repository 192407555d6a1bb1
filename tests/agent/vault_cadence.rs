//! The vault's own cadence in a running daemon: damage is seen and repaired within
//! seconds with the default settings (no dependence on the alert reminder interval), a
//! deleted location directory comes back, and the owner's stream hears about it.

use super::harness::{seed, TestAgent};
use std::time::Duration;
use tether::protocol::{CredentialState, Event};
use tether::secret::{AccessToken, RefreshToken};
use tether::vault::Record;

/// Longer than the default 5 s check, far shorter than the old 300 s reconcile period.
const REPAIRED_WITHIN: Duration = Duration::from_secs(30);

const BODY: &str = r#"
[[credentials]]
name = "youtube"
provider = "generic"
client_id = "cid"
refresh_interval = "1h"
[credentials.overrides]
auth_url = "http://127.0.0.1:9/auth"
token_url = "http://127.0.0.1:9/token"
"#;

fn record() -> Record {
    let mut r = Record::new("youtube", "generic");
    r.access_token = Some(AccessToken::new("at-seeded"));
    r.refresh_token = Some(RefreshToken::new("rt-seeded"));
    r.expires_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    r
}

async fn wait_repaired(a: &TestAgent, needle: &str) -> tether::protocol::HealthReport {
    let deadline = tokio::time::Instant::now() + REPAIRED_WITHIN;
    loop {
        let h = a.health().await;
        if h.repaired.iter().any(|l| l.contains(needle)) {
            return h;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no repair line with {needle:?} within {REPAIRED_WITHIN:?}: {:#?}",
            h.repaired
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_wiped_generation_is_repaired_within_seconds_with_default_settings() {
    let dir = tempfile::tempdir().unwrap();
    // Default [alerts] (reminders every 6 h) and default vault check interval.
    let a = TestAgent::start_in(dir, "", BODY, |d| seed(d, record())).await;
    let mut events = a.events().await;
    let slot = a.dir.path().join("backup/youtube/gen-000000000001.json");
    assert!(slot.exists());
    std::fs::write(&slot, b"").unwrap();

    let h = wait_repaired(&a, "was an empty (0-byte) file").await;
    assert!(std::fs::metadata(&slot).unwrap().len() > 0);
    let vault = h.vault.expect("the daemon reports its vault");
    assert_eq!(vault.state, CredentialState::Ok);
    assert_eq!(vault.repairs, 1, "{vault:?}");
    // The companion's stream hears about the repair.
    let ev = tokio::time::timeout(REPAIRED_WITHIN, async {
        loop {
            if let ev @ Event::VaultChanged { .. } = events.next().await {
                return ev;
            }
        }
    })
    .await
    .expect("a vault event");
    let Event::VaultChanged { vault, .. } = ev else {
        unreachable!()
    };
    assert!(vault.last_repair.unwrap().contains("backup 1"));
}

#[tokio::test]
async fn a_deleted_primary_directory_comes_back_filled() {
    let dir = tempfile::tempdir().unwrap();
    let a = TestAgent::start_in(dir, "vault_check_interval = \"1s\"", BODY, |d| {
        seed(d, record())
    })
    .await;
    let primary = a.dir.path().join("state/vault");
    let backup = a.dir.path().join("backup");
    // The primary vanishes while the daemon runs; the backup holds the only copy.
    std::fs::remove_dir_all(&primary).unwrap();
    wait_repaired(&a, "was missing").await;
    for root in [&primary, &backup] {
        let slot = root.join("youtube/gen-000000000001.json");
        let bytes = std::fs::read(&slot)
            .unwrap_or_else(|e| panic!("{} was not refilled: {e}", slot.display()));
        tether::vault::record::decode_slot(&bytes, "youtube", 1).unwrap();
    }
    let h = a.health().await;
    assert!(h.locations.iter().all(|l| l.ok), "{:#?}", h.locations);
}
