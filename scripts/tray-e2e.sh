#!/usr/bin/env bash
# The tray app's end-to-end tests: builds the daemon and the tray app (debug), then runs,
# each in its own headless desktop session (scripts/tray-session.sh: private D-Bus session,
# Xvfb, dunst):
# - tests/tray/webdriver_e2e.py drives the real app through WebDriver (tauri-driver +
#   WebKitWebDriver) against `tether agent serve` and the oidc-provider fixture, and reads
#   the tray over D-Bus;
# - tests/tray/reauth_window_e2e.py: a window reloaded mid re-authorization still shows the
#   running step and Cancel (which works); "Sign in with a code" starts the device-code
#   flow, whose code a scripted phone enters;
# - tests/tray/paste_window_e2e.py: a pasted token of another bot is refused in the dialog,
#   which then offers the on-purpose replacement (a loopback Bot API stand-in);
# - tests/tray/challenge_e2e.py: a stand-in session agent posts three QR codes; each is
#   read back from a screenshot of the window (zbarimg), the notification is checked on
#   dunst, and the state returns to ok when the agent resolves it;
# - tests/tray/demo_tray.py runs `tether demo` in tray mode and drives it through the tray
#   menu over D-Bus.
# Screenshots go to tests/artifacts/.
#
#   scripts/tray-e2e.sh                    # from the repository root, any shell
#
# Needs: xvfb x11-utils imagemagick dbus libglib2.0-bin dunst webkit2gtk-driver zbar-tools
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

"$ROOT/scripts/tray-session.sh" python3 "$ROOT/tests/tray/webdriver_e2e.py"
# Re-authorizations in the window: a reload mid-flow still shows the running step and
# Cancel; "Sign in with a code" starts the daemon's device-code flow.
"$ROOT/scripts/tray-session.sh" python3 "$ROOT/tests/tray/reauth_window_e2e.py"
# Pasting a token in the window: another bot's token is refused naming both bots, and
# replaces the stored one only when the owner ticks "another account on purpose".
"$ROOT/scripts/tray-session.sh" python3 "$ROOT/tests/tray/paste_window_e2e.py"
# An agent's challenge: QR codes posted by a stand-in session agent, read back from
# screenshots of the window with zbarimg (zbar-tools).
"$ROOT/scripts/tray-session.sh" python3 "$ROOT/tests/tray/challenge_e2e.py"

# `tether demo` starts the `tether-tray` that sits next to its own executable (symlinks
# resolved), so when the two were built into different target dirs the demo runs from a
# directory holding both.
if [[ "$(dirname "$(realpath "$TETHER_BIN")")/tether-tray" -ef "$TETHER_TRAY_BIN" ]]; then
    DEMO_BIN="$TETHER_BIN"
else
    DEMO_DIR="$(mktemp -d /tmp/tether-demo-bin.XXXXXX)"
    trap 'rm -rf "$DEMO_DIR"' EXIT
    ln "$TETHER_BIN" "$DEMO_DIR/tether" 2>/dev/null || cp "$TETHER_BIN" "$DEMO_DIR/tether"
    ln -s "$(realpath "$TETHER_TRAY_BIN")" "$DEMO_DIR/tether-tray"
    DEMO_BIN="$DEMO_DIR/tether"
fi
TETHER_BIN="$DEMO_BIN" "$ROOT/scripts/tray-session.sh" python3 "$ROOT/tests/tray/demo_tray.py"
