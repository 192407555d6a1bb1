//! The operator's `tether agent` commands: `add` and `remove` (edit agent.toml in place),
//! `check` (lint the config and the machine), `alerts test` (a test alert per channel).

use super::agent_config::{load, DEFAULT_CONFIG};
use crate::agent::config::edit::{self as config_edit, NewCredential, NewOutput};
use crate::agent::config::lint::{self, AgentUser};
use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The operator's sub-commands of `tether agent`.
#[derive(Debug, Subcommand)]
pub enum OpsCommand {
    /// Add a credential to agent.toml (comments and layout are kept); a running daemon
    /// loads it on `systemctl reload tether-agent` (SIGHUP).
    Add {
        /// The credential's name, `[a-z0-9][a-z0-9_-]{0,63}`.
        name: String,
        /// Provider preset: google, x, tiktok, github, github-app, microsoft, spotify,
        /// dropbox, slack, telegram, github-pat, or generic (with --issuer).
        #[arg(long)]
        provider: String,
        /// Issuer for OIDC discovery (generic provider).
        #[arg(long)]
        issuer: Option<String>,
        /// OAuth client id.
        #[arg(long)]
        client_id: Option<String>,
        /// File holding the client secret (first line, mode 0600).
        #[arg(long)]
        client_secret_file: Option<PathBuf>,
        /// A scope to ask for at authorization (repeat for more; default: the preset's).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A file your agent reads, PATH:FORMAT with FORMAT authorized_user, token_json or
        /// env (repeat for more).
        #[arg(long = "output")]
        outputs: Vec<String>,
        /// The agent.toml.
        #[arg(long, short, env = "TETHER_AGENT_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Remove a credential from agent.toml (its vault records are kept).
    Remove {
        /// The credential's name.
        name: String,
        /// The agent.toml.
        #[arg(long, short, env = "TETHER_AGENT_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Check the config and this machine (endpoints, secret files, backups, clock, output
    /// directories) and print each problem with its fix; exits 1 when there is one.
    Check {
        /// The user the daemon runs as (default: the owner of the state directory).
        #[arg(long)]
        user: Option<String>,
        /// The agent.toml.
        #[arg(long, short, env = "TETHER_AGENT_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Alert channels.
    #[command(subcommand)]
    Alerts(AlertsCommand),
}

/// `tether agent alerts` sub-commands.
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Send a clearly labelled test alert through every channel (or CHANNEL) and report
    /// each result; exits 1 when one fails.
    Test {
        /// Only this channel.
        channel: Option<String>,
        /// The agent.toml.
        #[arg(long, short, env = "TETHER_AGENT_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

/// Runs one operator command.
pub fn run(cmd: OpsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        OpsCommand::Add {
            name,
            provider,
            issuer,
            client_id,
            client_secret_file,
            scopes,
            outputs,
            config,
        } => {
            let outputs = outputs
                .iter()
                .map(|o| o.parse::<NewOutput>())
                .collect::<Result<Vec<_>, _>>()?;
            let new = NewCredential {
                name,
                provider,
                issuer,
                client_id,
                client_secret_file,
                scopes,
                outputs,
            };
            config_edit::add(&config, &new)?;
            let agent = load(&config).map(|c| c.name).unwrap_or_default();
            println!(
                "added credential {} (provider {}) to {}",
                new.name,
                new.provider,
                config.display()
            );
            println!("load it: `systemctl reload tether-agent` (or send the daemon SIGHUP); then authorize it from the laptop: `tether reauth {agent}/{}`", new.name);
            Ok(ExitCode::SUCCESS)
        }
        OpsCommand::Remove { name, config } => {
            config_edit::remove(&config, &name)?;
            println!("removed credential {name} from {}; its tokens stay in the vault (adding it again picks them up)", config.display());
            println!("apply it: `systemctl reload tether-agent` (or send the daemon SIGHUP)");
            Ok(ExitCode::SUCCESS)
        }
        OpsCommand::Check { user, config } => check(&config, user.as_deref()),
        OpsCommand::Alerts(AlertsCommand::Test { channel, config }) => {
            alerts_test(&config, channel.as_deref())
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

fn check(path: &Path, user: Option<&str>) -> anyhow::Result<ExitCode> {
    let cfg = load(path)?;
    let user = match user {
        Some(name) => Some(AgentUser::by_name(name).with_context(|| {
            format!("no user {name} on this machine; pass the user the daemon runs as (--user)")
        })?),
        None => AgentUser::guess(&cfg),
    };
    let problems = runtime()?.block_on(lint::check(&cfg, &lint::http_client(), user.as_ref()));
    if let Some(u) = &user {
        println!("checked {} as seen by user {}", path.display(), u.name);
    }
    if problems.is_empty() {
        println!("no problems found");
        return Ok(ExitCode::SUCCESS);
    }
    for p in &problems {
        println!("{p}");
    }
    println!(
        "{} problem{} found",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::from(1))
}

fn alerts_test(path: &Path, channel: Option<&str>) -> anyhow::Result<ExitCode> {
    let cfg = load(path)?;
    let report = runtime()?.block_on(crate::agent::alerts::test_send::send_test(
        &cfg,
        channel,
        // The daemon's own client, so the test sends exactly what a real alert sends.
        crate::oauth::http_client(),
        None,
    ))?;
    for o in &report.outcomes {
        match &o.result {
            Ok(()) => println!("{} ({}): delivered", o.channel, o.kind),
            Err(e) => println!(
                "{} ({}): FAILED after {} attempt{}: {}",
                o.channel,
                o.kind,
                o.attempts,
                if o.attempts == 1 { "" } else { "s" },
                e.chain()
            ),
        }
    }
    let failed = report.outcomes.len() - report.delivered();
    if failed == 0 {
        println!(
            "test alert delivered through {} channel(s)",
            report.delivered()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failed} of {} channel(s) failed", report.outcomes.len());
        Ok(ExitCode::from(1))
    }
}
