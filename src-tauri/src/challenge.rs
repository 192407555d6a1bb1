//! The window's commands for an agent's challenge: the QR code to draw (made by the core
//! from the payload in the snapshot, so the page never encodes anything itself) and
//! opening a device code's page in the browser. Only what the agent posted can be opened.

use crate::bridge::Core;
use crate::error::CommandError;
use std::sync::Arc;
use tauri::State;
use tether::companion::challenge::{self, ChallengeView};

/// The challenge of `agent`/`credential` with its QR modules, or `null` when none is open.
#[tauri::command]
pub fn challenge_view(
    core: State<'_, Arc<Core>>,
    agent: String,
    credential: String,
) -> Result<Option<ChallengeView>, CommandError> {
    challenge::view(&core.snapshot().agents, &agent, &credential)
        .map_err(|e| CommandError::new("bad_input", e.to_string()))
}

/// Opens the page of `agent`/`credential`'s challenge (a device code's verification page,
/// a URL challenge) in the system browser.
#[tauri::command]
pub fn open_challenge(
    core: State<'_, Arc<Core>>,
    agent: String,
    credential: String,
) -> Result<(), CommandError> {
    let link = challenge::link(&core.snapshot().agents, &agent, &credential)
        .map_err(|e| CommandError::new("refused", format!("Tether will not open it: {e}")))?
        .ok_or_else(|| {
            CommandError::new(
                "not_found",
                format!("{agent} · {credential} has no page to open right now"),
            )
        })?;
    core.opener()
        .open(&link)
        .map_err(|e| CommandError::new("browser", format!("cannot open {link}: {e}")))
}
