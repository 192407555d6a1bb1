//! The repository's Python client (`clients/python`) against the real daemon over pinned
//! TLS: `TetherCredentials` (google-auth) refreshes through the broker and its token works
//! at oidc-provider; after a revocation, `rejected()` makes the daemon `dead` at once and
//! the next `refresh()` raises google-auth's `RefreshError` naming `tether reauth`.

use super::harness::{oidc_credential, TestAgent};
use crate::require;
use crate::util;
use crate::util::oidc::OidcProvider;
use std::time::Duration;
use tether::protocol::CredentialState;

const SCRIPT: &str = r#"
import json, sys, urllib.request
from google.auth import exceptions
from tether_agent import TetherCredentials
creds = TetherCredentials("youtube")
creds.refresh(None)
req = urllib.request.Request(sys.argv[1], headers={"authorization": "Bearer " + creds.token})
print(json.dumps({"userinfo": urllib.request.urlopen(req).status, "valid": creds.valid}), flush=True)
sys.stdin.readline()  # the grant is revoked now
reply = creds.rejected(status=401, detail="userinfo said 401", pending=1, what="uploads")
try:
    creds.refresh(None)
    print(json.dumps({"refresh": "worked"}), flush=True)
except exceptions.RefreshError as e:
    print(json.dumps({"state": reply["credential"]["state"], "error": str(e)}), flush=True)
"#;

fn google_auth() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import google.auth"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn tether_credentials_refresh_through_the_daemon_and_name_the_fix_when_dead() {
    require!(util::oidc::available(), util::oidc::MISSING);
    require!(
        google_auth(),
        "python3 with google-auth (pip install google-auth)"
    );
    let oidc = OidcProvider::start(Default::default());
    let a = TestAgent::start("", &oidc_credential("youtube", &oidc, "")).await;
    a.bootstrap("youtube", &oidc).await;
    let fp = a.daemon.tls().expect("tls on").fingerprint.clone();
    let client_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python");
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", SCRIPT, oidc.issuer().join("/me").unwrap().as_str()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("PYTHONPATH", &client_dir)
        .env("TETHER_URL", &a.base)
        .env("TETHER_AGENT_TOKEN", &a.agent)
        .env("TETHER_FINGERPRINT", fp.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run python3");
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = next_json(&mut lines).await;
    assert_eq!(first["userinfo"], 200, "{first}");
    assert_eq!(first["valid"], true, "{first}");

    assert!(oidc.revoke_all().await >= 1);
    let mut stdin = child.stdin.take().unwrap();
    let told = std::time::Instant::now();
    stdin.write_all(b"\n").await.unwrap();
    let last = next_json(&mut lines).await;
    println!("rejected() -> refresh error in {:?}", told.elapsed());
    assert_eq!(last["state"], "dead", "{last}");
    let error = last["error"].as_str().unwrap();
    assert!(error.contains("tether reauth studio/youtube"), "{error}");
    let h = a
        .wait_state("youtube", CredentialState::Dead, Duration::from_secs(2))
        .await;
    assert_eq!(h.pending.unwrap().count, 1);
}

async fn next_json(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) -> serde_json::Value {
    let l = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the client answers")
        .unwrap()
        .expect("a line");
    serde_json::from_str(&l).unwrap()
}
