#!/usr/bin/env bash
# Inside `dbus-run-session`: starts Xvfb, the keyring and the notification server, then
# runs the tests. Everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

session_dir="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$session_dir"
}
trap cleanup EXIT

export XDG_RUNTIME_DIR="$session_dir/run" XDG_DATA_HOME="$session_dir/data"
export XDG_CACHE_HOME="$session_dir/cache" XDG_CONFIG_HOME="$session_dir/config"
mkdir -p "$XDG_RUNTIME_DIR" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_CONFIG_HOME"
chmod 700 "$XDG_RUNTIME_DIR"
export NO_AT_BRIDGE=1

# A virtual display: pick a free number and wait until it answers.
for n in $(seq 90 120); do
  if [ ! -e "/tmp/.X11-unix/X$n" ] && [ ! -e "/tmp/.X$n-lock" ]; then display=":$n"; break; fi
done
Xvfb "$display" -screen 0 1024x700x24 -nolisten tcp >"$session_dir/xvfb.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do xdpyinfo -display "$display" >/dev/null 2>&1 && break; sleep 0.1; done
xdpyinfo -display "$display" >/dev/null || { echo "Xvfb did not start" >&2; cat "$session_dir/xvfb.log" >&2; exit 1; }
export DISPLAY="$display"

# The Secret Service, unlocked with a throwaway password (no prompt).
eval "$(echo -n tether-test | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL SSH_AUTH_SOCK 2>/dev/null || true

# A real notification server that supports actions.
dunst >"$session_dir/dunst.log" 2>&1 &
pids+=($!)
# Ask whether the name is owned (asking the service itself would make the bus start a
# second, display-less dunst by D-Bus activation).
for _ in $(seq 1 100); do
  gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
    --method org.freedesktop.DBus.NameHasOwner org.freedesktop.Notifications 2>/dev/null | grep -q true && break
  sleep 0.1
done

# Strict: a test that needs a missing system part fails instead of skipping. Every skip is
# also written to $TETHER_TEST_SKIPS (by `require!`, tests/util/mod.rs), and any line there
# fails the run below, naming the test and the reason, even if the test itself passed.
export TETHER_TEST_STRICT=1
export TETHER_TEST_SKIPS="$session_dir/skips"
: >"$TETHER_TEST_SKIPS"
export RUST_BACKTRACE=1

status=0
run() { "$@" || status=$?; }
if [ "$#" -eq 0 ]; then
  run cargo test --workspace --exclude tether-tray -- --test-threads=4 --skip recovery::
  # The headline recovery test on its own, uncaptured, so its step timings are printed.
  [ "$status" -ne 0 ] || run cargo test --test tests recovery:: -- --nocapture
else
  # A filter from the command line: just those tests.
  run cargo test --workspace --exclude tether-tray -- --test-threads=4 "$@"
fi
# TETHER_CORE_ONLY=1 runs only the core's tests (handy while working on the core).
if [ "$status" -eq 0 ] && [ -z "${TETHER_CORE_ONLY:-}" ]; then
  run cargo test -p tether-tray
  if [ "$status" -eq 0 ] && [ -x scripts/tray-e2e.sh ]; then run scripts/tray-e2e.sh; fi
fi

if [ -s "$TETHER_TEST_SKIPS" ]; then
  echo >&2
  echo "FAILED: $(wc -l <"$TETHER_TEST_SKIPS") test(s) skipped; this run may skip nothing:" >&2
  sed 's/^/  /' "$TETHER_TEST_SKIPS" >&2
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
