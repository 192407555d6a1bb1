#!/usr/bin/env bash
# Prints the tray app's footprint: the release binary's size (as built and stripped) and
# the idle RSS and CPU of the running app (its whole process tree, so WebKit's helper
# processes count) with the window closed and open, paired to a running agent daemon.
# Builds release binaries first (TETHER_SKIP_BUILD=1 to skip); runs in the headless
# session of scripts/tray-session.sh. TETHER_MEASURE_SECS sets each sampling window (30).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ -z "${TETHER_SKIP_BUILD:-}" ]]; then
    # The daemon is only the app's counterpart here, not measured: a debug build will do.
    cargo build --bin tether
    CARGO_TARGET_DIR="$ROOT/target/tray" cargo build --release -p tether-tray
fi
export TETHER_BIN="${TETHER_BIN:-$ROOT/target/debug/tether}"
export TETHER_TRAY_BIN="${TETHER_TRAY_BIN:-$ROOT/target/tray/release/tether-tray}"

exec "$ROOT/scripts/tray-session.sh" python3 "$ROOT/tests/tray/measure.py"
