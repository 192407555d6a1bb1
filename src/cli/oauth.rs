//! `tether oauth ...` commands: run a provider's OAuth flow on this machine (to adopt a new
//! credential into a vault, or to debug a provider), and list the provider presets.

use crate::oauth::{
    self, AuthorizationRequest, CallbackOutcome, ClientCredentials, LoopbackListener, TokenSet,
};
use crate::protocol::valid_credential_name;
use crate::provider::{self, Provider, ProviderOverrides};
use crate::secret::ClientSecret;
use crate::vault::{Vault, VaultConfig};
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `tether oauth` sub-commands.
#[derive(Debug, Subcommand)]
pub enum OauthCommand {
    /// Authorize in the browser through a loopback redirect, exchange the code, and print
    /// the token set (redacted) or store it in a vault.
    Login(Box<LoginArgs>),
    /// List the provider presets and their redirect rules.
    Providers,
}

/// `tether oauth login` flags.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Provider preset: google, x, tiktok, github, github-app, microsoft, spotify, dropbox,
    /// slack, generic.
    #[arg(long)]
    pub provider: String,
    /// The OAuth client id registered with the provider.
    #[arg(long)]
    pub client_id: String,
    /// A file holding the client secret (confidential clients; Google Desktop clients).
    #[arg(long, value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// Scope to request (repeat, or separate with spaces); default: the preset's.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// generic: the issuer URL, for OpenID Connect / RFC 8414 discovery.
    #[arg(long, value_name = "URL", conflicts_with_all = ["auth_url", "token_url"])]
    pub issuer: Option<String>,
    /// generic (or an override): the authorization endpoint.
    #[arg(long, value_name = "URL")]
    pub auth_url: Option<String>,
    /// generic (or an override): the token endpoint.
    #[arg(long, value_name = "URL")]
    pub token_url: Option<String>,
    /// Listen on this loopback port (the one registered with the provider); 0 = any.
    #[arg(long, value_name = "PORT")]
    pub redirect_port: Option<u16>,
    /// Print the authorization URL instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Seconds to wait for the browser's callback.
    #[arg(long, value_name = "SECS", default_value_t = oauth::DEFAULT_TIMEOUT.as_secs())]
    pub timeout: u64,
    /// Store the tokens in a vault under this credential name (needs --primary).
    #[arg(long, value_name = "NAME", requires = "primary")]
    pub into: Option<String>,
    /// The vault's primary directory.
    #[arg(long, value_name = "DIR", requires = "into")]
    pub primary: Option<PathBuf>,
    /// A vault backup directory (repeat for several).
    #[arg(long = "backup", value_name = "DIR", requires = "into")]
    pub backups: Vec<PathBuf>,
}

/// Runs one `tether oauth` command.
pub fn run(cmd: OauthCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        OauthCommand::Providers => {
            for name in provider::preset_names() {
                // Every listed name is a preset (the catalog's unit test checks it).
                let p = provider::preset(name).expect("listed presets exist");
                let r = p.requirement();
                let port = match r.port {
                    crate::protocol::RedirectPort::Any => "any port".to_owned(),
                    crate::protocol::RedirectPort::Fixed(n) => format!("port {n}"),
                };
                let kind = match p.kind {
                    provider::CredentialKind::OAuth => {
                        format!("oauth, redirect http://{}{} on {port}", r.host, r.path)
                    }
                    provider::CredentialKind::Paste => "paste a token".to_owned(),
                };
                println!("{name:<12} {kind}");
            }
            Ok(ExitCode::SUCCESS)
        }
        OauthCommand::Login(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("failed to start the async runtime")?;
            rt.block_on(login(*args))
        }
    }
}

async fn build_provider(args: &LoginArgs, http: &reqwest::Client) -> anyhow::Result<Provider> {
    let mut p = match &args.issuer {
        Some(issuer) => {
            if args.provider != "generic" {
                bail!("--issuer is for `--provider generic`; {} has fixed endpoints (override them with --auth-url/--token-url)", args.provider);
            }
            let url = url::Url::parse(issuer)
                .with_context(|| format!("--issuer `{issuer}` is not a URL"))?;
            provider::discover(http, &url).await?
        }
        None => provider::preset_or_error(&args.provider)?,
    };
    if p.kind != provider::CredentialKind::OAuth {
        bail!("provider {} uses a pasted token, not OAuth; store it with the agent's `secret` command instead", p.name);
    }
    p.apply(&ProviderOverrides {
        auth_url: args.auth_url.clone(),
        token_url: args.token_url.clone(),
        redirect_port: args.redirect_port,
        ..Default::default()
    })?;
    p.validate()?;
    Ok(p)
}

fn read_secret(path: &PathBuf) -> anyhow::Result<ClientSecret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the client secret file {}", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        bail!("the client secret file {} is empty", path.display());
    }
    Ok(ClientSecret::new(secret))
}

async fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    if let Some(name) = &args.into {
        if !valid_credential_name(name) {
            bail!("credential name `{name}` is not valid: use 1-64 of a-z, 0-9, `_`, `-`, starting with a letter or digit");
        }
    }
    let http = oauth::http_client();
    let provider = build_provider(&args, &http).await?;
    let client = ClientCredentials {
        client_id: args.client_id.clone(),
        client_secret: args
            .client_secret_file
            .as_ref()
            .map(read_secret)
            .transpose()?,
    };
    let scopes: Vec<String> = args
        .scopes
        .iter()
        .flat_map(|s| s.split_whitespace())
        .map(str::to_owned)
        .collect();

    let (pending, auth_url) = AuthorizationRequest::new(&provider, &client, &scopes)?;
    let listener = LoopbackListener::bind(&provider.requirement(), pending.state.clone())?;
    let redirect_uri = listener.redirect_uri();
    let url = auth_url.with_redirect_uri(&redirect_uri);
    if args.no_browser {
        println!(
            "Open this URL in a browser on this machine to authorize {}:\n\n{url}\n",
            provider.name
        );
    } else if let Err(e) = webbrowser::open(url.as_str()) {
        eprintln!("could not open a browser ({e}); open this URL yourself:\n\n{url}\n");
    } else {
        eprintln!(
            "Opened the browser for {}; waiting for the redirect to {redirect_uri} ...",
            provider.name
        );
    }

    let canceller = listener.canceller();
    let timeout = Duration::from_secs(args.timeout);
    let mut waiting = tokio::task::spawn_blocking(move || listener.wait(timeout));
    let callback = tokio::select! {
        r = &mut waiting => r.context("the loopback listener stopped unexpectedly")?,
        _ = tokio::signal::ctrl_c() => {
            canceller.cancel();
            waiting.await.context("the loopback listener stopped unexpectedly")?
        }
    }?;

    let (cb, responder) = callback.into_parts();
    let result = oauth::exchange(
        &http,
        &provider,
        &client,
        cb.code,
        pending.verifier,
        &cb.redirect_uri,
    )
    .await;
    let tokens = match result {
        Ok(t) => t,
        Err(e) => {
            responder.respond(CallbackOutcome::Failure {
                title: format!("{}: the token exchange failed", provider.name),
                detail: e.to_string(),
            });
            return Err(e).context("failed to exchange the authorization code");
        }
    };
    let account = oauth::probe_account(&http, &provider, &client, &tokens.access_token)
        .await
        .1;

    let stored = match (&args.into, &args.primary) {
        (Some(name), Some(primary)) => {
            let record = crate::agent::keep_alive::token_record::from_grant(
                name,
                &provider.name,
                account.as_ref(),
                &tokens,
                &scopes,
            );
            let cfg = VaultConfig::new(primary.clone(), args.backups.clone());
            let commit = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let (vault, _) = Vault::open(cfg)?;
                Ok(vault.commit(record)?)
            })
            .await
            .context("the vault task stopped unexpectedly")?;
            match commit {
                Ok(report) => Some((name.clone(), report)),
                Err(e) => {
                    responder.respond(CallbackOutcome::Failure {
                        title: format!("{name}: the tokens could not be stored"),
                        detail: format!("{e:#}"),
                    });
                    return Err(
                        e.context(format!("failed to store credential {name} in the vault"))
                    );
                }
            }
        }
        _ => None,
    };
    let label = account
        .as_ref()
        .map(|a| format!(" as {}", a.label))
        .unwrap_or_default();
    responder.respond(CallbackOutcome::Success {
        title: format!("Done: {} authorized{label}", provider.name),
        detail: "Tether has the tokens.".into(),
    });

    print_tokens(
        &provider,
        account.as_ref().map(|a| a.label.as_str()),
        &tokens,
    );
    if let Some((name, report)) = stored {
        println!(
            "stored as credential {name}, generation {} in {}",
            report.generation,
            report.written.join(", ")
        );
        for f in &report.failed {
            eprintln!(
                "warning: vault location {} did not take it: {}",
                f.location, f.error
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The token set without its secrets.
fn print_tokens(provider: &Provider, account: Option<&str>, t: &TokenSet) {
    println!("provider:          {}", provider.name);
    if let Some(a) = account {
        println!("account:           {a}");
    }
    println!("access token:      {} ({})", t.access_token, t.token_type);
    let expires = t
        .expires_at
        .map(|d| d.to_rfc3339())
        .unwrap_or_else(|| "not said".into());
    println!("access expires:    {expires}");
    let refresh = match &t.refresh_token {
        Some(r) => format!(
            "{r} (rotates: {})",
            if provider.rotates_refresh_token {
                "yes"
            } else {
                "no"
            }
        ),
        None => "none: ask for offline access (see the preset's scopes and parameters)".into(),
    };
    println!("refresh token:     {refresh}");
    if let Some(e) = t.refresh_expires_at {
        println!("refresh expires:   {}", e.to_rfc3339());
    }
    println!(
        "scopes:            {}",
        if t.scopes.is_empty() {
            "not said".to_owned()
        } else {
            t.scopes.join(" ")
        }
    );
}
