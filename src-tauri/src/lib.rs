//! Tether's tray app: a thin Tauri layer over the companion core (`tether::companion`).
//!
//! - [`autostart`]: "Start at login" (whether it is on, turning it over);
//! - [`bridge`]: the app's handle on the core (snapshot, pause, pairing, settings, checks);
//! - [`reauth`]: the core's re-authorization commands (browser, cancel, device code, paste);
//! - [`watching`]: the core's watcher inside the app, its events applied to the snapshot;
//! - [`challenge`]: the window's commands for an agent's challenge (QR modules, open page);
//! - [`commands`]: the window's IPC surface, one line each into the core; every command
//!   is named once, in `command_list.rs` (also read by `build.rs` for the ACL);
//! - [`deep_link`]: `tether://` links (the pair dialog, pre-filled);
//! - [`error`]: the `{code, message}` error every command returns;
//! - [`events`]: what the app pushes to the window;
//! - [`platform`]: what differs between desktops (the macOS Dock icon);
//! - [`tray`]: the tray icon and menu, drawn from `tether::companion::tray`;
//! - [`window`]: the dashboard window, created on demand and destroyed on close.
//!
//! The modules never call back into this file: what they need from it is passed in (the
//! tray gets [`act`] as its menu handler).
//!
//! [`run`] is the binary; [`run_app`] wires everything into any `tauri::Builder`, so tests
//! drive it with `tauri::test::mock_builder()`.

// The command list's macros, before the modules that use them.
#[macro_use]
mod command_list;

pub mod autostart;
pub mod bridge;
pub mod challenge;
pub mod commands;
pub mod deep_link;
pub mod error;
pub mod events;
pub mod platform;
pub mod reauth;
#[cfg(desktop)]
pub mod tray;
pub mod watching;
pub mod window;

pub use autostart::autostart_enabled;
use autostart::toggle_autostart;
use bridge::Core;
use std::sync::Arc;
use tauri::{AppHandle, Manager, Runtime};
use tether::companion::tray::{AgentView, MenuAction};
use tether::protocol::PAIR_LINK_PREFIX;
use window::OpenAt;

/// The command-line flag that opens the window at start (the WebDriver test uses it).
pub const OPEN_FLAG: &str = "--open";

/// Starts the tray app with the real runtime.
pub fn run() {
    init_logging();
    let core = match Core::default_dir().and_then(Core::open) {
        Ok(core) => Arc::new(core),
        Err(e) => {
            eprintln!("error: {}", e.message);
            std::process::exit(1);
        }
    };
    let builder = tauri::Builder::default()
        // First, so a second launch hands over its arguments before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            let args = &argv[argv.len().min(1)..];
            if deep_link::handled_by_plugin(args) {
                return;
            }
            let at = launch_request(args.iter().map(String::as_str));
            // A bare second launch means "show me Tether".
            window::open_or_log(app, at.unwrap_or_default());
        }))
        .plugin(deep_link::plugin())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            None,
        ));
    let app = run_app(builder, core)
        .build(tauri::generate_context!())
        .expect("invariant: the tauri context is generated at build time from tauri.conf.json");
    deep_link::listen(app.handle());
    // Only the tray at start: no Dock icon on macOS until the window opens.
    platform::show_in_dock(app.handle(), false);
    app.run(|app, event| match event {
        tauri::RunEvent::Ready => {
            let args: Vec<String> = std::env::args().skip(1).collect();
            if let Some(at) = launch_request(args.iter().map(String::as_str)) {
                window::open_or_log(app, at);
            }
        }
        // Live in the tray: closing the last window must not end the app; only Quit does.
        tauri::RunEvent::ExitRequested {
            api, code: None, ..
        } => api.prevent_exit(),
        _ => {}
    });
}

// Registers every command of the list with Tauri.
macro_rules! handler {
    ($($module:ident :: $command:ident),* $(,)?) => {
        tauri::generate_handler![$($module::$command),*]
    };
}

/// Wires the core, the commands, the tray and the watcher into `builder`.
pub fn run_app<R: Runtime>(builder: tauri::Builder<R>, core: Arc<Core>) -> tauri::Builder<R> {
    builder
        .manage(core)
        .invoke_handler(with_commands!(handler))
        .setup(|app| {
            let handle = app.handle().clone();
            #[cfg(desktop)]
            tray::create(&handle, act)?;
            let core = app.state::<Arc<Core>>().inner().clone();
            let requests = handle.clone();
            // A click on a notification (its "Re-authorize" button, or its body where the
            // platform drops buttons): show the credential and start the flow, so the
            // window tells the owner what happens next.
            core.start(Arc::new(move |agent, credential| {
                let (a, c) = (agent.clone(), credential.clone());
                act(
                    &requests,
                    MenuAction::Show {
                        agent: a,
                        credential: c,
                    },
                );
                act(&requests, MenuAction::Reauth { agent, credential });
            }));
            follow_snapshots(handle, core);
            Ok(())
        })
}

/// Redraws tray and window on every snapshot, and once a minute for the relative times.
fn follow_snapshots<R: Runtime>(app: AppHandle<R>, core: Arc<Core>) {
    let mut rx = core.subscribe();
    tauri::async_runtime::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { break },
                _ = tick.tick() => {}
            }
            let agents = rx.borrow_and_update().agents.clone();
            redraw(&app, &core, &agents);
        }
    });
}

fn redraw<R: Runtime>(app: &AppHandle<R>, core: &Core, agents: &[AgentView]) {
    #[cfg(desktop)]
    if let Err(e) = tray::refresh(app, agents) {
        tracing::warn!("cannot update the tray icon: {e}");
    }
    let _ = agents;
    events::dashboard(app, &core.dashboard());
}

/// Does what a menu item or a notification asks.
pub fn act<R: Runtime>(app: &AppHandle<R>, action: MenuAction) {
    let core = app.state::<Arc<Core>>().inner().clone();
    match action {
        MenuAction::Reauth { agent, credential } => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                if let Err(e) = core.reauth(&agent, &credential, false).await {
                    tracing::warn!("re-authorization of {agent} · {credential} failed: {e}");
                    // Started from the tray, the failure would be invisible: show it.
                    window::open_or_log(
                        &app,
                        OpenAt {
                            credential: Some((agent, credential)),
                            pair_link: None,
                        },
                    );
                }
            });
        }
        MenuAction::Show { agent, credential } => window::open_or_log(
            app,
            OpenAt {
                credential: Some((agent, credential)),
                pair_link: None,
            },
        ),
        MenuAction::Open => window::open_or_log(app, OpenAt::default()),
        MenuAction::CheckNow => {
            tauri::async_runtime::spawn(async move {
                if let Err(e) = core.check_now().await {
                    tracing::warn!("check now failed: {e}");
                }
            });
        }
        MenuAction::Pause => {
            core.pause().start(chrono::Utc::now());
            redraw(app, &core, &core.snapshot().agents);
        }
        MenuAction::Resume => {
            core.pause().resume();
            redraw(app, &core, &core.snapshot().agents);
        }
        MenuAction::Autostart => {
            toggle_autostart(app);
            redraw(app, &core, &core.snapshot().agents);
        }
        MenuAction::Quit => app.exit(0),
    }
}

/// What a launch's arguments ask for: `--open`, or a `tether://pair?` link; `None` for
/// a plain start (stay in the tray).
pub fn launch_request<'a>(args: impl IntoIterator<Item = &'a str>) -> Option<OpenAt> {
    let mut at = None;
    for arg in args {
        if arg == OPEN_FLAG {
            at.get_or_insert_with(OpenAt::default);
        } else if arg.starts_with(PAIR_LINK_PREFIX) {
            at.get_or_insert_with(OpenAt::default).pair_link = Some(arg.to_string());
        }
    }
    at
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TETHER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_arguments() {
        assert_eq!(launch_request([]), None);
        assert_eq!(launch_request(["--minimized"]), None);
        assert_eq!(launch_request([OPEN_FLAG]), Some(OpenAt::default()));
        let link = "tether://pair?url=https%3A%2F%2F127.0.0.1%3A7443&secret=s";
        assert_eq!(
            launch_request([link]),
            Some(OpenAt {
                credential: None,
                pair_link: Some(link.into())
            })
        );
    }

    #[test]
    fn window_start_path_encodes_its_query() {
        assert_eq!(window::start_path(&OpenAt::default()), "index.html");
        let at = OpenAt {
            credential: Some(("studio".into(), "youtube".into())),
            pair_link: Some("tether://pair?url=x&secret=a&b".into()),
        };
        assert_eq!(
            window::start_path(&at),
            "index.html?agent=studio&credential=youtube&pair=tether%3A%2F%2Fpair%3Furl%3Dx%26secret%3Da%26b"
        );
    }
}
