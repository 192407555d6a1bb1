//! What differs between desktops. Linux is the tested platform; the rest is written to
//! the Tauri and notify-rust APIs and has not been run (see README, "Platforms").
//!
//! - macOS: the tray app is a menu-bar app. It has no Dock icon while only the tray is
//!   open (activation policy Accessory) and gets one while the dashboard window is open
//!   (Regular), so the window can be found with Cmd-Tab.
//! - Windows: the core's notifier shows "Re-authorize" as a toast button (notify-rust
//!   4.18+ turns actions into buttons and reports the click); the toast is shown under
//!   Windows PowerShell's app id, because the notifier sets none of its own. The tray
//!   menu and the window carry the action too, as on every desktop.
//! - macOS: the same notifier shows the button in Notification Center; the click comes
//!   back through the main run loop, which Tauri runs.
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
