//! Config reload (SIGHUP): credentials and channels added, changed and removed in a running
//! daemon, against the real oidc-provider with rotating refresh tokens (a refresh token
//! spent twice revokes the whole grant, so a reload that double-spends cannot pass).
//!
//! A refresh is held "in flight" by a gate: a small HTTP relay on loopback in front of the
//! provider's token endpoint that, when armed, parks the next token request until the test
//! releases it.

use super::harness::{config_head, oidc_credential, TestAgent, Webhook};
use super::restart::spawn_logging;
use crate::require;
use crate::util;
use crate::util::oidc::{OidcOptions, OidcProvider};
use reqwest::Method;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tether::agent::access::auth::{AuthStore, Role};
use tether::protocol::{CredentialState, ReauthStart};
use tokio::sync::Notify;

/// The relay: forwards everything to `upstream`; an armed gate holds the next `/token`.
struct Gate {
    base: String,
    armed: Arc<AtomicBool>,
    held: Arc<Notify>,
    release: Arc<Notify>,
    _task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct GateState {
    upstream: String,
    armed: Arc<AtomicBool>,
    held: Arc<Notify>,
    release: Arc<Notify>,
    http: reqwest::Client,
}

async fn relay(
    axum::extract::State(g): axum::extract::State<GateState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    if uri.path().ends_with("/token") && g.armed.swap(false, Ordering::SeqCst) {
        g.held.notify_one();
        g.release.notified().await;
    }
    let mut req = g.http.request(
        method,
        format!(
            "{}{}",
            g.upstream,
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        ),
    );
    for (k, v) in &headers {
        if k != axum::http::header::HOST && k != axum::http::header::CONTENT_LENGTH {
            req = req.header(k, v);
        }
    }
    let resp = req.body(body).send().await.expect("upstream answers");
    let status = resp.status();
    let ctype = resp.headers().get(reqwest::header::CONTENT_TYPE).cloned();
    let bytes = resp.bytes().await.expect("upstream body");
    let mut out = axum::response::Response::new(axum::body::Body::from(bytes));
    *out.status_mut() = status;
    if let Some(c) = ctype {
        out.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, c);
    }
    out
}

impl Gate {
    async fn start(oidc: &OidcProvider) -> Gate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let issuer = oidc.issuer();
        let upstream = format!(
            "{}://{}",
            issuer.scheme(),
            issuer
                .host_str()
                .zip(issuer.port())
                .map(|(h, p)| format!("{h}:{p}"))
                .unwrap()
        );
        let state = GateState {
            upstream,
            armed: Arc::default(),
            held: Arc::default(),
            release: Arc::default(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        };
        let (armed, held, release) = (
            state.armed.clone(),
            state.held.clone(),
            state.release.clone(),
        );
        let app = axum::Router::new().fallback(relay).with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Gate {
            base,
            armed,
            held,
            release,
            _task: task,
        }
    }

    /// A credential at the fixture whose token endpoint is behind this gate.
    fn credential(&self, name: &str, oidc: &OidcProvider, extra: &str) -> String {
        let direct = oidc.issuer().as_str().trim_end_matches('/').to_string();
        oidc_credential(name, oidc, extra).replace(
            &format!("token_url = \"{direct}/token\""),
            &format!("token_url = \"{}/token\"", self.base),
        )
    }
}

/// Tells when a file in a directory (or the directory itself) is opened: inotify's
/// IN_OPEN, read without blocking.
struct OpenWatch(std::os::fd::OwnedFd);

impl OpenWatch {
    fn new(dir: &std::path::Path) -> OpenWatch {
        use std::os::fd::{AsRawFd, FromRawFd};
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: inotify_init1 takes no pointers; the descriptor is checked, then owned.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a fresh descriptor that nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid descriptor and a NUL-terminated path that outlives the call.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_OPEN) };
        assert!(
            wd >= 0,
            "inotify_add_watch {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
        OpenWatch(fd)
    }

    /// True when something was opened since the last call.
    fn opened(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 4096];
        let mut any = false;
        loop {
            // SAFETY: reads at most `buf.len()` bytes into `buf`.
            let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return any;
            }
            any = true;
        }
    }
}

/// Keeps scheduled refreshes out of the way: only the test's own requests refresh.
const QUIET: &str = "keep_fresh = false\nrefresh_interval = \"1h\"";

fn reload_config(a: &TestAgent, body: &str) -> tether::agent::config::AgentConfig {
    let path = a.config_path();
    std::fs::write(&path, format!("{}{body}", config_head(a.dir.path(), ""))).unwrap();
    tether::agent::config::parse(&path).expect("new config parses")
}

/// `POST /v1/credentials/NAME/rejected` with the agent token, in the background: the
/// daemon drops the token and refreshes at once.
fn report_rejected(a: &TestAgent, name: &str) -> tokio::task::JoinHandle<(u16, serde_json::Value)> {
    let req = a
        .req(
            Method::POST,
            &format!("/v1/credentials/{name}/rejected"),
            Some(&a.agent),
        )
        .json(&serde_json::json!({"status": 401}));
    tokio::spawn(async move {
        let resp = req.send().await.expect("rejected report");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("json reply"))
    })
}

async fn token_works(oidc: &OidcProvider, token: &str) -> bool {
    tether::oauth::http_client()
        .get(oidc.issuer().join("/me").unwrap())
        .bearer_auth(token)
        .send()
        .await
        .map(|r| r.status().is_success())
        .unwrap_or(false)
}

#[tokio::test]
async fn a_credential_added_mid_refresh_and_mid_stream_drops_nothing() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions {
        rotate_refresh_tokens: true,
        ..Default::default()
    });
    let gate = Gate::start(&oidc).await;
    let body = format!(
        "{}{}",
        oidc_credential("a", &oidc, QUIET),
        gate.credential("b", &oidc, QUIET)
    );
    let a = TestAgent::start("", &body).await;
    a.bootstrap("a", &oidc).await;
    a.bootstrap("b", &oidc).await;
    let (status, before) = a.access_token("a").await;
    assert_eq!(status, 200, "{before}");
    let mut events = a.events().await;
    // A re-auth session started before the reload, finished after it.
    let session: ReauthStart = a.post_json("/v1/credentials/a/reauth", None).await;

    // b's refresh is in flight (parked at the gate) while c is added.
    gate.armed.store(true, Ordering::SeqCst);
    let refresh = report_rejected(&a, "b");
    tokio::time::timeout(Duration::from_secs(30), gate.held.notified())
        .await
        .expect("b's refresh reaches the token endpoint");
    let new = reload_config(&a, &format!("{body}{}", oidc_credential("c", &oidc, QUIET)));
    let report = tokio::time::timeout(Duration::from_secs(30), a.daemon.reload(new))
        .await
        .expect("adding a credential does not wait for another one's refresh")
        .expect("reload applies");
    assert_eq!(report.added, vec!["c".to_string()]);
    assert!(
        report.changed.is_empty() && report.removed.is_empty(),
        "{report:?}"
    );
    assert!(report.needs_restart.is_empty(), "{report:?}");
    gate.release.notify_one();
    let (status, reply) = refresh.await.unwrap();
    assert_eq!(status, 200, "{reply}");
    let b_token = reply["token"]["access_token"]
        .as_str()
        .expect("a fresh token");
    assert!(token_works(&oidc, b_token).await);

    // Nothing was dropped: a's cached token is the one handed out before, the device
    // token works, b is fine and the grant chain was never broken.
    let (status, after) = a.access_token("a").await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["access_token"], before["access_token"]);
    let health = a.health().await;
    let names: Vec<_> = health.credentials.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(a.cred("b").await.state, CredentialState::Ok);
    let counters = oidc.counters().await;
    assert_eq!(counters.grants_revoked, 0, "{counters:?}");
    assert_eq!(counters.grant_errors, 0, "{counters:?}");

    // The session from before the reload completes.
    let redirect_uri = "http://127.0.0.1:9/callback";
    let mut url = url::Url::parse(&session.authorize_url).unwrap();
    url.query_pairs_mut()
        .append_pair("redirect_uri", redirect_uri);
    let cb = oidc.consent(&url).await;
    let q: std::collections::HashMap<String, String> = cb.query_pairs().into_owned().collect();
    let _: serde_json::Value = a
        .post_json(
            &format!("/v1/reauth/{}/complete", session.session),
            Some(serde_json::json!({"code": q["code"], "state": q["state"], "redirect_uri": redirect_uri})),
        )
        .await;

    // The stream opened before the reload hears about the new credential.
    a.bootstrap("c", &oidc).await;
    events
        .wait_for("c", CredentialState::Ok, Duration::from_secs(30))
        .await;
    let (status, c) = a.access_token("c").await;
    assert_eq!(status, 200, "{c}");
}

#[tokio::test]
async fn a_changed_credential_waits_for_its_refresh_and_a_removed_one_keeps_its_tokens() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions {
        rotate_refresh_tokens: true,
        ..Default::default()
    });
    let gate = Gate::start(&oidc).await;
    let old_hook = Webhook::start();
    let new_hook = Webhook::start();
    let channel = |name: &str, url: &str| {
        format!("\n[alerts]\n[[alerts.channels]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"{url}\"\n")
    };
    let creds = format!(
        "{}{}",
        oidc_credential("a", &oidc, QUIET),
        gate.credential("b", &oidc, QUIET)
    );
    let a = TestAgent::start("", &format!("{creds}{}", channel("old", &old_hook.url))).await;
    a.bootstrap("a", &oidc).await;
    a.bootstrap("b", &oidc).await;
    let (_, a_token) = a.access_token("a").await;

    gate.armed.store(true, Ordering::SeqCst);
    let refresh = report_rejected(&a, "b");
    tokio::time::timeout(Duration::from_secs(30), gate.held.notified())
        .await
        .expect("b's refresh reaches the token endpoint");
    // b changes (probe interval), a goes, the channel is replaced.
    let changed = format!(
        "{}{}",
        gate.credential("b", &oidc, &format!("{QUIET}\nprobe_interval = \"45s\"")),
        channel("new", &new_hook.url)
    );
    let new = reload_config(&a, &changed);
    let opens = OpenWatch::new(&a.dir.path().join("state").join("vault").join("b"));
    let daemon = a.daemon.clone();
    let mut reload = tokio::spawn(async move { daemon.reload(new).await });
    // The reload reads b's record from the vault (the positive signal): its last step
    // before it takes b's flight lock, which the refresh in flight holds.
    crate::util::eventually(
        Duration::from_secs(30),
        "the reload reads b's vault record",
        || opens.opened().then_some(()),
    )
    .await;
    // The swap waits for b's refresh: it cannot finish while the gate holds it. The pause
    // is what is tested.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut reload)
            .await
            .is_err(),
        "the reload replaced b while its refresh was in flight"
    );
    gate.release.notify_one();
    let report = reload.await.unwrap().expect("reload applies");
    assert_eq!(report.changed, vec!["b".to_string()]);
    assert_eq!(report.removed, vec!["a".to_string()]);
    assert_eq!(report.channels, vec!["new".to_string()]);
    let (status, reply) = refresh.await.unwrap();
    assert_eq!(status, 200, "{reply}");

    // The new b has the token the old one's refresh stored, and refreshes from the
    // rotated refresh token: the chain holds.
    let b = a.cred("b").await;
    assert_eq!(b.state, CredentialState::Ok);
    let (status, t) = a.access_token("b").await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["access_token"], reply["token"]["access_token"]);
    let again = report_rejected(&a, "b").await.unwrap();
    assert_eq!(again.0, 200, "{}", again.1);
    let counters = oidc.counters().await;
    assert_eq!(counters.grants_revoked, 0, "{counters:?}");
    assert_eq!(counters.grant_errors, 0, "{counters:?}");

    // a is gone from the API; its tokens stay in the vault, and adding it back serves
    // them without a new authorization.
    let (status, _) = a.access_token("a").await;
    assert_eq!(status, 404);
    let health = a.health().await;
    assert_eq!(health.credentials.len(), 1);
    assert_eq!(
        health
            .alerts
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["new"]
    );
    let back = reload_config(&a, &format!("{creds}{}", channel("new", &new_hook.url)));
    let report = a.daemon.reload(back).await.expect("reload applies");
    assert_eq!(report.added, vec!["a".to_string()]);
    let (status, t) = a.access_token("a").await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["access_token"], a_token["access_token"]);

    // A config that cannot be applied changes nothing.
    let broken = reload_config(
        &a,
        &format!(
            "{creds}\n[[credentials]]\nname = \"d\"\nprovider = \"google\"\nclient_id = \"x\"\nclient_secret_file = \"{}\"\n",
            a.dir.path().join("missing-secret").display()
        ),
    );
    let err = a.daemon.reload(broken).await.unwrap_err();
    assert!(
        format!("{err}").contains("missing-secret"),
        "the error names the file: {err}"
    );
    assert_eq!(a.health().await.credentials.len(), 2);
    assert!(old_hook.bodies().is_empty());
}

#[tokio::test]
async fn sighup_reloads_the_running_binary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    let head = config_head(dir.path(), "");
    std::fs::write(&path, &head).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let (_, device) = AuthStore::open(&state)
        .unwrap()
        .create_token(Role::Device, "laptop")
        .unwrap();
    // Its log at warn (whatever TETHER_TEST_DAEMON_LOG says): a refused reload is an error.
    let d = spawn_logging(&path, "warn");
    assert!(d.health(device.secret()).await.credentials.is_empty());

    let out = std::process::Command::new(util::tether_bin())
        .args(["agent", "add", "bot", "--provider", "telegram", "--config"])
        .arg(&path)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SAFETY: kill on our own child's pid.
    assert_eq!(unsafe { libc::kill(d.child.id() as i32, libc::SIGHUP) }, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let h = d.health(device.secret()).await;
        if h.credentials.iter().any(|c| c.name == "bot") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon did not load the new credential after SIGHUP: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A SIGHUP with a broken file is refused and the daemon keeps running; the next good
    // one applies.
    std::fs::write(&path, format!("{head}\nbogus = 1\n")).unwrap();
    let refusals = || {
        d.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("reload refused, nothing changed"))
            .count()
    };
    assert_eq!(refusals(), 0);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(d.child.id() as i32, libc::SIGHUP) }, 0);
    // The daemon read the broken file and said so (the positive signal) before the good
    // one replaces it; it still serves what it had.
    crate::util::eventually(
        Duration::from_secs(30),
        "the broken file's reload is refused in the log",
        || (refusals() > 0).then_some(()),
    )
    .await;
    assert_eq!(refusals(), 1, "one SIGHUP, one refusal: {:#?}", d.log);
    let names: Vec<String> = d
        .health(device.secret())
        .await
        .credentials
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["bot"], "the refused reload changed nothing");
    std::fs::write(
        &path,
        format!("{head}\n[[credentials]]\nname = \"bot2\"\nprovider = \"telegram\"\n"),
    )
    .unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(d.child.id() as i32, libc::SIGHUP) }, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let h = d.health(device.secret()).await;
        let names: Vec<_> = h.credentials.iter().map(|c| c.name.as_str()).collect();
        if names == ["bot2"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon did not apply the good file after the broken one: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
