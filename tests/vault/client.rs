//! The rendered `authorized_user` file is loaded by the real google-auth library.

use super::{sample, Dirs};
use std::process::Command;
use tether::secret::ClientSecret;
use tether::vault::{OutputFormat, OutputSpec, Vault};

fn google_auth_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import google.oauth2.credentials"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn google_auth_loads_the_authorized_user_file() {
    crate::require!(
        google_auth_installed(),
        "python3 with google-auth (pip install google-auth)"
    );
    let d = Dirs::new(0);
    let path = d.tmp.path().join("agent/authorized_user.json");
    let mut cfg = d.config();
    cfg.outputs = vec![OutputSpec {
        credential: "youtube".into(),
        path: path.clone(),
        format: OutputFormat::AuthorizedUser {
            client_id: "123-abc.apps.googleusercontent.com".into(),
            client_secret: Some(ClientSecret::new("GOCSPX-test-secret")),
        },
    }];
    let (vault, _) = Vault::open(cfg).unwrap();
    let mut r = sample("youtube", "g");
    r.expires_at = Some("2030-05-06T07:08:09Z".parse().unwrap());
    r.account = Some("owner@example.com".into());
    vault.commit(r).unwrap();

    let script = r#"
import json, sys
from google.oauth2.credentials import Credentials
c = Credentials.from_authorized_user_file(sys.argv[1])
print(json.dumps({
    "token": c.token, "refresh_token": c.refresh_token, "client_id": c.client_id,
    "client_secret": c.client_secret, "expiry": c.expiry.isoformat() if c.expiry else None,
    "scopes": c.scopes, "account": c.account, "token_uri": c.token_uri,
}))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "google-auth refused the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["token"], "ya29.access-g");
    assert_eq!(v["refresh_token"], "1//refresh-g");
    assert_eq!(v["client_id"], "123-abc.apps.googleusercontent.com");
    assert_eq!(v["client_secret"], "GOCSPX-test-secret");
    assert_eq!(v["expiry"], "2030-05-06T07:08:09");
    assert_eq!(
        v["scopes"],
        serde_json::json!(["https://www.googleapis.com/auth/youtube.upload"])
    );
    assert_eq!(v["account"], "owner@example.com");
    assert_eq!(v["token_uri"], "https://oauth2.googleapis.com/token");
}
