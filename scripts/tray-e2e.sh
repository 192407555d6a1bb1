#!/usr/bin/env bash
# The tray app's end-to-end test: builds the daemon and the tray app (debug), then runs
# tests/tray/webdriver_e2e.py in a headless desktop session (scripts/tray-session.sh:
# private D-Bus session, Xvfb, dunst). The test drives the real app through WebDriver
# (tauri-driver + WebKitWebDriver) against `tether agent serve` and the oidc-provider
# fixture, and reads the tray over D-Bus. Screenshots go to tests/artifacts/.
#
#   scripts/tray-e2e.sh                    # from the repository root, any shell
#
# Needs: xvfb x11-utils imagemagick dbus libglib2.0-bin dunst webkit2gtk-driver
# libayatana-appindicator3-1, node + `npm ci` in tests/fixtures/oidc-provider, and
# `cargo install tauri-driver --locked`. TETHER_SKIP_BUILD=1 uses existing binaries.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The tray app builds into the workspace's target dir, so CI compiles tauri once for the
# tray's unit tests and this test. TETHER_TRAY_TARGET picks another dir (handy while
# working on the core, so a tauri build does not hold the shared build lock).
TRAY_TARGET="${TETHER_TRAY_TARGET:-$ROOT/target}"
if [[ -z "${TETHER_SKIP_BUILD:-}" ]]; then
    cargo build --bin tether
    CARGO_TARGET_DIR="$TRAY_TARGET" cargo build -p tether-tray
fi
export TETHER_BIN="${TETHER_BIN:-$ROOT/target/debug/tether}"
export TETHER_TRAY_BIN="${TETHER_TRAY_BIN:-$TRAY_TARGET/debug/tether-tray}"

exec "$ROOT/scripts/tray-session.sh" python3 "$ROOT/tests/tray/webdriver_e2e.py"
