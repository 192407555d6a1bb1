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
    let mut child = python_agent(&a, SCRIPT)
        .arg(oidc.issuer().join("/me").unwrap().as_str())
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

/// `python3 -c script` as an agent beside `a`: only the client's checkout on the path, the
/// daemon's address, agent token and pin in the environment, stdin and stdout piped.
fn python_agent(a: &TestAgent, script: &str) -> tokio::process::Command {
    let fp = a.daemon.tls().expect("tls on").fingerprint.clone();
    let client_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python");
    let mut cmd = tokio::process::Command::new("python3");
    cmd.args(["-c", script])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("PYTHONPATH", &client_dir)
        .env("TETHER_URL", &a.base)
        .env("TETHER_AGENT_TOKEN", &a.agent)
        .env("TETHER_FINGERPRINT", fp.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
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

/// The real Google client library against a stand-in for the YouTube Data API: the
/// stand-in accepts a bearer token only when oidc-provider's introspection says it is
/// active, as Google's front end would.
const YOUTUBE_SCRIPT: &str = r#"
import base64, json, os, sys, threading, urllib.parse, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from google.auth import exceptions
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from tether_agent import TetherCredentials

INTROSPECT = os.environ["INTROSPECT_URL"]
BASIC = base64.b64encode(os.environ["INTROSPECT_CLIENT"].encode()).decode()
seen = []

class YouTube(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        auth = self.headers.get("authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        req = urllib.request.Request(INTROSPECT, data=urllib.parse.urlencode({"token": token}).encode(),
                                     headers={"authorization": "Basic " + BASIC})
        active = token and json.load(urllib.request.urlopen(req)).get("active")
        seen.append(self.path.split("?")[0])
        if active:
            body, status = {"kind": "youtube#channelListResponse", "items": [{"kind": "youtube#channel", "id": "UCstandin"}]}, 200
        else:
            body, status = {"error": {"code": 401, "message": "Request had invalid authentication credentials."}}, 401
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

server = HTTPServer(("127.0.0.1", 0), YouTube)
threading.Thread(target=server.serve_forever, daemon=True).start()
creds = TetherCredentials("youtube")
youtube = build("youtube", "v3", credentials=creds, static_discovery=True,
                client_options={"api_endpoint": "http://127.0.0.1:%d/" % server.server_port})
mine = youtube.channels().list(part="id", mine=True).execute()
print(json.dumps({"channel": mine["items"][0]["id"], "path": seen[-1]}), flush=True)
sys.stdin.readline()  # the grant is revoked now
try:
    youtube.channels().list(part="id", mine=True).execute()
    print(json.dumps({"call": "worked"}), flush=True)
except HttpError as e:
    # The API refused the token: tell the daemon, then the next refresh names the fix.
    reply = creds.rejected(status=e.resp.status, detail="youtube channels.list said %d" % e.resp.status)
    try:
        creds.refresh(None)
        print(json.dumps({"refresh": "worked"}), flush=True)
    except exceptions.RefreshError as r:
        print(json.dumps({"status": e.resp.status, "state": reply["credential"]["state"], "error": str(r)}), flush=True)
"#;

fn google_api_client() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import googleapiclient.discovery, google.auth"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn the_google_api_client_builds_youtube_on_tether_credentials_and_a_revocation_names_the_fix()
{
    require!(util::oidc::available(), util::oidc::MISSING);
    require!(
        google_api_client(),
        "python3 with google-api-python-client (pip install google-api-python-client)"
    );
    let oidc = OidcProvider::start(Default::default());
    let a = TestAgent::start("", &oidc_credential("youtube", &oidc, "")).await;
    a.bootstrap("youtube", &oidc).await;
    let basic = oidc.confidential_client("basic");
    let introspect_client = format!(
        "{}:{}",
        basic.client_id,
        basic.client_secret.as_ref().expect("a secret").secret()
    );
    let mut child = python_agent(&a, YOUTUBE_SCRIPT)
        .env(
            "INTROSPECT_URL",
            oidc.issuer().join("/token/introspection").unwrap().as_str(),
        )
        .env("INTROSPECT_CLIENT", introspect_client)
        .spawn()
        .expect("run python3");
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = next_json(&mut lines).await;
    assert_eq!(first["channel"], "UCstandin", "{first}");
    // The library built the request from its bundled discovery document.
    assert_eq!(first["path"], "/youtube/v3/channels", "{first}");

    assert!(oidc.revoke_all().await >= 1);
    let mut stdin = child.stdin.take().unwrap();
    let told = std::time::Instant::now();
    stdin.write_all(b"\n").await.unwrap();
    let last = next_json(&mut lines).await;
    println!(
        "API 401 -> rejected() -> refresh error in {:?}",
        told.elapsed()
    );
    assert_eq!(last["status"], 401, "{last}");
    assert_eq!(last["state"], "dead", "{last}");
    let error = last["error"].as_str().unwrap();
    assert!(error.contains("tether reauth studio/youtube"), "{error}");
    a.wait_state("youtube", CredentialState::Dead, Duration::from_secs(2))
        .await;
}

/// An agent waiting with `wait_recovered()` while the owner re-authorizes with a box
/// unticked: the wait ends with the daemon's words instead of going on forever.
const WAIT_SCRIPT: &str = r#"
import json
from tether_agent import Tether, TetherError
t = Tether()
try:
    ev = t.wait_recovered("youtube", timeout=30,
                          on_listening=lambda: print(json.dumps({"listening": True}), flush=True))
    print(json.dumps({"returned": ev}), flush=True)
except TetherError as e:
    print(json.dumps({"code": e.code, "message": e.message}), flush=True)
"#;

#[tokio::test]
async fn wait_recovered_ends_with_the_missing_scope_when_the_new_grant_lacks_one() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    let a = super::challenges::dead_youtube_that_needs_email(&oidc).await;
    let mut child = python_agent(&a, WAIT_SCRIPT).spawn().expect("run python3");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    assert_eq!(next_json(&mut lines).await["listening"], true);

    oidc.set_dropped_scopes(&["email"]).await;
    let h = a.bootstrap("youtube", &oidc).await;
    assert_eq!(h.state, CredentialState::Degraded, "{h:?}");
    let told = next_json(&mut lines).await;
    assert_eq!(told["code"], "missing_scope", "{told}");
    assert_eq!(
        told["message"],
        "missing scope email: re-authorize and leave every box ticked"
    );
}
