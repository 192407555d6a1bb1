//! Pairing against real daemons (`tether agent serve`): a second agent that calls itself
//! by a name already paired is kept beside the first when the owner says no after the
//! single-use code was spent; a replacement tells the owner which device to revoke.

use super::support::Daemon;
use tether::companion::pair::{PairOptions, Replacement};
use tether::companion::secrets::Backend;
use tether::companion::Companion;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_of_the_same_name_is_kept_beside_and_a_replacement_names_the_old_device() {
    let (one, two) = (Daemon::start("").await, Daemon::start("").await);
    let home = tempfile::tempdir().unwrap();
    let companion = Companion::open(home.path(), Backend::File);
    let first = companion
        .pair(&one.pairing_code(), &PairOptions::default(), &mut |r| {
            panic!("nothing to replace yet: {r:?}")
        })
        .await
        .unwrap();
    assert_eq!(first.agent.name, "studio");

    // Another daemon, also called `studio`: the clash shows only after redeeming. The
    // owner says no: both are kept.
    let mut asked: Vec<Replacement> = Vec::new();
    let second = companion
        .pair(&two.pairing_code(), &PairOptions::default(), &mut |r| {
            asked.push(r.clone());
            false
        })
        .await
        .unwrap();
    assert_eq!(asked.len(), 1);
    assert!(asked[0].redeemed);
    assert_eq!(asked[0].existing.url, one.url);
    assert_eq!(asked[0].new_url, two.url);
    assert_ne!(asked[0].new_fingerprint, asked[0].existing.fingerprint);
    assert_eq!(second.agent.name, "studio-2");
    assert_eq!(second.kept_beside.as_ref().unwrap().name, "studio");
    assert!(second.replaced.is_none() && second.revoke_notice().is_none());
    let pairings = companion.pairings().unwrap();
    let urls: Vec<(&str, &str)> = pairings
        .iter()
        .map(|p| (p.name.as_str(), p.url.as_str()))
        .collect();
    assert_eq!(
        urls,
        [("studio", one.url.as_str()), ("studio-2", two.url.as_str())]
    );
    assert!(pairings.iter().all(|p| p.fingerprint.is_some()));
    // Both still answer with their own device tokens.
    for name in ["studio", "studio-2"] {
        companion.client(name).unwrap().health().await.unwrap();
    }

    // Pairing the first daemon again: asked before redeeming (same URL), with old and new
    // fingerprint; replacing it says which device to revoke on that server.
    let mut asked: Vec<Replacement> = Vec::new();
    let again = companion
        .pair(&one.pairing_code(), &PairOptions::default(), &mut |r| {
            asked.push(r.clone());
            true
        })
        .await
        .unwrap();
    assert_eq!(asked.len(), 1);
    assert!(!asked[0].redeemed);
    assert_eq!(asked[0].existing.fingerprint, asked[0].new_fingerprint);
    let old_id = first.agent.device_id.clone().unwrap();
    assert_eq!(
        again.replaced.as_ref().unwrap().device_id.as_deref(),
        Some(old_id.as_str())
    );
    let notice = again.revoke_notice().unwrap();
    assert!(
        notice.contains(&format!("tether agent revoke {old_id}")),
        "{notice}"
    );
    assert!(notice.contains(&one.url), "{notice}");
}
