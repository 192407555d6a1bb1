//! The `tether demo` script: a daemon with two credentials backed by the demo provider, the
//! companion paired to it, and a scripted revocation — everything on loopback, every file
//! in one temporary directory that is removed on exit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpListener;

use super::provider::{DemoProvider, DEMO_CLIENT_ID};
use crate::agent::{self, config as agent_config, Daemon};
use crate::companion::notifier::{DesktopNotifier, Tee, TerminalNotifier};
use crate::companion::pair::PairOptions;
use crate::companion::reauth::{Opener, PrintUrl, ReauthOptions, ReauthProgress, SystemBrowser};
use crate::companion::secrets::Backend;
use crate::companion::watcher::{WatchEvent, WatchTiming};
use crate::companion::Companion;
use crate::protocol::{CredentialState, PairingCode};
use crate::secret::{AccessToken, RefreshToken};
use crate::vault::{Record, Vault};

/// The demo agent's name.
pub const DEMO_AGENT: &str = "studio";
/// The OAuth credential the demo revokes.
pub const DEMO_OAUTH: &str = "youtube";
/// The paste-kind credential.
pub const DEMO_PASTE: &str = "telegram";

/// How long the tray stays up, green, after the recovery that ends an `exit_when_recovered` demo.
const TRAY_LINGER: Duration = Duration::from_secs(10);

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// When the scripted revocation happens.
    pub revoke_after: Duration,
    /// Print the consent URL instead of opening a browser.
    pub no_browser: bool,
    /// Start the tray app (`tether-tray` next to this binary) when a display is available.
    pub tray: bool,
    /// End the demo by itself once the revoked credential works again (for scripts and tests).
    pub exit_when_recovered: bool,
}

/// Why the demo stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// A step failed; the message says which.
    #[error("demo: could not {step}")]
    Step {
        /// What the demo was doing.
        step: &'static str,
        /// Why it failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn step<E: std::error::Error + Send + Sync + 'static>(
    step: &'static str,
) -> impl FnOnce(E) -> DemoError {
    move |e| DemoError::Step {
        step,
        source: Box::new(e),
    }
}

/// The demo's temporary directory; removed when dropped, so Ctrl-C leaves nothing behind.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        use std::os::unix::fs::DirBuilderExt;
        let path =
            std::env::temp_dir().join(format!("tether-demo-{}", crate::secret::random_token(6)));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn say(text: &str) {
    println!("\n[demo] {text}");
}

fn agent_toml(dir: &Path, listen: std::net::SocketAddr, provider: &str) -> String {
    let d = dir.display();
    format!(
        r#"
name = "{DEMO_AGENT}"
listen = "{listen}"
state_dir = "{d}/server/state"
backup_dirs = ["{d}/server/backup"]

[[credentials]]
name = "{DEMO_OAUTH}"
provider = "generic"
client_id = "{DEMO_CLIENT_ID}"
probe_interval = "15s"
refresh_interval = "1h"
outputs = [{{ path = "{d}/server/agent/token.json", format = "authorized_user" }}]
[credentials.overrides]
auth_url = "{provider}/authorize"
token_url = "{provider}/token"
revoke_url = "{provider}/revoke"
scopes = ["demo.upload"]
probe_url = "{provider}/userinfo"
probe_method = "user_info"

[[credentials]]
name = "{DEMO_PASTE}"
provider = "telegram"
probe_interval = "15s"
[credentials.overrides]
probe_url = "{provider}"
"#
    )
}

fn seed_vault(cfg: &agent::config::AgentConfig, provider: &DemoProvider) -> Result<(), DemoError> {
    let vault_cfg =
        agent::config::vault::vault_config_for(cfg).map_err(step("read the demo vault config"))?;
    let (vault, _) = Vault::open(vault_cfg).map_err(step("open the demo vault"))?;
    let (access, refresh) = provider.issue_grant();
    let mut yt = Record::new(DEMO_OAUTH, "generic");
    yt.account = Some("Demo Channel".into());
    yt.access_token = Some(AccessToken::new(access));
    yt.refresh_token = Some(RefreshToken::new(refresh));
    yt.token_type = "Bearer".into();
    yt.scopes = vec!["demo.upload".into()];
    yt.obtained_at = Utc::now();
    yt.expires_at = Some(Utc::now() + chrono::Duration::hours(1));
    vault
        .commit(yt)
        .map_err(step("store the demo YouTube token"))?;
    let bot = provider.issue_bot_token();
    let mut tg = Record::new(DEMO_PASTE, "telegram");
    tg.account = Some("@demo_bot (bot id 1)".into());
    tg.access_token = Some(AccessToken::new(bot.clone()));
    tg.refresh_token = Some(RefreshToken::new(bot));
    vault
        .commit(tg)
        .map_err(step("store the demo Telegram token"))?;
    Ok(())
}

fn tray_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.join("tether-tray");
    p.is_file().then_some(p)
}

/// Runs the demo until `shutdown` resolves (or, with `exit_when_recovered`, until the
/// revoked credential works again).
pub async fn run(
    opts: DemoOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    let tmp = TempDir::new().map_err(step("create a temporary directory"))?;
    let dir = tmp.0.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    // 1. The demo provider.
    let plistener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(step("bind the demo provider"))?;
    let provider =
        DemoProvider::start(plistener, stopped()).map_err(step("start the demo provider"))?;
    say(&format!(
        "Started a DEMO authorization server at {} (a stand-in for Google; no real account involved).",
        provider.base_url()
    ));

    // 2. The agent daemon, with a working YouTube grant and a Telegram bot token.
    let alistener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(step("bind the agent daemon"))?;
    let listen = alistener
        .local_addr()
        .map_err(step("read the daemon's address"))?;
    let cfg = agent_config::parse_str(&agent_toml(&dir, listen, provider.base_url()))
        .map_err(step("build the demo agent config"))?;
    seed_vault(&cfg, &provider)?;
    let daemon = Daemon::build(cfg, crate::oauth::http_client())
        .await
        .map_err(step("start the agent daemon"))?;
    let fingerprint = daemon.tls().map(|t| t.fingerprint.clone());
    let serve_daemon = daemon.clone();
    let server = tokio::spawn(agent::serve(alistener, serve_daemon, stopped()));
    say(&format!(
        "Started the agent daemon `{DEMO_AGENT}` at https://{listen} with two credentials:\n       \
         {DEMO_OAUTH} (OAuth, renders {}/server/agent/token.json for the agent) and {DEMO_PASTE} (a pasted bot token).",
        dir.display()
    ));

    // 3. Pair the companion, with its secrets in a file inside the temp dir (the demo must
    //    not leave entries in your real keyring).
    let (secret, _) = daemon
        .auth()
        .create_pairing(agent::access::auth::PAIRING_TTL)
        .map_err(step("create a pairing code"))?;
    let code = PairingCode {
        url: format!("https://{listen}"),
        fingerprint,
        secret,
    };
    let companion_dir = dir.join("laptop");
    let companion = Companion::open(&companion_dir, Backend::File);
    companion
        .pair(&code.to_link(), &PairOptions::default(), &mut |_| true)
        .await
        .map_err(step("pair the companion"))?;
    say("Paired the companion (the laptop side) with the daemon over HTTPS with a pinned certificate.");

    // 4. The tray app when there is a display, and the terminal watcher always.
    let display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let mut tray = None;
    if opts.tray && display {
        match tray_binary() {
            Some(bin) => {
                let child = tokio::process::Command::new(bin)
                    .env("TETHER_CONFIG_DIR", &companion_dir)
                    .env("TETHER_SECRETS", "file")
                    .kill_on_drop(true)
                    .spawn();
                match child {
                    Ok(c) => {
                        say("Started the tray app: look for Tether's icon in your system tray (green now).");
                        tray = Some(c);
                    }
                    Err(e) => say(&format!("could not start the tray app ({e}); carrying on in the terminal")),
                }
            }
            None => say("The tray app is not built (`cargo build -p tether-tray`); carrying on in the terminal."),
        }
    }
    // With the tray app running, it shows the desktop notifications.
    let desktop = tray
        .is_none()
        .then(|| DesktopNotifier::new().ok())
        .flatten();
    let notifier = Arc::new(Tee::new(TerminalNotifier::stdout(), desktop));
    let opener: Arc<dyn Opener> = if opts.no_browser {
        Arc::new(PrintUrl)
    } else {
        Arc::new(SystemBrowser)
    };
    let mut timing = WatchTiming::from_config(
        &companion
            .config()
            .map_err(step("read the companion config"))?,
    );
    timing.poll = Duration::from_secs(5);
    // The demo follows the credentials itself in both modes: in the terminal it tells the
    // story; with the tray it only narrates (the tray shows state and runs re-authorization),
    // and it still needs the events to end by itself with `exit_when_recovered`.
    let mut watcher = companion
        .watch_with(timing, notifier, tray.is_none().then(|| opener.clone()))
        .map_err(step("start the watcher"))?;

    say(&format!(
        "Everything is green. In {} seconds the demo provider will revoke the YouTube grant, as Google does\n       \
         when a token is revoked. Watch the daemon notice it (its probe runs every 15 s).",
        opts.revoke_after.as_secs()
    ));
    if tray.is_none() {
        say(&format!(
            "When it turns red: press Enter here (or click Re-authorize on the desktop notification) to run\n       \
             `tether reauth {DEMO_AGENT}/{DEMO_OAUTH}`; then click Allow on the consent page."
        ));
    }

    // 5. The scripted revocation.
    let revoker = provider.clone();
    let revoke_after = opts.revoke_after;
    tokio::spawn(async move {
        tokio::time::sleep(revoke_after).await;
        revoker.revoke_grants();
        say("The demo provider just REVOKED the YouTube grant. Nothing tells the agent yet...");
    });

    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut shutdown = std::pin::pin!(shutdown);
    let mut was_dead = false;
    let mut linger = false;
    let result = loop {
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            line = stdin.next_line(), if stdin_open && tray.is_none() => {
                match line {
                    Ok(Some(_)) => {
                        let companion = companion.clone();
                        let opener = opener.clone();
                        tokio::spawn(async move {
                            let progress = |p: ReauthProgress| match p {
                                ReauthProgress::Verifying => say("The browser came back; the daemon is exchanging and verifying the code..."),
                                ReauthProgress::WaitingForBrowser { open_error: None, .. } => say("Waiting for you in the browser: click Allow."),
                                _ => {}
                            };
                            match companion
                                .reauth(DEMO_AGENT, DEMO_OAUTH, opener.as_ref(), ReauthOptions::default(), &progress)
                                .await
                            {
                                Ok(h) => say(&format!("Re-authorized: {DEMO_AGENT} · {DEMO_OAUTH} is {} again.", h.state)),
                                Err(e) => say(&format!("re-authorization did not finish: {e}")),
                            }
                        });
                    }
                    _ => stdin_open = false,
                }
            }
            ev = watcher.next_event() => {
                let Some(ev) = ev else { break Ok(()) };
                if let WatchEvent::Credential { agent, credential, .. } = &ev {
                    if credential.name == DEMO_OAUTH {
                        match credential.state {
                            CredentialState::Dead if !was_dead => {
                                was_dead = true;
                                let todo = if tray.is_some() {
                                    "Click \"Re-authorize\" in the tray menu or the Tether window."
                                } else {
                                    "Press Enter to re-authorize (or use the notification)."
                                };
                                say(&format!("{agent} · {} is DEAD. {todo}", credential.name));
                            }
                            CredentialState::Ok if was_dead => {
                                say(&format!(
                                    "{agent} · {} is green again: the agent's token file was re-rendered and the broker serves fresh tokens.\n       \
                                     Try `tether reauth` on a real provider next: see the README. Ctrl-C ends the demo.",
                                    credential.name
                                ));
                                if opts.exit_when_recovered {
                                    linger = tray.is_some();
                                    break Ok(());
                                }
                                was_dead = false;
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    };

    if linger {
        // The tray turns green on the same event that ended the loop: leave it on screen a
        // moment, so whoever watches (a person, or a test taking a screenshot) sees it.
        say(&format!(
            "The demo ends in {} seconds (Ctrl-C ends it now).",
            TRAY_LINGER.as_secs()
        ));
        tokio::select! {
            _ = tokio::time::sleep(TRAY_LINGER) => {}
            _ = &mut shutdown => {}
        }
    }
    say("Stopping: the daemon finishes its writes, then every file of the demo is removed.");
    watcher.shutdown().await;
    if let Some(mut t) = tray.take() {
        let _ = t.kill().await;
    }
    let _ = stop_tx.send(true);
    daemon.begin_shutdown();
    let _ = server.await;
    drop(tmp);
    result
}
