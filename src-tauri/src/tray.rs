//! The tray icon: draws what `tether::companion::tray` decides (icon, tooltip, menu) and
//! routes menu clicks back to the app.

use crate::bridge::Core;
use std::sync::Arc;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Runtime};
use tether::companion::tray::{
    self as model, AgentView, IconKind, MenuAction, MenuEntry, MenuOptions,
};

/// Id of the app's one tray icon.
pub const TRAY_ID: &str = "tether";

/// The PNG of an icon kind, compiled in so the tray never depends on files at run time.
pub fn icon_png(kind: IconKind) -> &'static [u8] {
    match kind {
        IconKind::Idle => include_bytes!("../../icons/tray-idle.png"),
        IconKind::Ok => include_bytes!("../../icons/tray-ok.png"),
        IconKind::Warn => include_bytes!("../../icons/tray-warn.png"),
        IconKind::Dead => include_bytes!("../../icons/tray-dead.png"),
    }
}

/// Creates the tray icon for the current snapshot; `on_action` does what a menu item asks
/// (the app's `act`: passed in, because `lib.rs` draws the tray through this file and this
/// file does not call back into it).
pub fn create<R: Runtime>(
    app: &AppHandle<R>,
    on_action: fn(&AppHandle<R>, MenuAction),
) -> tauri::Result<TrayIcon<R>> {
    let core = app.state::<Arc<Core>>();
    let agents = core.snapshot().agents;
    let summary = model::summarize(&agents, chrono::Utc::now());
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::from_bytes(icon_png(summary.icon))?)
        .tooltip(&summary.tooltip)
        .menu(&build_menu(app, &agents)?)
        .show_menu_on_left_click(true)
        .on_menu_event(move |app, event| on_menu(app, event, on_action))
        .build(app)
}

/// Redraws icon, tooltip and menu for `agents`.
pub fn refresh<R: Runtime>(app: &AppHandle<R>, agents: &[AgentView]) -> tauri::Result<()> {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return Ok(());
    };
    let summary = model::summarize(agents, chrono::Utc::now());
    tray.set_icon(Some(Image::from_bytes(icon_png(summary.icon))?))?;
    tray.set_tooltip(Some(&summary.tooltip))?;
    tray.set_menu(Some(build_menu(app, agents)?))?;
    Ok(())
}

fn options<R: Runtime>(app: &AppHandle<R>) -> MenuOptions {
    MenuOptions {
        paused_until: app.state::<Arc<Core>>().pause().until(chrono::Utc::now()),
        autostart: crate::autostart::autostart_enabled(app),
    }
}

fn build_menu<R: Runtime>(app: &AppHandle<R>, agents: &[AgentView]) -> tauri::Result<Menu<R>> {
    let menu = Menu::new(app)?;
    for (i, entry) in model::menu(agents, options(app), chrono::Utc::now())
        .into_iter()
        .enumerate()
    {
        match entry {
            MenuEntry::Item {
                text,
                action: Some(a),
            } => menu.append(&MenuItem::with_id(app, a.id(), text, true, None::<&str>)?)?,
            // Informational lines need unique ids too; they are disabled, so never clicked.
            MenuEntry::Item { text, action: None } => menu.append(&MenuItem::with_id(
                app,
                format!("info-{i}"),
                text,
                false,
                None::<&str>,
            )?)?,
            MenuEntry::Check {
                text,
                checked,
                action,
            } => menu.append(&CheckMenuItem::with_id(
                app,
                action.id(),
                text,
                true,
                checked,
                None::<&str>,
            )?)?,
            MenuEntry::Separator => menu.append(&PredefinedMenuItem::separator(app)?)?,
        }
    }
    Ok(menu)
}

fn on_menu<R: Runtime>(
    app: &AppHandle<R>,
    event: MenuEvent,
    on_action: fn(&AppHandle<R>, MenuAction),
) {
    match MenuAction::parse(event.id.as_ref()) {
        Some(action) => on_action(app, action),
        None => tracing::debug!("ignoring click on menu item {}", event.id.as_ref()),
    }
}
