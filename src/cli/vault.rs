//! `tether vault ...` commands: inspect, repair, roll back and import credentials in the
//! vault on this machine.

use crate::vault::{self, Vault, VaultConfig};
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the vault is: its primary and backup directories.
#[derive(Debug, Clone, Args)]
pub struct VaultArgs {
    /// The daemon's agent.toml: use its vault locations and output files.
    #[arg(long, short, value_name = "FILE", conflicts_with = "primary")]
    pub config: Option<PathBuf>,
    /// The primary state directory of the vault (instead of --config).
    #[arg(
        long,
        value_name = "DIR",
        env = "TETHER_VAULT_PRIMARY",
        required_unless_present = "config"
    )]
    pub primary: Option<PathBuf>,
    /// A backup directory (repeat for several; ideally on other disks).
    #[arg(long = "backup", value_name = "DIR")]
    pub backups: Vec<PathBuf>,
    /// Generations kept per credential.
    #[arg(long, value_name = "K", default_value_t = vault::DEFAULT_KEEP)]
    pub keep: usize,
}

impl VaultArgs {
    /// The vault config these flags describe: from the agent config (locations and
    /// outputs), or from --primary/--backup (no outputs).
    pub fn to_config(&self) -> anyhow::Result<VaultConfig> {
        use anyhow::Context;
        if let Some(path) = &self.config {
            let cfg = crate::agent::config::parse(path)
                .with_context(|| format!("failed to read the agent config {}", path.display()))?;
            let mut vc = crate::agent::config::vault::vault_config_for(&cfg)
                .with_context(|| format!("agent config {}", path.display()))?;
            vc.backups.extend(self.backups.iter().cloned());
            return Ok(vc);
        }
        Ok(VaultConfig {
            // Invariant: clap requires --primary when --config is absent.
            primary: self
                .primary
                .clone()
                .expect("clap requires --primary without --config"),
            backups: self.backups.clone(),
            keep: self.keep,
            locations: Vec::new(),
            outputs: Vec::new(),
        })
    }
}

/// `tether vault` sub-commands.
#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Show every location's health and every credential's newest generation.
    ///
    /// Opening the vault reconciles it, so what it repaired is shown too. Exits with 2 when
    /// a location or credential has a problem that needs a human.
    Status {
        #[command(flatten)]
        vault: VaultArgs,
    },
    /// Read every location, repair missing, damaged or older copies, and report.
    Reconcile {
        #[command(flatten)]
        vault: VaultArgs,
    },
    /// List the kept generations of a credential, newest first.
    History {
        /// Credential name.
        name: String,
        #[command(flatten)]
        vault: VaultArgs,
    },
    /// Store an older generation's content again, as a new generation.
    Rollback {
        /// Credential name.
        name: String,
        /// The generation to bring back (see `tether vault history NAME`).
        generation: u64,
        #[command(flatten)]
        vault: VaultArgs,
    },
    /// Import an existing token file (google-auth authorized_user JSON or a token JSON).
    Import {
        /// Credential name to store it as.
        name: String,
        /// The token file.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Provider preset (default: google for authorized_user files, generic otherwise).
        #[arg(long, value_name = "PROVIDER")]
        provider: Option<String>,
        #[command(flatten)]
        vault: VaultArgs,
    },
}

/// Runs one `tether vault` command.
pub fn run(cmd: VaultCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        VaultCommand::Status { vault } => status(&vault),
        VaultCommand::Reconcile { vault } => {
            let (_, report) = open(&vault)?;
            if report.is_clean() {
                println!("vault is consistent: nothing to repair");
            }
            for line in report.lines() {
                println!("{line}");
            }
            Ok(exit_for(report.problems.is_empty()))
        }
        VaultCommand::History { name, vault } => {
            let (v, _) = open(&vault)?;
            let entries = v.history(&name)?;
            println!("GENERATION  OBTAINED                  EXPIRES                   REFRESH       LOCATIONS");
            for e in entries {
                println!(
                    "{:<10}  {:<24}  {:<24}  {:<12}  {}",
                    e.generation,
                    e.obtained_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    e.expires_at
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                        .unwrap_or_else(|| "-".into()),
                    e.refresh_token_id.unwrap_or_else(|| "none".into()),
                    e.locations.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        VaultCommand::Rollback {
            name,
            generation,
            vault,
        } => {
            let (v, _) = open(&vault)?;
            let report = v.rollback(&name, generation)?;
            println!(
                "credential {name}: generation {generation} stored again as generation {}",
                report.generation
            );
            print_commit(&report);
            Ok(exit_for(report.failed.is_empty()))
        }
        VaultCommand::Import {
            name,
            from,
            provider,
            vault,
        } => {
            if !crate::protocol::valid_credential_name(&name) {
                // The vault refuses it too; saying so before reading the file is kinder.
                return Err(vault::VaultError::InvalidName { name }.into());
            }
            let bytes = std::fs::read(&from)
                .with_context(|| format!("failed to read token file {}", from.display()))?;
            let (record, kind) =
                vault::import::parse_token_file(&bytes, &name, provider.as_deref())
                    .with_context(|| format!("cannot import {}", from.display()))?;
            let (v, _) = open(&vault)?;
            let report = v.commit(record)?;
            println!(
                "imported {} as credential {name} ({}), generation {}",
                from.display(),
                match kind {
                    vault::import::ImportedFrom::AuthorizedUser => "google authorized_user file",
                    vault::import::ImportedFrom::TokenJson => "token JSON",
                },
                report.generation
            );
            if kind == vault::import::ImportedFrom::AuthorizedUser {
                println!("note: the client secret is not stored in the vault; put client_id and client_secret in the agent config");
            }
            print_commit(&report);
            Ok(exit_for(report.failed.is_empty()))
        }
    }
}

fn open(args: &VaultArgs) -> anyhow::Result<(Vault, vault::ReconcileReport)> {
    let cfg = args.to_config()?;
    let primary = cfg.primary.clone();
    Vault::open(cfg).with_context(|| format!("failed to open the vault at {}", primary.display()))
}

fn exit_for(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn print_commit(report: &vault::CommitReport) {
    for w in &report.written {
        println!("  stored in {w}");
    }
    for f in &report.failed {
        println!("  FAILED in {f}");
    }
}

fn status(args: &VaultArgs) -> anyhow::Result<ExitCode> {
    let (v, report) = open(args)?;
    let mut ok = report.problems.is_empty();
    println!("locations:");
    for l in v.location_health() {
        match &l.error {
            None if l.ok => println!("  ok      {}", l.name),
            _ => {
                ok = false;
                println!(
                    "  FAILED  {}: {}",
                    l.name,
                    l.error.as_deref().unwrap_or("unusable")
                );
            }
        }
    }
    println!("credentials:");
    let names = v.names()?;
    if names.is_empty() {
        println!("  (none; add one with `tether vault import NAME --from token.json`)");
    }
    for name in names {
        match v.get(&name) {
            Ok(Some(r)) => println!(
                "  {name:<20} generation {:<6} provider {:<10} obtained {}  expires {}  refresh token {}",
                r.generation,
                r.provider,
                r.obtained_at.format("%Y-%m-%d %H:%M:%S UTC"),
                r.expires_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_else(|| "-".into()),
                if r.refresh_token.is_some() { "yes" } else { "no" },
            ),
            Ok(None) => println!("  {name:<20} (no generation)"),
            Err(e) => {
                ok = false;
                println!("  {name:<20} ERROR: {:#}", anyhow::Error::from(e));
            }
        }
    }
    if !report.lines().is_empty() {
        println!("on open:");
        for line in report.lines() {
            println!("  {line}");
        }
    }
    Ok(exit_for(ok))
}
