//! The companion's commands: `tether pair`, `unpair`, `status`, `watch`, `reauth`, `paste`.
//! A thin layer over [`tether::companion`](crate::companion): parse, call, print.

use crate::companion::notifier::{DesktopNotifier, Tee, TerminalNotifier};
use crate::companion::pair::{PairOptions, Replacement};
use crate::companion::reauth::{Opener, PrintUrl, ReauthOptions, ReauthProgress, SystemBrowser};
use crate::companion::secrets::Stored;
use crate::companion::terminal::safe;
use crate::companion::watcher::WatchEvent;
use crate::companion::{parse_target, Companion};
use crate::secret::AccessToken;
use anyhow::Context;
use clap::Subcommand;
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Exit code of `tether status` when something is dead, unreachable or unpaired.
pub const EXIT_ATTENTION: u8 = 2;

/// Companion commands, flattened into the top level (`tether status`, ...).
#[derive(Debug, Subcommand)]
pub enum CompanionCommand {
    /// Pair this computer with an agent, using the code printed by `tether agent pair`.
    Pair {
        /// The pairing code (`tether://pair?...`).
        code: String,
        /// Local name for the agent (default: the name the agent reports).
        #[arg(long)]
        name: Option<String>,
        /// Label for this computer on the agent (default: the host name).
        #[arg(long)]
        device_name: Option<String>,
        /// Replace an agent that is already paired without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Forget a paired agent and delete its device token.
    Unpair {
        /// The agent's local name.
        agent: String,
    },
    /// Show every paired agent and credential; exits 2 when anything needs attention.
    Status {
        /// Print stable JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Watch every paired agent and report deaths, recoveries and outages here.
    Watch {
        /// Also raise desktop notifications (with a "Re-authorize" button).
        #[arg(long)]
        desktop: bool,
    },
    /// Re-authorize a dead credential in the browser (AGENT/CREDENTIAL).
    Reauth {
        /// Agent and credential, e.g. studio/youtube.
        target: String,
        /// Print the URL instead of opening a browser.
        #[arg(long)]
        no_browser: bool,
        /// Seconds to wait for the browser.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Accept an authorization server or client other than the one of the
        /// credential's first authorization (after changing the provider on the agent).
        #[arg(long)]
        accept_new_server: bool,
        /// Let a sign-in as another account replace the one the credential belongs to
        /// (otherwise it is refused and nothing changes).
        #[arg(long)]
        new_account: bool,
    },
    /// Show what an agent needs from you for a credential (AGENT/CREDENTIAL): the QR code
    /// to scan or the device code to type, redrawn as the agent posts new ones.
    Challenge {
        /// Agent and credential, e.g. studio/whatsapp.
        target: String,
        /// Print the current challenge and exit instead of following it.
        #[arg(long)]
        once: bool,
    },
    /// Push a new token for a paste-kind credential (token on standard input).
    Paste {
        /// Agent and credential, e.g. studio/telegram.
        target: String,
        /// Let a token of another account (another bot) replace the one the credential
        /// belongs to (otherwise it is refused and nothing changes).
        #[arg(long)]
        new_account: bool,
    },
}

/// Runs one companion command.
pub fn run(cmd: CompanionCommand) -> anyhow::Result<ExitCode> {
    let companion = Companion::from_env()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = rt.block_on(async {
        match cmd {
            CompanionCommand::Pair {
                code,
                name,
                device_name,
                yes,
            } => pair(&companion, &code, name, device_name, yes).await,
            CompanionCommand::Unpair { agent } => unpair(&companion, &agent),
            CompanionCommand::Status { json } => status(&companion, json).await,
            CompanionCommand::Watch { desktop } => watch(&companion, desktop).await,
            CompanionCommand::Reauth {
                target,
                no_browser,
                timeout,
                accept_new_server,
                new_account,
            } => {
                let opts = ReauthOptions {
                    timeout: Duration::from_secs(timeout.max(1)),
                    accept_new_server,
                    new_account,
                };
                reauth(&companion, &target, no_browser, opts).await
            }
            CompanionCommand::Paste {
                target,
                new_account,
            } => paste(&companion, &target, new_account).await,
            CompanionCommand::Challenge { target, once } => {
                super::challenge::run(&companion, &target, once).await
            }
        }
    });
    announce(&companion);
    result
}

/// Prints the keyring-fallback notice, once, on stderr.
fn announce(companion: &Companion) {
    if let Some(n) = companion.take_notice() {
        // On a terminal the line may hold `tether watch`'s countdown: clear it first.
        let start = crate::companion::terminal::line_start(std::io::stderr().is_terminal());
        eprintln!("{start}warning: {n}");
    }
}

async fn pair(
    companion: &Companion,
    code: &str,
    name: Option<String>,
    device_name: Option<String>,
    yes: bool,
) -> anyhow::Result<ExitCode> {
    let interactive = std::io::stdin().is_terminal();
    let fp = |f: &Option<crate::pin::Fingerprint>| crate::pin::certificate_words(f.as_ref());
    let mut confirm = move |r: &Replacement| -> bool {
        if yes {
            return true;
        }
        let keep = if r.redeemed {
            "; answering no keeps both and gives the new one another name"
        } else {
            ""
        };
        if !interactive {
            eprintln!(
                "agent {} is already paired ({}, certificate {}); standard input is not a terminal, so cannot ask: pass --yes to replace it{keep}",
                r.existing.name,
                r.existing.url,
                fp(&r.existing.fingerprint)
            );
            return false;
        }
        eprint!(
            "agent {} is already paired:\n  now: {} (certificate {})\n  new: {} (certificate {})\nReplace it{keep}? [y/N] ",
            r.existing.name,
            r.existing.url,
            fp(&r.existing.fingerprint),
            r.new_url,
            fp(&r.new_fingerprint)
        );
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).is_ok()
            && matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
    };
    let opts = PairOptions {
        local_name: name,
        device_name,
    };
    let paired = companion.pair(code, &opts, &mut confirm).await?;
    announce(companion);
    let a = &paired.agent;
    println!(
        "paired with agent {} (tether {}) at {}",
        a.name,
        safe(&paired.version),
        a.url
    );
    if a.name != paired.remote_name {
        println!("  the agent calls itself {}", safe(&paired.remote_name));
    }
    if let Some(other) = &paired.kept_beside {
        println!(
            "  kept the agent already paired as {} ({}); this one is {}",
            other.name, other.url, a.name
        );
    }
    match &a.fingerprint {
        Some(fp) => println!("  certificate pinned: sha256 {fp}"),
        None => println!("  certificate checked against the usual certificate authorities"),
    }
    let store = match paired.stored {
        Stored::Keyring => "the os keyring".to_string(),
        Stored::File => companion.secrets().file().display().to_string(),
    };
    println!(
        "  device id {} (revoke on the agent with `tether agent revoke {}`); token kept in {store}",
        a.device_id.as_deref().unwrap_or("?"),
        a.device_id.as_deref().unwrap_or("ID"),
    );
    if let Some(old) = &paired.replaced {
        println!("  replaced the earlier pairing {} ({})", old.name, old.url);
    }
    if let Some(n) = paired.revoke_notice() {
        println!("  {n}");
    }
    match &paired.health {
        Some(h) if h.credentials.is_empty() => println!("  no credentials on the agent yet"),
        Some(h) => {
            let list: Vec<String> = h
                .credentials
                .iter()
                .map(|c| format!("{} ({})", safe(&c.name), c.state))
                .collect();
            println!("  credentials: {}", list.join(", "));
        }
        None => println!(
            "  (could not read the agent's health right after pairing; try `tether status`)"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn unpair(companion: &Companion, agent: &str) -> anyhow::Result<ExitCode> {
    let gone = companion.unpair(agent)?;
    println!("unpaired agent {} ({})", gone.agent.name, gone.agent.url);
    if let Some(id) = &gone.agent.device_id {
        println!("  the agent still lists this computer as device {id}; remove it there with `tether agent revoke {id}`");
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(companion: &Companion, json: bool) -> anyhow::Result<ExitCode> {
    let report = companion.status().await?;
    if json {
        let text =
            serde_json::to_string_pretty(&report).context("cannot render the status as json")?;
        println!("{text}");
    } else {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        print!("{}", report.render(color, chrono::Local::now()));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ATTENTION)
    })
}

async fn watch(companion: &Companion, desktop: bool) -> anyhow::Result<ExitCode> {
    let cfg = companion.config()?;
    if cfg.agents.is_empty() {
        anyhow::bail!("no agents paired; run `tether agent pair` on the agent's server, then `tether pair CODE` here");
    }
    let desktop = if desktop {
        match DesktopNotifier::new() {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("warning: {e}; notifying in this terminal only");
                None
            }
        }
    } else {
        None
    };
    let notifier = Arc::new(Tee::new(TerminalNotifier::stdout(), desktop));
    let mut watcher = companion.watch(notifier, Some(Arc::new(SystemBrowser)))?;
    for a in &cfg.agents {
        println!("watching {} at {}", a.name, a.url);
    }
    let _ = std::io::stdout().flush();
    // Asked to stop by the system: SIGTERM on Unix, the console window closing on Windows.
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    #[cfg(windows)]
    let mut term =
        tokio::signal::windows::ctrl_close().context("cannot install the console-close handler")?;
    let mut challenges = super::challenge::Shown::for_stdout();
    let mut second = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            ev = watcher.next_event() => match ev {
                Some(ev) => {
                    print_event(&ev, challenges.line_start());
                    challenges.on_event(&ev);
                }
                None => break,
            },
            _ = second.tick() => {
                challenges.tick();
                continue;
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
        announce(companion);
    }
    watcher.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Prints what `ev` says that no notice does, after `line_start` (see
/// [`Shown::line_start`](super::challenge::Shown::line_start)).
fn print_event(ev: &WatchEvent, line_start: &str) {
    // Notices are printed by the terminal notifier; here only what it does not show.
    let line = match ev {
        WatchEvent::Contact { agent, state } => match state {
            crate::companion::policy::ContactState::Connected => format!("{agent}: connected"),
            crate::companion::policy::ContactState::Failing { message, .. } => {
                format!("{agent}: contact failing: {message}")
            }
            _ => return,
        },
        WatchEvent::Credential {
            agent,
            credential,
            previous,
        } => match previous {
            Some(p) => format!("{agent} · {}: {p} → {}", credential.name, credential.state),
            None => format!("{agent} · {}: {}", credential.name, credential.state),
        },
        WatchEvent::NotifyFailed { agent, message } => {
            format!("{agent}: notification failed: {message}")
        }
        WatchEvent::ReauthRequested { agent, credential } => {
            format!("{agent} · {credential}: re-authorization requested")
        }
        WatchEvent::Reauth {
            agent,
            credential,
            progress,
        } => format!("{agent} · {credential}: {}", progress_text(progress)),
        _ => return,
    };
    let time = chrono::Local::now().format("%H:%M:%S");
    // Names, messages and URLs here come from the daemon.
    println!("{line_start}{time} {}", safe(&line));
    let _ = std::io::stdout().flush();
}

fn progress_text(p: &ReauthProgress) -> String {
    match p {
        ReauthProgress::Starting => "asking the agent for a sign-in session".into(),
        ReauthProgress::Opening { target } => format!(
            "opening {}{} (client {}), asking for {}",
            target.server.host,
            target.server.path,
            target.server.client_id,
            if target.scopes.is_empty() {
                "the provider's default scopes".to_string()
            } else {
                target.scopes.join(", ")
            }
        ),
        ReauthProgress::WaitingForBrowser { url, open_error } => match open_error {
            Some(e) => format!("could not open a browser ({e}); open this URL yourself: {url}"),
            None => "waiting for you to finish in the browser".into(),
        },
        ReauthProgress::Verifying => "the agent is verifying the new authorization".into(),
        ReauthProgress::Done { credential } => {
            format!("done, {} is {}", credential.name, credential.state)
        }
        ReauthProgress::Failed { message } => format!("failed: {message}"),
    }
}

async fn reauth(
    companion: &Companion,
    target: &str,
    no_browser: bool,
    opts: ReauthOptions,
) -> anyhow::Result<ExitCode> {
    let (agent, credential) = parse_target(target)?;
    let opener: Box<dyn Opener> = if no_browser {
        Box::new(PrintUrl)
    } else {
        Box::new(SystemBrowser)
    };
    let progress = |p: ReauthProgress| {
        if let ReauthProgress::Done { .. } | ReauthProgress::Failed { .. } = p {
            return; // reported below, with the exit code
        }
        eprintln!("{}", safe(&progress_text(&p)));
    };
    let cancel = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let health = companion
        .reauth_with(
            &agent,
            &credential,
            opener.as_ref(),
            opts,
            cancel,
            &progress,
        )
        .await?;
    println!("{agent} · {credential}: {} — re-authorized", health.state);
    Ok(ExitCode::SUCCESS)
}

async fn paste(companion: &Companion, target: &str, new_account: bool) -> anyhow::Result<ExitCode> {
    let (agent, credential) = parse_target(target)?;
    let mut input = String::new();
    if std::io::stdin().is_terminal() {
        eprint!("paste the new token for {agent}/{credential}, then press Enter: ");
        let _ = std::io::stderr().flush();
        std::io::stdin()
            .read_line(&mut input)
            .context("cannot read the token from the terminal")?;
    } else {
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut input)
            .context("cannot read the token from standard input")?;
    }
    let health = companion
        .paste(
            &agent,
            &credential,
            AccessToken::new(input.trim().to_string()),
            new_account,
        )
        .await?;
    println!(
        "{agent} · {credential}: {} — new token accepted",
        health.state
    );
    Ok(ExitCode::SUCCESS)
}
