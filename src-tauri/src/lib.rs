//! Tether's tray app: a thin Tauri layer over the companion core (`tether::companion`).

use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{Manager, Runtime};

/// Starts the tray app with the real runtime.
pub fn run() {
    let app = run_app(tauri::Builder::default())
        .build(tauri::generate_context!())
        .expect("tauri context is generated at build time from tauri.conf.json");
    app.run(|_app, event| {
        // Live in the tray: closing the last window must not end the app.
        if let tauri::RunEvent::ExitRequested { api, code, .. } = event {
            if code.is_none() {
                api.prevent_exit();
            }
        }
    });
}

/// Wires the tray into a builder; tests pass `tauri::test::mock_builder()`.
pub fn run_app<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.setup(|app| {
        #[cfg(desktop)]
        {
            let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
            let menu = Menu::with_items(app, &[&quit])?;
            let mut tray = TrayIconBuilder::with_id("tether")
                .tooltip("Tether")
                .menu(&menu)
                .on_menu_event(|app, event| {
                    if event.id.as_ref() == "quit" {
                        app.exit(0);
                    }
                });
            if let Some(icon) = app.default_window_icon() {
                tray = tray.icon(icon.clone());
            }
            tray.build(app)?;
        }
        let _ = app.handle().config();
        Ok(())
    })
}
