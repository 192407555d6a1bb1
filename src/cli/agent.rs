//! `tether agent ...` commands.

use clap::Subcommand;
use std::process::ExitCode;

/// `tether agent` sub-commands.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Not built yet.
    Todo,
}

/// Runs one `tether agent` command.
pub fn run(cmd: AgentCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AgentCommand::Todo => anyhow::bail!("not built yet"),
    }
}
