//! The `tether-tray` binary: everything lives in the library so tests can drive it.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]
fn main() {
    tether_tray::run()
}
