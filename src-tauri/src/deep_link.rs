//! `tether://` links. The scheme is declared in `tauri.conf.json` (`plugins.deep-link`):
//! the Debian package's desktop entry registers it (`MimeType=x-scheme-handler/tether`), and
//! on macOS and Windows the bundles do. A link the OS opens while the app runs reaches the
//! running instance through the single-instance plugin, which hands it to the deep-link
//! plugin; this module opens the pair dialog pre-filled with it. Nothing is stored until the
//! owner presses "Pair" there (and agrees to a replacement), exactly as for a pasted code.
//!
//! A link that starts the app is an argument of the new process on Linux and Windows: the
//! app's `Ready` handler reads it (`crate::launch_request`), as the deep-link plugin emits
//! its event before anyone can listen.

use tauri::{AppHandle, Runtime};
use tether::protocol::PAIR_LINK_PREFIX;

/// The deep-link plugin.
pub fn plugin<R: Runtime>() -> impl tauri::plugin::Plugin<R> {
    tauri_plugin_deep_link::init()
}

/// True when a second launch's arguments (without the program name) are one link the
/// deep-link plugin hands to [`listen`]'s handler: the single-instance callback then leaves
/// them alone, so the dialog is not opened twice. Mirrors the plugin's rule (one argument,
/// a URL of a configured scheme).
pub fn handled_by_plugin<S: AsRef<str>>(args: &[S]) -> bool {
    matches!(args, [one] if one.as_ref().starts_with("tether:"))
}

/// Opens the pair dialog for every pairing link the deep-link plugin reports.
pub fn listen<R: Runtime>(app: &AppHandle<R>) {
    use tauri_plugin_deep_link::DeepLinkExt;
    let handle = app.clone();
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            let link = url.to_string();
            if link.starts_with(PAIR_LINK_PREFIX) {
                crate::window::open_or_log(
                    &handle,
                    crate::window::OpenAt {
                        credential: None,
                        pair_link: Some(link),
                    },
                );
            } else {
                tracing::warn!(
                    "ignoring a tether:// link that is not a pairing link: {}",
                    url.scheme()
                );
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lone_link_is_left_to_the_plugin() {
        assert!(handled_by_plugin(&["tether://pair?url=x&secret=s"]));
        assert!(!handled_by_plugin(&["--open", "tether://pair?url=x"]));
        assert!(!handled_by_plugin::<&str>(&[]));
        assert!(!handled_by_plugin(&["--open"]));
    }
}
