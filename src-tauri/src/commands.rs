//! The commands the window calls: each is a one-liner into the companion core.
//!
//! Every failure reaches the window as `{code, message}` ([`CommandError`]). The whole
//! surface of the IPC is named once, in `command_list.rs`; `build.rs` generates the ACL
//! from it and `capabilities/default.json` allows exactly these and nothing else.

use crate::bridge::Core;
use crate::error::CommandError;
use std::sync::Arc;
use tauri::State;
use tether::companion::dashboard::Dashboard;
use tether::companion::pair::PairResult;
use tether::companion::pair_link::PairLinkPreview;
use tether::companion::settings::Settings;
use tether::protocol::CredentialHealth;
use tether::secret::AccessToken;

/// Every command's name (from `command_list.rs`, as the build script lists them).
pub const COMMANDS: &[&str] = with_commands!(command_names);

/// The current dashboard.
#[tauri::command]
pub fn dashboard(core: State<'_, Arc<Core>>) -> Dashboard {
    core.dashboard()
}

/// Polls every agent now.
#[tauri::command]
pub async fn check_now(core: State<'_, Arc<Core>>) -> Result<(), CommandError> {
    core.check_now().await
}

/// One-click re-authorization; its steps arrive with the dashboards.
/// `accept_new_server` is set after the owner saw a `server_changed` error and said yes.
#[tauri::command]
pub async fn reauth(
    core: State<'_, Arc<Core>>,
    agent: String,
    credential: String,
    accept_new_server: Option<bool>,
) -> Result<CredentialHealth, CommandError> {
    let accept = accept_new_server.unwrap_or(false);
    core.reauth(&agent, &credential, accept).await
}

/// Asks the agent to re-authorize by device code; the code arrives as the challenge.
#[tauri::command]
pub async fn device_reauth(
    core: State<'_, Arc<Core>>,
    agent: String,
    credential: String,
) -> Result<CredentialHealth, CommandError> {
    core.device_reauth(&agent, &credential).await
}

/// Cancels a running re-authorization.
#[tauri::command]
pub fn cancel_reauth(
    core: State<'_, Arc<Core>>,
    agent: String,
    credential: String,
) -> Result<(), CommandError> {
    core.cancel_reauth(&agent, &credential)
}

/// Pushes a pasted token (paste-kind credentials); the agent verifies it before storing.
/// `new_account` after the owner confirmed a `wrong_account` refusal: the token of another
/// account replaces the stored one on purpose.
#[tauri::command]
pub async fn paste_token(
    core: State<'_, Arc<Core>>,
    agent: String,
    credential: String,
    token: AccessToken,
    new_account: Option<bool>,
) -> Result<CredentialHealth, CommandError> {
    core.paste(&agent, &credential, token, new_account.unwrap_or(false))
        .await
}

/// Redeems a pairing code; `replace` after the owner confirmed a `confirm_replace` error.
#[tauri::command]
pub async fn pair(
    core: State<'_, Arc<Core>>,
    code: String,
    replace: Option<bool>,
) -> Result<PairResult, CommandError> {
    core.pair(&code, replace.unwrap_or(false)).await
}

/// A pairing link that another program opened, in words for the pair dialog.
#[tauri::command]
pub fn pair_preview(code: String) -> Result<PairLinkPreview, CommandError> {
    tether::companion::pair_link::preview(&code)
        .map_err(|e| CommandError::new("bad_input", tether::report::chain(&e)))
}

/// Forgets an agent on this computer.
#[tauri::command]
pub async fn unpair(core: State<'_, Arc<Core>>, agent: String) -> Result<(), CommandError> {
    core.unpair(&agent).await
}

/// The current settings.
#[tauri::command]
pub fn settings(core: State<'_, Arc<Core>>) -> Result<Settings, CommandError> {
    core.settings()
}

/// Saves settings (validated; nothing is written when a value is out of range).
#[tauri::command]
pub fn save_settings(core: State<'_, Arc<Core>>, settings: Settings) -> Result<(), CommandError> {
    core.save_settings(settings)
}
