//! The companion's commands: `tether pair`, `status`, `watch`, `reauth`, `paste`, `demo`.

use clap::Subcommand;
use std::process::ExitCode;

/// Companion commands, flattened into the top level (`tether status`, ...).
#[derive(Debug, Subcommand)]
pub enum CompanionCommand {
    /// Show every paired agent and credential.
    Status,
}

/// Runs one companion command.
pub fn run(cmd: CompanionCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CompanionCommand::Status => anyhow::bail!("not built yet"),
    }
}
