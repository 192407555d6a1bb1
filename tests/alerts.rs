//! Alert channels against real servers on loopback: an HTTP receiver for webhook, ntfy and
//! Telegram, and aiosmtpd for e-mail (plain and STARTTLS with login). `cli`: the
//! `tether agent alerts test` command against the same servers.

mod cli;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use chrono::{TimeZone, Utc};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tether::agent::alerts::{Alert, AlertKind, Alerter, AlertsConfig, RetryPolicy};
use tether::protocol::{ChannelHealth, ErrorInfo, ReauthKind};

const BOT_TOKEN: &str = "123456:AAbotSECRETtoken_x";
const NTFY_TOKEN: &str = "tk_ntfySECRETtoken";
const SMTP_PASSWORD: &str = "smtpSECRETpassword";

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("request to {} has no {name} header", self.path))
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("request body is UTF-8")
    }
}

#[derive(Default)]
struct ReceiverState {
    seen: Mutex<Vec<Seen>>,
    /// Answers to give, per path, before the default `200 {"ok":true}`.
    script: Mutex<HashMap<String, VecDeque<(u16, String)>>>,
}

/// A real HTTP server on 127.0.0.1 that records every request.
struct Receiver {
    addr: SocketAddr,
    state: Arc<ReceiverState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("bound listener has an address");
        let state = Arc::new(ReceiverState::default());
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("receiver runs");
        });
        Receiver { addr, state, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next `times` requests to `path` get `status` and `body`.
    fn answer(&self, path: &str, times: usize, status: u16, body: &str) {
        let mut script = self.state.script.lock().expect("script lock");
        let queue = script.entry(path.to_string()).or_default();
        for _ in 0..times {
            queue.push_back((status, body.to_string()));
        }
    }

    fn seen(&self, path: &str) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .expect("seen lock")
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

async fn record(
    State(state): State<Arc<ReceiverState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let path = uri.path().to_string();
    state.seen.lock().expect("seen lock").push(Seen {
        method,
        path: path.clone(),
        headers,
        body,
        at: Instant::now(),
    });
    let scripted = state
        .script
        .lock()
        .expect("script lock")
        .get_mut(&path)
        .and_then(|q| q.pop_front());
    let (status, body) = scripted.unwrap_or((200, r#"{"ok":true,"result":{}}"#.to_string()));
    (
        StatusCode::from_u16(status).expect("scripted status is valid"),
        [("content-type", "application/json")],
        body,
    )
}

fn dead_alert() -> Alert {
    Alert {
        agent: "studio".into(),
        credential: "youtube".into(),
        provider: "google".into(),
        kind: AlertKind::Dead,
        reauth: ReauthKind::Oauth,
        error: Some(ErrorInfo {
            code: "invalid_grant".into(),
            description: "Token has been expired or revoked.".into(),
        }),
        blocked_requests: 37,
        since: Utc
            .with_ymd_and_hms(2026, 3, 1, 9, 2, 0)
            .single()
            .expect("valid date"),
        refresh_expires_at: None,
        detail: None,
        challenge: None,
        challenge_origin: None,
        pending: None,
    }
}

/// Writes a 0600 secret file the config can point at.
fn secret_file(dir: &Path, name: &str, value: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).expect("write secret file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod 0600");
    path
}

fn fast_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        base_delay: Duration::from_millis(20),
        attempt_timeout: Duration::from_secs(10),
    }
}

fn config(toml_text: &str) -> AlertsConfig {
    toml::from_str(toml_text).expect("test config parses")
}

/// Config with a webhook, an ntfy topic and a Telegram chat, all served by `rx`.
fn http_channels(rx: &Receiver, dir: &Path) -> AlertsConfig {
    config(&http_channels_toml(rx, dir))
}

/// The text of [`http_channels`] (an `[alerts]` section's body).
fn http_channels_toml(rx: &Receiver, dir: &Path) -> String {
    let bot = secret_file(dir, "bot-token", BOT_TOKEN);
    let ntfy = secret_file(dir, "ntfy-token", NTFY_TOKEN);
    format!(
        r#"
        reminder_interval = "3h"
        [[channels]]
        name = "ops-chat"
        kind = "webhook"
        url = "{hook}"
        headers = {{ X-Hook-Key = "hookSECRETkey" }}
        [[channels]]
        name = "phone"
        kind = "ntfy"
        server = "{server}"
        topic = "tether-studio"
        token_file = "{ntfy}"
        [[channels]]
        name = "owner-telegram"
        kind = "telegram"
        bot_token_file = "{bot}"
        chat_id = -1001234
        api_base = "{tg}"
        "#,
        hook = rx.url("/hooks/T0/SECRETPATH"),
        server = rx.url(""),
        tg = rx.url("/tg"),
        ntfy = ntfy.display(),
        bot = bot.display(),
    )
}

fn health_of<'a>(health: &'a [ChannelHealth], name: &str) -> &'a ChannelHealth {
    health
        .iter()
        .find(|h| h.name == name)
        .unwrap_or_else(|| panic!("no health entry for {name}: {health:?}"))
}

#[tokio::test]
async fn webhook_ntfy_and_telegram_deliver_a_dead_alert() {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let alerter = Alerter::new(&http_channels(&rx, dir.path()), reqwest::Client::new())
        .expect("valid config")
        .with_retry(fast_retry(3));
    assert_eq!(alerter.reminder_interval(), Duration::from_secs(3 * 3600));

    let report = alerter.send(&dead_alert()).await;
    assert!(report.all_delivered(), "{report:?}");
    assert_eq!(report.delivered(), 3);

    // Webhook: Slack's `text`, Discord's `content`, and the structured fields.
    let hook = rx.seen("/hooks/T0/SECRETPATH");
    assert_eq!(hook.len(), 1);
    assert_eq!(hook[0].method, Method::POST);
    assert!(hook[0]
        .header("content-type")
        .starts_with("application/json"));
    assert_eq!(hook[0].header("x-hook-key"), "hookSECRETkey");
    let json = hook[0].json();
    let text = json["text"].as_str().expect("text is a string");
    for needle in [
        "studio",
        "youtube",
        "invalid_grant",
        "37 requests refused since 09:02",
        "tether reauth studio/youtube",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in {text}");
    }
    assert_eq!(json["content"], json["text"]);
    assert_eq!(json["agent"], "studio");
    assert_eq!(json["credential"], "youtube");
    assert_eq!(json["kind"], "dead");
    assert_eq!(json["error"]["code"], "invalid_grant");
    assert_eq!(json["blocked_requests"], 37);
    assert_eq!(json["fix"], "tether reauth studio/youtube");

    // ntfy: body text to /{topic}, urgent for a death.
    let push = rx.seen("/tether-studio");
    assert_eq!(push.len(), 1);
    assert_eq!(push[0].method, Method::POST);
    assert_eq!(push[0].header("priority"), "urgent");
    assert!(push[0].header("tags").contains("rotating_light"));
    assert!(push[0].header("title").contains("studio/youtube"));
    assert_eq!(
        push[0].header("authorization"),
        format!("Bearer {NTFY_TOKEN}")
    );
    let body = push[0].text();
    assert!(body.contains("invalid_grant"), "{body}");
    assert!(body.contains("tether reauth studio/youtube"), "{body}");

    // Telegram: sendMessage with the chat id and the text.
    let tg = rx.seen(&format!("/tg/bot{BOT_TOKEN}/sendMessage"));
    assert_eq!(tg.len(), 1);
    assert_eq!(tg[0].method, Method::POST);
    let json = tg[0].json();
    assert_eq!(json["chat_id"], "-1001234");
    let text = json["text"].as_str().expect("text is a string");
    assert!(text.contains("studio/youtube"), "{text}");
    assert!(text.contains("37 requests refused"), "{text}");

    let health = alerter.health();
    assert_eq!(health.len(), 3);
    for h in &health {
        assert!(h.ok && h.sent == 1 && h.failed == 0, "{h:?}");
        assert_eq!(h.last_error, None);
    }
    assert_eq!(health_of(&health, "phone").kind, "ntfy");
}

#[tokio::test]
async fn a_device_code_reaches_the_phone_with_a_button_to_its_page_and_the_webhook_without_the_code(
) {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let alerter = Alerter::new(&http_channels(&rx, dir.path()), reqwest::Client::new())
        .expect("valid config")
        .with_retry(fast_retry(3));
    let mut alert = dead_alert();
    alert.credential = "github".into();
    alert.provider = "github".into();
    alert.error = Some(ErrorInfo {
        code: "human_needed".into(),
        description: "sign in with the code".into(),
    });
    alert.challenge_origin = Some(tether::protocol::ChallengeOrigin::Daemon);
    alert.challenge = Some(tether::protocol::Challenge::DeviceCode {
        verification_uri: "https://github.com/login/device".into(),
        user_code: "WDJB-MJHT".into(),
        verification_uri_complete: None,
        expires_at: None,
    });
    let report = alerter.send(&alert).await;
    assert!(report.all_delivered(), "{report:?}");

    // ntfy: a one-tap button to the sign-in page, and the code in the text.
    let push = rx.seen("/tether-studio");
    assert_eq!(push.len(), 1);
    assert_eq!(
        push[0].header("actions"),
        "view, Tether sign-in on github.com, https://github.com/login/device, clear=true"
    );
    let body = push[0].text();
    assert!(
        body.contains("WDJB-MJHT") && body.contains("https://github.com/login/device"),
        "{body}"
    );
    // The webhook (often a shared chat, or another program's logs) says a code is
    // waiting, for which page and where to read it, never the code itself.
    let hook = rx.seen("/hooks/T0/SECRETPATH");
    let json = hook[0].json();
    assert!(!json.to_string().contains("WDJB-MJHT"), "{json}");
    let text = json["text"].as_str().unwrap().to_string();
    assert!(
        text.contains("https://github.com/login/device")
            && text.contains(
                "enter the code shown in the tray and by `tether challenge studio/github`"
            ),
        "{text}"
    );
    assert_eq!(json["challenge"]["code_waiting"], true, "{json}");
    assert_eq!(json["challenge"]["page"], "https://github.com/login/device");
    // Telegram reaches the owner's own phone: the page and the code (the owner may be
    // without the laptop).
    let tg = rx.seen(&format!("/tg/bot{BOT_TOKEN}/sendMessage"));
    let text = tg[0].json()["text"].as_str().unwrap().to_string();
    assert!(
        text.contains("WDJB-MJHT") && text.contains("https://github.com/login/device"),
        "{text}"
    );

    // A recovery has no button: there is nothing left to open.
    alert.kind = AlertKind::Recovered;
    assert!(alerter.send(&alert).await.all_delivered());
    let push = rx.seen("/tether-studio");
    assert_eq!(push.len(), 2);
    assert!(
        push[1].headers.get("actions").is_none(),
        "{:?}",
        push[1].headers
    );
}

#[tokio::test]
async fn a_channel_is_retried_with_backoff_until_it_delivers() {
    let rx = Receiver::start().await;
    rx.answer("/hook", 2, 503, "try later");
    let cfg = config(&format!(
        "[[channels]]\nname = 'hook'\nkind = 'webhook'\nurl = '{}'\n",
        rx.url("/hook")
    ));
    let alerter = Alerter::new(&cfg, reqwest::Client::new())
        .expect("valid config")
        .with_retry(fast_retry(3));

    let report = alerter.send(&dead_alert()).await;
    assert!(report.all_delivered(), "{report:?}");
    assert_eq!(report.outcomes[0].attempts, 3);

    let seen = rx.seen("/hook");
    assert_eq!(seen.len(), 3, "two 503s, then the delivery");
    // The waits double: at least 20 ms, then at least 40 ms.
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(20));
    assert!(seen[2].at - seen[1].at >= Duration::from_millis(40));

    let health = alerter.health();
    assert_eq!(
        health[0],
        ChannelHealth {
            name: "hook".into(),
            kind: "webhook".into(),
            ok: true,
            sent: 1,
            failed: 0,
            last_error: None,
        }
    );
}

#[tokio::test]
async fn failing_channels_show_in_health_and_never_stop_the_others() {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    // Webhook: fails every attempt. Telegram: refuses the token and echoes the path (with
    // the token) back, as a misbehaving proxy might. ntfy: works.
    rx.answer("/hooks/T0/SECRETPATH", 10, 500, "internal error");
    let tg_path = format!("/tg/bot{BOT_TOKEN}/sendMessage");
    rx.answer(
        &tg_path,
        10,
        401,
        &format!(r#"{{"ok":false,"error_code":401,"description":"Unauthorized: {tg_path}"}}"#),
    );
    let alerter = Alerter::new(&http_channels(&rx, dir.path()), reqwest::Client::new())
        .expect("valid config")
        .with_retry(fast_retry(3));

    let report = alerter.send(&dead_alert()).await;
    assert_eq!(report.delivered(), 1, "{report:?}");
    let by_name = |n: &str| {
        report
            .outcomes
            .iter()
            .find(|o| o.channel == n)
            .expect("outcome per channel")
    };
    assert_eq!(by_name("ops-chat").attempts, 3, "a 500 is retried");
    assert_eq!(by_name("owner-telegram").attempts, 1, "a 401 is not");
    assert!(by_name("phone").result.is_ok());
    assert_eq!(rx.seen("/tether-studio").len(), 1);

    let health = alerter.health();
    let hook = health_of(&health, "ops-chat");
    assert!(!hook.ok);
    assert_eq!((hook.sent, hook.failed), (0, 1));
    let err = hook.last_error.as_deref().expect("last error recorded");
    assert!(err.contains("HTTP 500"), "{err}");
    assert!(!err.contains("SECRETPATH"), "webhook path leaked: {err}");
    let tg = health_of(&health, "owner-telegram");
    assert!(!tg.ok);
    let err = tg.last_error.as_deref().expect("last error recorded");
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(!err.contains(BOT_TOKEN), "bot token leaked: {err}");
    let phone = health_of(&health, "phone");
    assert!(phone.ok && phone.sent == 1, "{phone:?}");

    // The next alert gets through once the webhook recovers; health follows.
    rx.state.script.lock().expect("script lock").clear();
    let report = alerter.send(&dead_alert()).await;
    assert!(report.all_delivered(), "{report:?}");
    let health = alerter.health();
    let hook = health_of(&health, "ops-chat");
    assert!(hook.ok);
    assert_eq!((hook.sent, hook.failed), (1, 1));
}

#[tokio::test]
async fn an_unreachable_telegram_api_is_reported_without_the_token() {
    // A port that was free a moment ago: connections are refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("address")
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let bot = secret_file(dir.path(), "bot", BOT_TOKEN);
    let cfg = config(&format!(
        "[[channels]]\nname='tg'\nkind='telegram'\nbot_token_file='{}'\nchat_id=42\napi_base='http://{closed}'\n",
        bot.display()
    ));
    let alerter = Alerter::new(&cfg, reqwest::Client::new())
        .expect("valid config")
        .with_retry(fast_retry(2));
    let report = alerter.send(&dead_alert()).await;
    let outcome = &report.outcomes[0];
    assert_eq!(outcome.attempts, 2, "connection errors are retried");
    let err = outcome.result.as_ref().expect_err("nothing listens there");
    let chain = err.chain();
    assert!(
        chain.contains(&format!("could not reach {closed}")),
        "{chain}"
    );
    assert!(!chain.contains(BOT_TOKEN), "bot token leaked: {chain}");
    assert!(
        !format!("{err:?}").contains(BOT_TOKEN),
        "bot token leaked in Debug"
    );
    let health = alerter.health();
    assert!(!health[0].ok);
    assert!(!health[0]
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains(BOT_TOKEN));
}

#[tokio::test]
async fn debug_output_never_shows_secrets() {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = http_channels(&rx, dir.path());
    let password = secret_file(dir.path(), "smtp", SMTP_PASSWORD);
    cfg.channels.extend(
        config(&format!(
            "[[channels]]\nname='mail'\nkind='email'\nsmtp_host='smtp.example.org'\nusername='tether'\n\
             password_file='{}'\nfrom='tether@example.org'\nto=['owner@example.org']\n",
            password.display()
        ))
        .channels,
    );
    let alerter = Alerter::new(&cfg, reqwest::Client::new()).expect("valid config");
    let dumps = format!("{cfg:?}\n{alerter:?}");
    for secret in [
        BOT_TOKEN,
        NTFY_TOKEN,
        SMTP_PASSWORD,
        "SECRETPATH",
        "hookSECRETkey",
    ] {
        assert!(!dumps.contains(secret), "{secret} leaked in:\n{dumps}");
    }
    // The dump still says which channels exist.
    assert!(dumps.contains("owner-telegram") && dumps.contains("smtp.example.org"));
}

#[test]
fn bad_configs_are_refused_with_a_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let check = |toml_text: &str, expect: &str| {
        let err = Alerter::new(&config(toml_text), reqwest::Client::new())
            .expect_err("config must be refused")
            .to_string();
        assert!(err.contains(expect), "{expect:?} not in {err:?}");
    };
    check(
        "[[channels]]\nname='m'\nkind='email'\nsmtp_host='smtp.example.org'\ntls='none'\nfrom='a@b.org'\nto=['c@d.org']\n",
        "clear text",
    );
    check(
        "[[channels]]\nname='m'\nkind='email'\nsmtp_host='127.0.0.1'\ntls='none'\nfrom='a@b.org'\nto=[]\n",
        "at least one recipient",
    );
    check(
        "[[channels]]\nname='t'\nkind='telegram'\nchat_id=1\n",
        "bot_token_file",
    );
    check(
        "[[channels]]\nname='t'\nkind='telegram'\nchat_id=1\nbot_token_env='TETHER_TEST_SURELY_UNSET_VAR'\n",
        "TETHER_TEST_SURELY_UNSET_VAR",
    );
    let missing = dir.path().join("nope");
    check(
        &format!(
            "[[channels]]\nname='t'\nkind='telegram'\nchat_id=1\nbot_token_file='{}'\n",
            missing.display()
        ),
        "could not read the bot token",
    );
    check(
        "[[channels]]\nname='w'\nkind='webhook'\nurl='http://hooks.example.org/x'\n",
        "use https",
    );
    check(
        "[[channels]]\nname='n'\nkind='ntfy'\ntopic='a/b'\n",
        "ntfy topic",
    );
}

/// A running aiosmtpd sink (tests/fixtures/smtp_sink.py); killed on drop.
struct SmtpSink {
    port: u16,
    outdir: PathBuf,
    _child: tokio::process::Child,
}

fn aiosmtpd_available() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl SmtpSink {
    async fn start(outdir: &Path, extra: &[&str]) -> SmtpSink {
        use tokio::io::AsyncBufReadExt;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp_sink.py");
        let mut child = tokio::process::Command::new("python3")
            .arg(script)
            .arg(outdir)
            .args(extra)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // pyenv-style python3 shims find their interpreter through HOME.
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start python3 smtp_sink.py");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("smtp sink says ready within 30 s")
            .expect("read smtp sink output")
            .expect("smtp sink exited before printing \"ready PORT\"");
        let port = line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected smtp sink output: {line:?}"));
        SmtpSink {
            port,
            outdir: outdir.to_path_buf(),
            _child: child,
        }
    }

    fn messages(&self) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(&self.outdir)
            .expect("read sink dir")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("read message"))
            .collect()
    }
}

#[tokio::test]
async fn email_is_delivered_through_a_real_smtp_server() {
    crate::require!(
        aiosmtpd_available(),
        "python3 with aiosmtpd (pip install aiosmtpd)"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = SmtpSink::start(dir.path(), &[]).await;
    let cfg = config(&format!(
        "[[channels]]\nname='mail'\nkind='email'\nsmtp_host='127.0.0.1'\nsmtp_port={}\ntls='none'\n\
         from='Tether <tether@example.org>'\nto=['owner@example.org', 'ops@example.org']\n",
        sink.port
    ));
    let alerter = Alerter::new(&cfg, reqwest::Client::new())
        .expect("valid config")
        .with_retry(fast_retry(1));

    let report = alerter.send(&dead_alert()).await;
    assert!(report.all_delivered(), "{report:?}");
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert!(m.contains("X-Envelope-From: tether@example.org"), "{m}");
    assert!(m.contains("owner@example.org, ops@example.org"), "{m}");
    assert!(m.contains("Subject: tether: studio/youtube is dead"), "{m}");
    for needle in [
        "invalid_grant",
        "37 requests refused since 09:02",
        "tether reauth studio/youtube",
    ] {
        assert!(m.contains(needle), "{needle:?} missing in {m}");
    }
    assert_eq!(alerter.health()[0].sent, 1);
}

/// A CA and a `localhost` certificate signed by it, as PEM files in `dir`.
fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tether test ca");
    let ca = ca_params.self_signed(&ca_key).expect("self-sign ca");
    let key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("leaf params")
        .signed_by(&key, &ca, &ca_key)
        .expect("sign leaf");
    let write = |name: &str, pem: String| {
        let p = dir.join(name);
        std::fs::write(&p, pem).expect("write pem");
        p
    };
    (
        write("ca.pem", ca.pem()),
        write("cert.pem", leaf.pem()),
        write("key.pem", key.serialize_pem()),
    )
}

#[tokio::test]
async fn email_uses_starttls_and_logs_in() {
    crate::require!(
        aiosmtpd_available(),
        "python3 with aiosmtpd (pip install aiosmtpd)"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let outdir = dir.path().join("out");
    std::fs::create_dir(&outdir).expect("mkdir out");
    let (ca, cert, key) = tls_files(dir.path());
    let sink = SmtpSink::start(
        &outdir,
        &[
            "--cert",
            cert.to_str().expect("utf-8 path"),
            "--key",
            key.to_str().expect("utf-8 path"),
            "--user",
            "tether",
            "--password",
            SMTP_PASSWORD,
        ],
    )
    .await;
    let password = secret_file(dir.path(), "smtp-password", SMTP_PASSWORD);
    let channel = |ca_line: String| {
        config(&format!(
            "[[channels]]\nname='mail'\nkind='email'\nsmtp_host='localhost'\nsmtp_port={}\n\
             username='tether'\npassword_file='{}'\n{ca_line}\n\
             from='tether@example.org'\nto=['owner@example.org']\n",
            sink.port,
            password.display()
        ))
    };

    // Without the CA the server's certificate is not trusted: nothing is sent.
    let untrusted = Alerter::new(&channel(String::new()), reqwest::Client::new())
        .expect("valid config")
        .with_retry(fast_retry(1));
    let report = untrusted.send(&dead_alert()).await;
    assert_eq!(report.delivered(), 0, "{report:?}");
    let err = untrusted.health()[0].last_error.clone().unwrap_or_default();
    assert!(
        err.contains("certificate"),
        "expected a certificate error, got {err:?}"
    );
    assert!(!err.contains(SMTP_PASSWORD));
    assert!(sink.messages().is_empty());

    let alerter = Alerter::new(
        &channel(format!("ca_file='{}'", ca.display())),
        reqwest::Client::new(),
    )
    .expect("valid config")
    .with_retry(fast_retry(1));
    let report = alerter.send(&dead_alert()).await;
    assert!(report.all_delivered(), "{report:?}");
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].contains("X-Auth-User: tether"),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains("tether reauth studio/youtube"));
}
