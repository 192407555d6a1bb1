//! The dashboard window: created only when opened and destroyed on close, so the idle
//! tray holds no web view.

use crate::events::{self, Focus};
use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

/// Label of the one dashboard window (the capability names it).
pub const MAIN: &str = "main";

/// What the window should show first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenAt {
    /// Focus this `(agent, credential)`'s row and button.
    pub credential: Option<(String, String)>,
    /// Put this pairing link into the pair dialog.
    pub pair_link: Option<String>,
}

/// Opens the window (or raises the open one) and points it at `at`.
pub fn open<R: Runtime>(app: &AppHandle<R>, at: OpenAt) -> tauri::Result<()> {
    if let Some(w) = app.get_webview_window(MAIN) {
        w.unminimize()?;
        w.show()?;
        w.set_focus()?;
        if let Some((agent, credential)) = at.credential {
            events::send(app, events::FOCUS, Focus { agent, credential });
        }
        if let Some(link) = at.pair_link {
            events::send(app, events::PAIR_LINK, link);
        }
        return Ok(());
    }
    let window = WebviewWindowBuilder::new(app, MAIN, WebviewUrl::App(start_path(&at).into()))
        .title("Tether")
        .inner_size(1040.0, 640.0)
        .min_inner_size(640.0, 420.0)
        .build()?;
    crate::platform::show_in_dock(app, true);
    let handle = app.clone();
    window.on_window_event(move |e| {
        if let tauri::WindowEvent::Destroyed = e {
            crate::platform::show_in_dock(&handle, false);
        }
    });
    Ok(())
}

/// [`open`], with a failure logged: a tray click or a link has no one else to tell.
pub fn open_or_log<R: Runtime>(app: &AppHandle<R>, at: OpenAt) {
    if let Err(e) = open(app, at) {
        tracing::warn!("cannot open the tether window: {e}");
    }
}

/// `index.html` with the query the page reads on load (`agent`, `credential`, `pair`).
pub fn start_path(at: &OpenAt) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if let Some((agent, credential)) = &at.credential {
        q.append_pair("agent", agent);
        q.append_pair("credential", credential);
    }
    if let Some(link) = &at.pair_link {
        q.append_pair("pair", link);
    }
    let q = q.finish();
    if q.is_empty() {
        "index.html".into()
    } else {
        format!("index.html?{q}")
    }
}
