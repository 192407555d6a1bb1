//! The daemon's commands where the daemon is not built (macOS, Windows): they parse any
//! arguments and answer [`crate::platform::PlatformError::DaemonUnsupported`], so
//! `tether agent serve` says why and what to do instead of "unrecognized subcommand".
//! Compiled on every platform so Linux's tests cover it; only used elsewhere.

use clap::Subcommand;
use std::process::ExitCode;

/// Whatever was typed after the command.
#[derive(Debug, clap::Args)]
pub struct Rest {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..,
        hide = true
    )]
    args: Vec<String>,
}

/// `agent`, `vault`, `oauth`, `token` and `demo`, as placeholders.
#[derive(Debug, Subcommand)]
pub enum LinuxOnly {
    /// The agent daemon (Linux only).
    #[command(disable_help_flag = true)]
    Agent(Rest),
    /// The credential vault (Linux only).
    #[command(disable_help_flag = true)]
    Vault(Rest),
    /// A provider's OAuth flow into the vault (Linux only).
    #[command(disable_help_flag = true)]
    Oauth(Rest),
    /// A fresh access token from the daemon (Linux only).
    #[command(disable_help_flag = true)]
    Token(Rest),
    /// The whole recovery loop on loopback (Linux only).
    #[command(disable_help_flag = true)]
    Demo(Rest),
}

/// Refuses the command, naming it with its first word (`agent serve`).
pub fn run(c: LinuxOnly) -> anyhow::Result<ExitCode> {
    let (name, rest) = match &c {
        LinuxOnly::Agent(r) => ("agent", r),
        LinuxOnly::Vault(r) => ("vault", r),
        LinuxOnly::Oauth(r) => ("oauth", r),
        LinuxOnly::Token(r) => ("token", r),
        LinuxOnly::Demo(r) => ("demo", r),
    };
    let command = match rest.args.first().filter(|a| !a.starts_with('-')) {
        Some(sub) => format!("{name} {sub}"),
        None => name.to_string(),
    };
    Err(crate::platform::daemon_unsupported(&command).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        c: LinuxOnly,
    }

    fn refusal(args: &[&str]) -> String {
        let cli = Cli::try_parse_from(std::iter::once("tether").chain(args.iter().copied()))
            .expect("the placeholder takes any arguments");
        let err = run(cli.c).unwrap_err();
        let typed = err
            .downcast_ref::<crate::platform::PlatformError>()
            .expect("a typed platform error");
        assert!(matches!(
            typed,
            crate::platform::PlatformError::DaemonUnsupported { .. }
        ));
        err.to_string()
    }

    #[test]
    fn daemon_commands_are_refused_by_name_whatever_their_arguments() {
        assert!(
            refusal(&["agent", "serve", "--config", "/etc/tether/agent.toml"])
                .starts_with("`tether agent serve` is not available on")
        );
        assert!(refusal(&["vault", "--help"]).starts_with("`tether vault` is not available"));
        assert!(refusal(&["token", "youtube", "--rejected"])
            .starts_with("`tether token youtube` is not available"));
        assert!(refusal(&["demo"]).starts_with("`tether demo` is not available"));
    }
}
