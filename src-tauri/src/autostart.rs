//! "Start at login": whether it is on, and turning it over. Read by the tray menu (its
//! check mark) and changed by the menu's action in `lib.rs`.

use tauri::{AppHandle, Manager, Runtime};

/// Whether "Start at login" is on (false when the autostart plugin is not loaded, as in tests).
pub fn autostart_enabled<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.try_state::<tauri_plugin_autostart::AutoLaunchManager>()
        .and_then(|m| m.is_enabled().ok())
        .unwrap_or(false)
}

/// Turns "Start at login" over; a refusal is logged (a menu click has no one else to tell).
pub(crate) fn toggle_autostart<R: Runtime>(app: &AppHandle<R>) {
    let Some(m) = app.try_state::<tauri_plugin_autostart::AutoLaunchManager>() else {
        return;
    };
    let result = if autostart_enabled(app) {
        m.disable()
    } else {
        m.enable()
    };
    if let Err(e) = result {
        tracing::warn!("cannot change start at login: {e}");
    }
}
