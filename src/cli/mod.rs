//! The `tether` command line: argument parsing and dispatch. Each sub-module owns one
//! group of commands and is a thin layer over the library; errors are printed with their
//! whole chain (`{:#}`) and turned into an exit code here.

pub mod agent;
pub mod companion;
pub mod oauth;
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
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Inspect and repair the credential vault on this machine.
    #[command(subcommand)]
    Vault(vault::VaultCommand),
    /// Run a provider's OAuth flow on this machine (adopt a new credential, debug a provider).
    #[command(subcommand)]
    Oauth(oauth::OauthCommand),
    #[command(flatten)]
    Companion(companion::CompanionCommand),
}

/// Entry point of the `tether` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Agent(c) => agent::run(c),
        Command::Vault(c) => vault::run(c),
        Command::Oauth(c) => oauth::run(c),
        Command::Companion(c) => companion::run(c),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
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
