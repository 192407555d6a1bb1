//! Helpers shared by the integration tests: temp dirs, the `tether` binary, real servers.

#![allow(dead_code)]

use std::path::PathBuf;

/// Path of the `tether` binary built for these tests.
pub fn tether_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tether"))
}

/// True when the run must not skip tests that need system parts (CI sets it).
pub fn strict() -> bool {
    std::env::var_os("TETHER_TEST_STRICT").is_some_and(|v| v == "1")
}

/// Skips the current test with a printed reason, or fails it in strict mode (CI), where
/// every system part the suite needs is installed and running.
#[macro_export]
macro_rules! require {
    ($cond:expr, $why:expr) => {
        if !$cond {
            if $crate::util::strict() {
                panic!("required for this test but missing: {}", $why);
            }
            eprintln!("skipped: {}", $why);
            return;
        }
    };
}
pub mod browser;
pub mod oidc;
pub mod openbao;

/// Held by every test that clicks on desktop notifications: they share one notification
/// server, and `dunstctl action 0` acts on whichever notification is shown first.
pub static DESKTOP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Takes [`DESKTOP`] and clears the notification server, so `dunstctl action 0` can only
/// reach the caller's own notification.
pub async fn desktop_session() -> tokio::sync::MutexGuard<'static, ()> {
    let guard = DESKTOP.lock().await;
    let _ = std::process::Command::new("dunstctl")
        .arg("close-all")
        .status();
    guard
}
