//! `tether vault ...` commands.

use clap::Subcommand;
use std::process::ExitCode;

/// `tether vault` sub-commands.
#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Not built yet.
    Todo,
}

/// Runs one `tether vault` command.
pub fn run(cmd: VaultCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        VaultCommand::Todo => anyhow::bail!("not built yet"),
    }
}
