//! The `tether` command line: argument parsing and dispatch. Each sub-module owns one
//! group of commands and is a thin layer over the library; errors are printed with their
//! whole chain (`{:#}`) and turned into an exit code here.
//!
//! `agent.rs`, `agent_ops.rs` (with `agent_config.rs`, the agent.toml both read),
//! `vault.rs` and `oauth.rs` are the daemon's side and exist on Linux only
//! (`cfg(daemon)`); `linux_only.rs` refuses those commands elsewhere.
//! `companion.rs` and `challenge.rs` are the owner's side, on every platform.

#[cfg(daemon)]
pub mod agent;
#[cfg(daemon)]
mod agent_config;
#[cfg(daemon)]
pub mod agent_ops;
pub mod challenge;
pub mod companion;
pub mod linux_only;
#[cfg(daemon)]
pub mod oauth;
#[cfg(daemon)]
pub mod vault;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Keeps your agent's OAuth credentials alive, and gets you to re-authorize in one click.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The agent daemon that runs beside your agent on the server.
    #[cfg(daemon)]
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Inspect and repair the credential vault on this machine.
    #[cfg(daemon)]
    #[command(subcommand)]
    Vault(vault::VaultCommand),
    /// Run a provider's OAuth flow on this machine (adopt a new credential, debug a provider).
    #[cfg(daemon)]
    #[command(subcommand)]
    Oauth(oauth::OauthCommand),
    /// Print a fresh access token for a credential (for the agent's shell scripts; same as
    /// `tether agent token get`).
    #[cfg(daemon)]
    Token(agent::TokenGetArgs),
    /// Watch the whole recovery loop on loopback: a daemon, a demo provider, the companion.
    #[cfg(daemon)]
    Demo(DemoArgs),
    #[command(flatten)]
    Companion(companion::CompanionCommand),
    /// The daemon's commands where the daemon is not built: a clear refusal.
    #[cfg(not(daemon))]
    #[command(flatten)]
    LinuxOnly(linux_only::LinuxOnly),
}

/// `tether demo` options.
#[cfg(daemon)]
#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// Seconds before the demo provider revokes the YouTube grant.
    #[arg(long, default_value_t = 20)]
    revoke_after: u64,
    /// Print the consent URL instead of opening a browser.
    #[arg(long)]
    no_browser: bool,
    /// Stay in the terminal even when a display is available.
    #[arg(long)]
    no_tray: bool,
    /// Exit once the revoked credential works again (for scripts).
    #[arg(long)]
    exit_when_recovered: bool,
}

#[cfg(daemon)]
fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let opts = crate::demo::DemoOptions {
        revoke_after: std::time::Duration::from_secs(args.revoke_after),
        no_browser: args.no_browser,
        tray: !args.no_tray,
        exit_when_recovered: args.exit_when_recovered,
    };
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        crate::demo::run(opts, ctrl_c).await
    });
    // A read on stdin that is still blocked would hold a normal runtime drop forever; the
    // demo has finished its writes and removed its files by now.
    rt.shutdown_background();
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Entry point of the `tether` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        #[cfg(daemon)]
        Command::Agent(c) => agent::run(c),
        #[cfg(daemon)]
        Command::Vault(c) => vault::run(c),
        #[cfg(daemon)]
        Command::Oauth(c) => oauth::run(c),
        #[cfg(daemon)]
        Command::Demo(a) => demo(a),
        #[cfg(daemon)]
        Command::Token(a) => agent::run_token_get(a),
        Command::Companion(c) => companion::run(c),
        #[cfg(not(daemon))]
        Command::LinuxOnly(c) => linux_only::run(c),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // The chain may quote a daemon's or provider's words: print no escape sequences.
            eprintln!(
                "error: {}",
                crate::companion::terminal::safe_lines(&format!("{err:#}"))
            );
            ExitCode::from(1)
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TETHER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
