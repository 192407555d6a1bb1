//! `tether agent ...` commands: init, serve, pair, devices, revoke, token create (add,
//! remove, check and alerts test are in `agent_ops`).
//!
//! `pair`, `devices`, `revoke` and `token create` work on the state directory directly
//! (under the same file lock as the daemon), so they take effect on a running daemon.

use super::agent_config::{load, DEFAULT_CONFIG};
use crate::agent::access::auth::{AuthStore, Role, PAIRING_TTL};
use crate::agent::config::{self, AgentConfig};
use crate::agent::{access::tls, Daemon};
use crate::protocol::PairingCode;
use anyhow::{bail, Context};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `tether agent` sub-commands.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Write a commented example agent.toml.
    Init {
        /// Where to write it.
        #[arg(long, short, env = "TETHER_AGENT_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Run the daemon (HTTPS API, checker, broker, alerts) until SIGTERM or SIGINT.
    Serve {
        /// The agent.toml.
        #[arg(long, short, env = "TETHER_AGENT_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Print a one-time pairing code (and QR) for the companion; valid 10 minutes.
    Pair {
        /// The agent.toml.
        #[arg(long, short, env = "TETHER_AGENT_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Do not print the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// List paired devices and agent tokens with their last use.
    Devices {
        /// The agent.toml.
        #[arg(long, short, env = "TETHER_AGENT_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device or agent token at once.
    Revoke {
        /// The id shown by `tether agent devices`.
        id: String,
        /// The agent.toml.
        #[arg(long, short, env = "TETHER_AGENT_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Agent tokens for the user's agent (they can only read access tokens).
    #[command(subcommand)]
    Token(TokenCommand),
    /// add, remove, check, alerts (in `agent_ops`).
    #[command(flatten)]
    Ops(super::agent_ops::OpsCommand),
}

/// `tether agent token` sub-commands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make an agent token called NAME and print it once.
    Create {
        /// A label for the agent that will use it.
        name: String,
        /// The agent.toml.
        #[arg(long, short, env = "TETHER_AGENT_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Print a fresh access token for credential NAME from the running daemon (for shell
    /// scripts). The agent token comes from TETHER_AGENT_TOKEN. Also `tether token NAME`.
    Get(TokenGetArgs),
}

/// `tether agent token get NAME` (and its short form `tether token NAME`).
#[derive(Debug, clap::Args)]
pub struct TokenGetArgs {
    /// The credential.
    name: String,
    /// The agent.toml (for the daemon's URL and certificate fingerprint).
    #[arg(long, short, env = "TETHER_AGENT_CONFIG", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// The daemon's URL instead of the one derived from the config.
    #[arg(long, env = "TETHER_AGENT_URL")]
    url: Option<String>,
    /// The daemon's certificate fingerprint instead of reading it from the state dir.
    #[arg(long, env = "TETHER_AGENT_FINGERPRINT")]
    fingerprint: Option<String>,
    /// Print the whole JSON reply (token, type, expiry).
    #[arg(long)]
    json: bool,
    /// Report that the API refused the last token (HTTP 401): the daemon drops it, runs a
    /// confirming refresh test at once and prints a fresh token while the grant is alive.
    #[arg(long)]
    rejected: bool,
}

/// Runs `tether agent token get` / `tether token`.
pub fn run_token_get(a: TokenGetArgs) -> anyhow::Result<ExitCode> {
    token_get(&a.config, &a.name, a.url, a.fingerprint, a.json, a.rejected)
}

/// Runs one `tether agent` command.
pub fn run(cmd: AgentCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AgentCommand::Init { config, force } => init(&config, force),
        AgentCommand::Serve { config } => serve(&config),
        AgentCommand::Pair { config, no_qr } => pair(&config, no_qr),
        AgentCommand::Devices { config, json } => devices(&config, json),
        AgentCommand::Revoke { id, config } => revoke(&config, &id),
        AgentCommand::Token(TokenCommand::Create { name, config }) => token_create(&config, &name),
        AgentCommand::Token(TokenCommand::Get(a)) => run_token_get(a),
        AgentCommand::Ops(c) => super::agent_ops::run(c),
    }
}

fn init(path: &Path, force: bool) -> anyhow::Result<ExitCode> {
    if path.exists() && !force {
        bail!(
            "{} already exists; edit it, or pass --force to replace it with the example",
            path.display()
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }
    crate::files::write_atomic(path, config::EXAMPLE.as_bytes())
        .with_context(|| format!("failed to write {}", path.display()))?;
    println!(
        "wrote an example agent config to {}; edit it, then run `tether agent serve --config {}`",
        path.display(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn serve(path: &Path) -> anyhow::Result<ExitCode> {
    let cfg = load(path)?;
    // One thread for the daemon's tasks (blocking work, the vault's fsyncs and OpenBao's
    // calls, still runs on tokio's blocking pool). The daemon mostly waits: with 100
    // credentials its cost is the wake-ups of its probes, and a multi-thread runtime adds
    // a cross-thread hand-off to many of them (idle CPU 0.119 % against 0.092 % of a core,
    // measured with `perf stat` over 180 s of `cargo bench --bench agent`'s idle phase).
    // One thread still answers tens of thousands of cached-token requests a second.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    rt.block_on(async move {
        // Handled from the first moment: SIGHUP's default action would end the daemon.
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("failed to handle SIGHUP (config reload)")?;
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("failed to listen on {}; is another daemon running?", cfg.listen))?;
        let local = listener.local_addr()?;
        let daemon = Daemon::build(cfg, crate::oauth::http_client())
            .await
            .context("failed to start the agent daemon")?;
        match daemon.tls() {
            Some(id) => {
                if daemon.tls_created() {
                    eprintln!("made a new self-signed tls certificate in {}", daemon.config().state_dir.display());
                }
                eprintln!("tls certificate fingerprint (sha-256): {}", id.fingerprint);
                eprintln!("listening on https://{local} as agent {}", daemon.agent());
            }
            None => eprintln!("listening on http://{local} (plain HTTP, loopback only) as agent {}", daemon.agent()),
        }
        if !daemon.has_alert_channels() {
            eprintln!("warning: no alert channels configured; only paired companions will hear about dead credentials");
        }
        for line in daemon.health().repaired {
            eprintln!("vault: {line}");
        }
        tokio::spawn(crate::agent::reload::reload_on_sighup(daemon.clone(), path.to_path_buf(), hangup));
        crate::agent::serve(listener, daemon, shutdown_signal())
            .await
            .context("the agent daemon failed")?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => {
            // Without signal handlers the daemon can still be stopped with Ctrl-C.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn pair(path: &Path, no_qr: bool) -> anyhow::Result<ExitCode> {
    let cfg = load(path)?;
    let store = AuthStore::open(&cfg.state_dir).with_context(|| {
        format!(
            "cannot open the state directory {}",
            cfg.state_dir.display()
        )
    })?;
    let fingerprint = if cfg.tls.enabled {
        let (id, _) = tls::load_or_create(&cfg.state_dir, &cfg.tls.names)?;
        Some(id.fingerprint)
    } else {
        None
    };
    let (secret, expires_at) = store.create_pairing(PAIRING_TTL)?;
    let code = PairingCode {
        url: cfg.public_url(),
        fingerprint,
        secret,
    };
    let link = code.to_link();
    println!(
        "pairing code for agent {} (single use, expires {}):",
        cfg.name,
        expires_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    // What the tray's pair dialog shows of a link, so the owner can compare the two.
    if let Ok(p) = crate::companion::pair_link::preview(&link) {
        println!("daemon {} · certificate {}", p.host, p.certificate);
    }
    println!();
    println!("{link}");
    println!();
    if !no_qr {
        match qrcode::QrCode::new(link.as_bytes()) {
            Ok(qr) => {
                let text = qr
                    .render::<qrcode::render::unicode::Dense1x2>()
                    .dark_color(qrcode::render::unicode::Dense1x2::Light)
                    .light_color(qrcode::render::unicode::Dense1x2::Dark)
                    .quiet_zone(true)
                    .build();
                println!("{text}");
            }
            Err(e) => eprintln!("warning: cannot draw the QR code: {e}"),
        }
    }
    println!("on your laptop: tether pair '{link}'");
    Ok(ExitCode::SUCCESS)
}

fn devices(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let cfg = load(path)?;
    let store = AuthStore::open(&cfg.state_dir)?;
    let list = store.list()?;
    if json {
        let out: Vec<_> = list
            .iter()
            .map(|t| {
                serde_json::json!({
                    "id": t.id, "name": t.name, "role": t.role,
                    "created_at": t.created_at, "last_used": t.last_used,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!("no devices or agent tokens; pair one with `tether agent pair`");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<10} {:<7} {:<24} {:<20} LAST USED",
        "ID", "ROLE", "NAME", "CREATED"
    );
    for t in list {
        println!(
            "{:<10} {:<7} {:<24} {:<20} {}",
            t.id,
            t.role.as_str(),
            t.name,
            t.created_at.format("%Y-%m-%d %H:%M"),
            t.last_used
                .map(|u| u.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "never".into())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn revoke(path: &Path, id: &str) -> anyhow::Result<ExitCode> {
    let cfg = load(path)?;
    let store = AuthStore::open(&cfg.state_dir)?;
    if store.revoke(id)? {
        println!("revoked {id}; it can no longer call the daemon");
        Ok(ExitCode::SUCCESS)
    } else {
        bail!("no device or agent token with id {id}; list them with `tether agent devices`")
    }
}

fn token_create(path: &Path, name: &str) -> anyhow::Result<ExitCode> {
    let cfg = load(path)?;
    let store = AuthStore::open(&cfg.state_dir)?;
    let (id, token) = store.create_token(Role::Agent, name)?;
    eprintln!("agent token {id} for {name:?} (shown once; it can only read access tokens):");
    println!("{}", token.secret());
    Ok(ExitCode::SUCCESS)
}

fn token_get(
    path: &Path,
    name: &str,
    url: Option<String>,
    fingerprint: Option<String>,
    json: bool,
    rejected: bool,
) -> anyhow::Result<ExitCode> {
    use crate::client::{AgentClient, AgentEndpoint, ClientError};
    let token = std::env::var("TETHER_AGENT_TOKEN").map_err(|_| {
        anyhow::anyhow!(
            "TETHER_AGENT_TOKEN is not set; set it to an agent token made with `tether agent token create NAME`"
        )
    })?;
    let cfg = if url.is_none() || fingerprint.is_none() {
        Some(load(path)?)
    } else {
        None
    };
    let url = match url {
        Some(u) => u,
        None => cfg
            .as_ref()
            .map(AgentConfig::public_url)
            .unwrap_or_default(),
    };
    // Parsed, not prefix-matched: `HTTPS://` is https (and pinned), and the agent token
    // goes over plain http only to this machine.
    let parsed = crate::client::check_url(&url)?;
    let url = parsed.as_str().trim_end_matches('/').to_string();
    let fingerprint = if parsed.scheme() == "https" {
        Some(match fingerprint {
            Some(f) => crate::pin::Fingerprint::parse(&f)?,
            None => {
                let state_dir = &cfg
                    .as_ref()
                    .expect("invariant: the config is loaded whenever no fingerprint is given")
                    .state_dir;
                tls::existing_fingerprint(state_dir).with_context(|| {
                    "cannot read the daemon's certificate fingerprint; pass --fingerprint (printed by `tether agent serve`)"
                })?
            }
        })
    } else {
        None
    };
    let agent = cfg
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_else(|| "daemon".into());
    let endpoint = AgentEndpoint {
        name: agent.clone(),
        url: url.clone(),
        fingerprint,
    };
    let client = AgentClient::new(&endpoint, Some(crate::secret::ApiToken::new(token)))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    // The client's words, with what differs for `tether token`: a wrong pin can be fixed
    // with --fingerprint, and a refused token is an agent token, not a device token.
    let explain = |e: ClientError| -> anyhow::Error {
        match e {
            ClientError::CertificateMismatch { expected, got, .. } => anyhow::anyhow!(
                "the agent daemon at {url} presented a certificate that does not match the pinned fingerprint (expected {expected}, got {got}); if the daemon's certificate was regenerated, pass the fingerprint it prints at start (--fingerprint) or pair again; otherwise something is intercepting the connection"
            ),
            ClientError::Unauthorized { .. } => anyhow::anyhow!(
                "the agent daemon at {url} refused TETHER_AGENT_TOKEN (revoked, unknown or not an agent token); make one with `tether agent token create NAME`"
            ),
            e @ ClientError::Unreachable { .. } => anyhow::Error::new(e).context(format!(
                "cannot reach the agent daemon at {url}; is `tether agent serve` running?"
            )),
            e => e.into(),
        }
    };
    if rejected {
        let reply = rt
            .block_on(client.rejected(name, &crate::protocol::RejectedReport::default()))
            .map_err(explain)?;
        if json {
            println!("{}", serde_json::to_string(&reply)?);
        }
        let Some(t) = reply.token else {
            let c = &reply.credential;
            let why = c
                .last_error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            let fix = match c.state {
                crate::protocol::CredentialState::Dead => {
                    let agent = cfg
                        .as_ref()
                        .map(|c| c.name.as_str())
                        .unwrap_or("this agent");
                    format!("; run `tether reauth {agent}/{name}` on the owner's laptop")
                }
                _ => "; it will be retried".to_string(),
            };
            bail!("credential {name}: {}{why}{fix}", c.state);
        };
        if !json {
            println!("{}", t.access_token.secret());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let reply = rt.block_on(client.access_token(name)).map_err(explain)?;
    if json {
        println!("{}", serde_json::to_string(&reply)?);
    } else {
        println!("{}", reply.access_token.secret());
    }
    Ok(ExitCode::SUCCESS)
}
