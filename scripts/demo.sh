#!/usr/bin/env bash
# Builds Tether and runs `tether demo`: a daemon, a built-in demo provider and the companion,
# all on loopback, with a scripted revocation so you can watch the whole recovery loop.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
cargo build --quiet --bin tether
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  cargo build --quiet -p tether-tray || echo "note: the tray app did not build; the demo runs in the terminal"
fi
exec target/debug/tether demo "$@"
