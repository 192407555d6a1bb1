#!/usr/bin/env bash
# Checks what can be checked here of the builds for macOS and Windows.
#
# No other target's standard library can be had on this machine: rustup's targets come
# only from rustup's own servers, and Debian's libstd-rust-dev-windows belongs to
# Debian's rustc 1.63, whose cargo cannot read this dependency tree (Cargo.toml's
# `debug = "line-tables-only"`, then 78 locked crates of edition 2024, 337 needing a
# newer rustc). So this checks the part that differs by `cfg(daemon)` alone: the crate
# as macOS and Windows get it, with the agent daemon, the vault and the demo left out
# (build.rs honours TETHER_NO_DAEMON), linted with the same rules as CI (the placeholder
# commands it gets are unit-tested on Linux: cli/linux_only.rs). The `cfg(unix)`/`cfg(windows)` branches for Windows and the
# macOS-only lines are still only written, never compiled (README, "Platforms").
#
# Cost: one `cargo clippy` of the core crate on top of CI's clippy run (seconds).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TETHER_NO_DAEMON=1 cargo clippy --lib --bin tether -- -D warnings
echo "check-targets: the companion-only crate (macOS/Windows arrangement) builds and lints clean"
