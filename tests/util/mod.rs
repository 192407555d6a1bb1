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
