//! The agent picks up new tokens without a restart. A real agent process (Python) reads
//! its token file once at startup and calls a stand-in API (the oidc-provider fixture's
//! userinfo) every 300 ms; the grant is revoked (the agent sees 401 and reports it) and
//! the owner re-authorizes. The same process then works again, told through the daemon's
//! `on_change` exec hook, through its signal hook, and through the Python client's
//! `on_recovered`. The exec hook reads the vault (`tether vault history`) while it runs:
//! the new generation is already committed. A hook that fails or hangs does not hold the
//! token back and shows in health, with one alert.

use super::harness::{oidc_credential, TestAgent, Webhook};
use crate::require;
use crate::util::oidc::{OidcOptions, OidcProvider};
use std::path::Path;
use std::time::Duration;
use tether::protocol::CredentialState;
use tokio::io::AsyncBufReadExt;

/// The agent: reads the token file once, re-reads it only on SIGHUP or (in mode
/// `recovered`) when the client's `on_recovered` says so; reports a 401 to the daemon.
const AGENT: &str = r#"
import json, os, signal, sys, time, urllib.request, urllib.error
from tether_agent import Tether
mode, token_file, api, pid_file = sys.argv[1:5]
def read():
    with open(token_file) as f:
        return json.load(f)["access_token"]
token = read()
reload = [False]
signal.signal(signal.SIGHUP, lambda *_: reload.__setitem__(0, True))
t = Tether()
if mode == "recovered":
    t.on_recovered("yt", lambda ev: reload.__setitem__(0, True))
with open(pid_file + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(pid_file + ".tmp", pid_file)
reported = None
while True:
    if reload[0]:
        reload[0] = False
        token = read()
        print(json.dumps({"reloaded": True}), flush=True)
    req = urllib.request.Request(api, headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except OSError:
        status = 0
    print(json.dumps({"status": status, "pid": os.getpid()}), flush=True)
    if status == 401 and reported != token:
        reported = token
        try:
            t.rejected("yt", status=401, detail="userinfo refused the token")
        except Exception as e:
            print(json.dumps({"rejected_error": str(e)}), flush=True)
    time.sleep(0.3)
"#;

/// How the agent hears of a new token.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Way {
    Exec,
    Signal,
    OnRecovered,
}

type Lines = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>;

/// The agent's next line (it prints one every 300 ms).
async fn next(lines: &mut Lines) -> serde_json::Value {
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the agent prints within 30 s")
        .expect("read the agent's output")
        .expect("the agent is still running");
    serde_json::from_str(&line).expect("the agent prints JSON")
}

/// Reads the agent's lines until one has `key` == `want`, for at most `within`; the
/// lines read on the way.
async fn until(
    lines: &mut Lines,
    key: &str,
    want: serde_json::Value,
    within: Duration,
    what: &str,
) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}; the agent printed {:?}",
            seen.iter().rev().take(5).collect::<Vec<_>>()
        );
        let v = next(lines).await;
        let hit = v[key] == want;
        seen.push(v);
        if hit {
            return seen;
        }
    }
}

/// The whole story for one way.
async fn story(way: Way) {
    let oidc = OidcProvider::start(OidcOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("out").join("token.json");
    let pid_file = dir.path().join("agent.pid");
    let hook_log = dir.path().join("hook.log");
    let config = dir.path().join("agent.toml");
    let hook_script = dir.path().join("agent-reload.sh");
    std::fs::write(
        &hook_script,
        format!(
            "#!/bin/sh\necho \"generation=$TETHER_GENERATION state=$TETHER_STATE credential=$TETHER_CREDENTIAL\" >> {log}\n{tether} vault history yt --config {config} | sed -n 2p >> {log}\n[ -f {pid} ] && kill -HUP \"$(cat {pid})\"\nexit 0\n",
            log = hook_log.display(),
            tether = env!("CARGO_BIN_EXE_tether"),
            config = config.display(),
            pid = pid_file.display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &hook_script,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let on_change = match way {
        Way::Exec => format!(
            "on_change = {{ exec = [\"{}\", \"{{name}}\"] }}\n",
            hook_script.display()
        ),
        Way::Signal => format!(
            "on_change = {{ signal = {{ pid_file = \"{}\", name = \"HUP\" }} }}\n",
            pid_file.display()
        ),
        Way::OnRecovered => String::new(),
    };
    let extra = format!(
        "probe_interval = \"1h\"\nrefresh_interval = \"1h\"\n{on_change}[[credentials.outputs]]\npath = \"{}\"\nformat = \"token_json\"\n",
        token_file.display()
    );
    let a = TestAgent::start_in(dir, "", &oidc_credential("yt", &oidc, &extra), |_| {}).await;
    a.bootstrap("yt", &oidc).await;
    let first_generation = a.cred("yt").await.generation;

    let fp = a.daemon.tls().expect("tls on").fingerprint.clone();
    let client_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python");
    let api = format!("{}/me", oidc.issuer().as_str().trim_end_matches('/'));
    let mode = match way {
        Way::OnRecovered => "recovered",
        _ => "signal",
    };
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", AGENT, mode])
        .arg(&token_file)
        .arg(&api)
        .arg(&pid_file)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PYTHONPATH", &client_dir)
        .env("TETHER_URL", &a.base)
        .env("TETHER_AGENT_TOKEN", &a.agent)
        .env("TETHER_FINGERPRINT", fp.to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run python3");
    let pid = child.id().expect("the agent runs");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Working with the token it read at startup.
    until(
        &mut lines,
        "status",
        200.into(),
        Duration::from_secs(20),
        "the agent works",
    )
    .await;

    // The grant is revoked: the agent sees 401 and reports it; the daemon finds it dead.
    assert!(oidc.revoke_all().await >= 1);
    until(
        &mut lines,
        "status",
        401.into(),
        Duration::from_secs(20),
        "the API refuses the revoked token",
    )
    .await;
    a.wait_state("yt", CredentialState::Dead, Duration::from_secs(20))
        .await;

    // The owner re-authorizes; the same process works again without a restart.
    let h = a.bootstrap("yt", &oidc).await;
    assert_eq!(h.state, CredentialState::Ok, "{h:?}");
    let generation = a.cred("yt").await.generation;
    assert!(generation > first_generation);
    let mut reloaded = false;
    loop {
        let v = next(&mut lines).await;
        if v["reloaded"] == true {
            reloaded = true;
        }
        if v["status"] == 200 {
            assert!(
                reloaded,
                "{way:?}: working again only after re-reading the file: {v}"
            );
            assert_eq!(v["pid"], pid, "the same agent process, never restarted");
            break;
        }
    }

    if way != Way::OnRecovered {
        // The hook ran after the new generation was durable, and health says it worked.
        let health = a.health().await;
        let run = health
            .on_change
            .iter()
            .find(|r| r.credential == "yt" && r.generation == generation)
            .unwrap_or_else(|| panic!("health shows the hook's run: {:?}", health.on_change));
        assert!(run.ok, "{run:?}");
    }
    if way == Way::Exec {
        let log = std::fs::read_to_string(&hook_log).unwrap();
        let want = format!("generation={generation} state=ok credential=yt");
        let i = log
            .lines()
            .position(|l| l == want)
            .unwrap_or_else(|| panic!("the hook ran for generation {generation}: {log}"));
        let newest_in_vault = log.lines().nth(i + 1).unwrap_or_default();
        assert!(
            newest_in_vault.split_whitespace().next() == Some(&generation.to_string()),
            "inside the hook, the vault's newest generation is already {generation}: {newest_in_vault:?}"
        );
    }
    let _ = child.kill().await;
}

#[tokio::test]
async fn an_exec_hook_tells_the_running_agent_after_the_commit() {
    require!(crate::util::oidc::available(), crate::util::oidc::MISSING);
    story(Way::Exec).await;
}

#[tokio::test]
async fn a_signal_hook_tells_the_running_agent() {
    require!(crate::util::oidc::available(), crate::util::oidc::MISSING);
    story(Way::Signal).await;
}

#[tokio::test]
async fn on_recovered_tells_an_agent_written_against_the_client() {
    require!(crate::util::oidc::available(), crate::util::oidc::MISSING);
    story(Way::OnRecovered).await;
}

/// A hook that hangs, and one that fails: the token is handed out at once, health shows
/// why each failed, and the owner gets one `hook_failed` alert per credential.
#[tokio::test]
async fn a_failing_or_hung_hook_never_holds_the_token_and_shows_in_health() {
    require!(crate::util::oidc::available(), crate::util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions::default());
    let hook = Webhook::start();
    let body = format!(
        "{}{}\n[alerts]\nreminder_interval = \"1h\"\n[[alerts.channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        oidc_credential(
            "hung",
            &oidc,
            "probe_interval = \"1h\"\non_change = { exec = [\"sleep\", \"30\"], timeout = \"1s\", debounce = \"100ms\" }\n"
        ),
        oidc_credential(
            "broken",
            &oidc,
            "probe_interval = \"1h\"\non_change = { exec = [\"sh\", \"-c\", \"echo cannot reach the agent >&2; exit 4\"], debounce = \"100ms\" }\n"
        ),
        hook.url
    );
    let a = TestAgent::start("", &body).await;
    for name in ["hung", "broken"] {
        a.bootstrap(name, &oidc).await;
        // The token is there while the hook runs (or hangs).
        let (status, v) = a.access_token(name).await;
        assert_eq!(status, 200, "{name}: {v}");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let report = loop {
        let h = a.health().await;
        if h.on_change.len() == 2 && h.on_change.iter().all(|r| !r.ok) {
            break h.on_change;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "both hooks ran within 15 s: {:?}",
            h.on_change
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let hung = report.iter().find(|r| r.credential == "hung").unwrap();
    assert!(!hung.ok);
    assert!(
        hung.result
            .contains("did not finish within 1 s and was killed"),
        "{hung:?}"
    );
    let broken = report.iter().find(|r| r.credential == "broken").unwrap();
    assert!(!broken.ok);
    assert_eq!(broken.result, "sh exited 4: cannot reach the agent");
    let sent = hook
        .wait_for(
            &["hook_failed", "broken", "exited 4"],
            Duration::from_secs(10),
        )
        .await;
    assert!(
        sent.contains("the agent was not told of its new token"),
        "{sent}"
    );
    hook.wait_for(&["hook_failed", "hung"], Duration::from_secs(10))
        .await;
}
