//! Events the app sends to the window: `dashboard` (every snapshot, re-authorization steps
//! included), `focus` (open at a credential) and `pair-link` (a `tether://pair?` link
//! arrived).

use serde::Serialize;
use tauri::{AppHandle, Emitter, Runtime};
use tether::companion::dashboard::Dashboard;

/// Event carrying a fresh [`Dashboard`].
pub const DASHBOARD: &str = "dashboard";
/// Event asking the window to focus a credential.
pub const FOCUS: &str = "focus";
/// Event carrying a pairing link to put in the pair dialog.
pub const PAIR_LINK: &str = "pair-link";

/// Which credential to focus.
#[derive(Debug, Clone, Serialize)]
pub struct Focus {
    /// Agent name.
    pub agent: String,
    /// Credential name.
    pub credential: String,
}

/// Sends `payload` as `event` to every window; no window open is not an error.
pub fn send<R: Runtime, T: Serialize + Clone>(app: &AppHandle<R>, event: &str, payload: T) {
    if let Err(e) = app.emit(event, payload) {
        tracing::debug!("could not send {event} to the window: {e}");
    }
}

/// Tells the window about a new snapshot.
pub fn dashboard<R: Runtime>(app: &AppHandle<R>, d: &Dashboard) {
    send(app, DASHBOARD, d.clone());
}
