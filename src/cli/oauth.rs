//! `tether oauth ...` commands.

use clap::Subcommand;
use std::process::ExitCode;

/// `tether oauth` sub-commands.
#[derive(Debug, Subcommand)]
pub enum OauthCommand {
    /// Not built yet.
    Todo,
}

/// Runs one `tether oauth` command.
pub fn run(cmd: OauthCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        OauthCommand::Todo => anyhow::bail!("not built yet"),
    }
}
