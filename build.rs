//! Sets `cfg(daemon)` where the agent daemon is built: Linux. `TETHER_NO_DAEMON=1` leaves
//! it out on Linux too, so `scripts/check-targets.sh` can check here the companion-only
//! crate that macOS and Windows get.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(daemon)");
    println!("cargo::rerun-if-env-changed=TETHER_NO_DAEMON");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let left_out = std::env::var_os("TETHER_NO_DAEMON").is_some_and(|v| !v.is_empty());
    if linux && !left_out {
        println!("cargo::rustc-cfg=daemon");
    }
}
