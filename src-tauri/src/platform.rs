//! What differs between desktops. Linux is the tested platform; the rest is written to
//! the Tauri and notify-rust APIs and has not been run (see README, "Platforms").
//!
//! - macOS: the tray app is a menu-bar app. It has no Dock icon while only the tray is
//!   open (activation policy Accessory) and gets one while the dashboard window is open
//!   (Regular), so the window can be found with Cmd-Tab.
//! - Windows: notify-rust's toasts have no action buttons, so "Re-authorize" lives in the
//!   tray menu and the window there (as on Linux desktops whose notification server shows
//!   no buttons).
//! - Linux: the tray has no tooltip and reports no icon click, so the menu's first line
//!   says the state in words (`tray.rs`).

use tauri::{AppHandle, Runtime};

/// macOS: shows or hides the Dock icon; elsewhere nothing.
pub fn show_in_dock<R: Runtime>(app: &AppHandle<R>, show: bool) {
    #[cfg(target_os = "macos")]
    {
        let policy = if show {
            tauri::ActivationPolicy::Regular
        } else {
            tauri::ActivationPolicy::Accessory
        };
        if let Err(e) = app.set_activation_policy(policy) {
            tracing::warn!("cannot change the Dock icon: {e}");
        }
    }
    #[cfg(not(target_os = "macos"))]
    let _ = (app, show);
}
