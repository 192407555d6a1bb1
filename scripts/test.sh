#!/usr/bin/env bash
# Runs Tether's whole test suite the way CI does: installs what the tests need, then runs
# every test inside a private D-Bus session with a virtual display, a notification server
# and an unlocked keyring, so the desktop parts are tested for real.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
exec dbus-run-session -- scripts/test-session.sh "$@"
