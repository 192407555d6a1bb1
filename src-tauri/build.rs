//! Build script: generates the Tauri context and the ACL for the app's own commands.

// The one list of commands (`src/command_list.rs`), shared with the app's handler.
include!("src/command_list.rs");

const COMMANDS: &[&str] = with_commands!(command_names);

fn main() {
    println!("cargo:rerun-if-changed=src/command_list.rs");
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect(
        "invariant: tauri.conf.json and capabilities/ are valid (tauri-build says why otherwise)",
    );
}
