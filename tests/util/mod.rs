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

/// The running test's name: libtest runs each test on a thread named after it (a tokio
/// test's body runs there too, inside `block_on`).
pub fn current_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => "<unnamed test>".to_string(),
    }
}

/// Says that the current test (or a part of it, when the caller goes on) cannot run here
/// and why, where it cannot be missed: a `SKIPPED <test>: <why>` line straight to the process's stderr (libtest
/// captures `eprintln!`, and shows captured output only for failures), and the same line
/// appended to the file named by `TETHER_TEST_SKIPS`, which `scripts/test.sh` reads to
/// fail the run. In strict mode (`TETHER_TEST_STRICT=1`, set by `scripts/test.sh`) it
/// then fails the test with that line.
pub fn skipped(why: &str) {
    use std::io::Write;
    let line = format!("SKIPPED {}: {why}\n", current_test());
    // Not `eprint!`: a direct write to the stderr handle is not captured.
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(path) = std::env::var_os("TETHER_TEST_SKIPS") {
        // One `write` per line on an O_APPEND file: lines from parallel tests do not mix.
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = appended {
            panic!(
                "could not record the skip in {}: {e}; {}",
                std::path::Path::new(&path).display(),
                line.trim_end()
            );
        }
    }
    if strict() {
        panic!(
            "{} (TETHER_TEST_STRICT=1: every system part the suite needs must be here)",
            line.trim_end()
        );
    }
}

/// Skips the current test with a visible `SKIPPED <test>: <why>` line (see [`skipped`]),
/// or fails it in strict mode (CI), where every system part the suite needs is installed
/// and running.
#[macro_export]
macro_rules! require {
    ($cond:expr, $why:expr) => {
        if !$cond {
            $crate::util::skipped(&::std::string::ToString::to_string(&$why));
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
