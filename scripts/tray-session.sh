#!/usr/bin/env bash
# Runs a command in the headless desktop session the tray app's GUI checks need: a private
# D-Bus session bus (dbus-run-session), Xvfb on the first free display, per-run XDG
# directories, an unlocked gnome-keyring and a real notification daemon (dunst). Used by tray-e2e.sh and
# tray-measure.sh:   scripts/tray-session.sh COMMAND [ARGS...]
set -euo pipefail

if [[ -z "${TETHER_TRAY_IN_SESSION:-}" ]]; then
    # A private bus, so the tray item, notifications and the single-instance name never
    # meet anything of the user's.
    export TETHER_TRAY_IN_SESSION=1
    exec dbus-run-session -- "$0" "$@"
fi

WORK="$(mktemp -d /tmp/tether-tray-session.XXXXXX)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    # A web process of the app may still be writing its shader cache for a moment.
    for _ in 1 2 3 4 5; do rm -rf "$WORK" 2>/dev/null && break; sleep 0.5; done
    rm -rf "$WORK" || true
}
trap cleanup EXIT

# A display: the first free :N that comes up (another session may take one meanwhile).
for n in $(seq 90 130); do
    [[ -e /tmp/.X11-unix/X$n || -e /tmp/.X$n-lock ]] && continue
    Xvfb ":$n" -screen 0 1024x700x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
    xpid=$!
    export DISPLAY=":$n"
    for _ in $(seq 100); do
        xdpyinfo >/dev/null 2>&1 && break
        kill -0 "$xpid" 2>/dev/null || break
        sleep 0.1
    done
    if xdpyinfo >/dev/null 2>&1; then
        PIDS+=("$xpid")
        break
    fi
    kill "$xpid" 2>/dev/null || true
    unset DISPLAY
done
[[ -n "${DISPLAY:-}" ]] || { echo "Xvfb did not start: $(cat "$WORK/xvfb.log")" >&2; exit 1; }

# Per-run XDG dirs (HOME stays: rustup and npm need it); no accessibility bus.
mkdir -p "$WORK/run" "$WORK/config" "$WORK/data" "$WORK/cache"
chmod 700 "$WORK/run"
export XDG_RUNTIME_DIR="$WORK/run" XDG_CONFIG_HOME="$WORK/config" XDG_DATA_HOME="$WORK/data" XDG_CACHE_HOME="$WORK/cache"
export NO_AT_BRIDGE=1

# The Secret Service, unlocked with a throwaway password (no prompt), for device tokens.
if command -v gnome-keyring-daemon >/dev/null; then
    eval "$(echo -n tether-test | gnome-keyring-daemon --unlock --components=secrets)"
    export GNOME_KEYRING_CONTROL 2>/dev/null || true
fi

# A real notification daemon on the session bus, polled until it owns its name.
dunst >"$WORK/dunst.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
        --method org.freedesktop.DBus.NameHasOwner org.freedesktop.Notifications 2>/dev/null | grep -q true && break
    sleep 0.1
done

"$@"
