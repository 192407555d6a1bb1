//! Build script: generates the Tauri context and the ACL for the app's own commands.

// The list must match `commands::COMMANDS` (a test checks the capability against it).
const COMMANDS: &[&str] = &[
    "dashboard",
    "check_now",
    "reauth",
    "cancel_reauth",
    "paste_token",
    "pair",
    "unpair",
    "settings",
    "save_settings",
    "challenge_view",
    "open_challenge",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect(
        "invariant: tauri.conf.json and capabilities/ are valid (tauri-build says why otherwise)",
    );
}
