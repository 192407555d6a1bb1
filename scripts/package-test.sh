#!/usr/bin/env bash
# Installs the packages from scripts/package.sh on this machine and runs what they installed,
# as an operator would: the daemon as its own user from /etc/tether/agent.toml (through
# systemd when it runs, started directly otherwise), paired by the installed `tether`; the
# installed tray app under Xvfb, where `xdg-open 'tether://pair?...'` must open its pair
# dialog pre-filled (tests/tray/package_deep_link.py checks it over WebDriver and takes a
# screenshot); then `dpkg -r` must leave the vault in place and `dpkg --purge` must remove
# only the config. Needs root (CI runs it as root on a Debian machine).
#
#   scripts/package.sh && scripts/package-test.sh
#   TETHER_PACKAGE_TEST_DAEMON_ONLY=1 scripts/package-test.sh   # a server: no tray package
#
# It leaves the machine as it found it: what the packages made is removed at the end
# unless it was there before.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[[ "$(id -u)" -eq 0 ]] || { echo "scripts/package-test.sh installs packages: run it as root" >&2; exit 2; }
say() { echo "[package-test] $*"; }
fail() { echo "[package-test] FAILED: $*" >&2; exit 1; }

daemon_deb="$(ls target/package/tether_*.deb)"
daemon_only="${TETHER_PACKAGE_TEST_DAEMON_ONLY:-}"
tray_deb=""
[[ -n "$daemon_only" ]] || tray_deb="$(ls target/package/tether-tray_*.deb)"
WORK="$(mktemp -d /tmp/tether-package-test.XXXXXX)"
had_user=0; getent passwd tether >/dev/null && had_user=1
had_state=0; [[ -e /var/lib/tether ]] && had_state=1
daemon_pid=""
cleanup() {
    [[ -n "$daemon_pid" ]] && kill "$daemon_pid" 2>/dev/null || true
    if [[ -d /run/systemd/system ]]; then systemctl stop tether-agent 2>/dev/null || true; fi
    dpkg --purge tether-tray tether >/dev/null 2>&1 || true
    if [[ "$had_state" -eq 0 ]]; then rm -rf /var/lib/tether /var/backups/tether; fi
    if [[ "$had_user" -eq 0 ]] && getent passwd tether >/dev/null; then userdel tether || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- install ---------------------------------------------------------------------------
say "dpkg -i $daemon_deb $tray_deb"
dpkg -i "$daemon_deb" $tray_deb
getent passwd tether >/dev/null || fail "postinst made no tether user"
[[ "$(stat -c '%a %U %G' /var/lib/tether)" == "700 tether tether" ]] || fail "/var/lib/tether is $(stat -c '%a %U %G' /var/lib/tether)"
[[ "$(stat -c '%a %U %G' /etc/tether/agent.toml)" == "640 root tether" ]] || fail "/etc/tether/agent.toml is $(stat -c '%a %U %G' /etc/tether/agent.toml)"
dpkg-query -W -f='${Conffiles}\n' tether | grep -q '/etc/tether/agent.toml' || fail "agent.toml is not a conffile"
grep -q '^LimitCORE=0' /usr/lib/systemd/system/tether-agent.service || fail "the unit has no LimitCORE=0"
grep -q '^ProtectHome=yes' /usr/lib/systemd/system/tether-agent.service || fail "the unit does not hide /home"
if [[ -z "$daemon_only" ]]; then
    grep -q 'x-scheme-handler/tether' /usr/share/applications/tether-tray.desktop \
        || fail "the desktop entry does not claim tether://"
fi
say "installed: user tether, /var/lib/tether 0700, agent.toml conffile 0640 root:tether"

# systemd-analyze verify: the unit as installed (the binary it names must exist).
systemd-analyze verify /usr/lib/systemd/system/tether-agent.service
say "systemd-analyze verify: the unit is valid"

# --- configure with the operator's commands --------------------------------------------
# The example names a Google client secret file and a Slack webhook: make it a config that
# runs here and reaches nothing but loopback.
tether agent remove youtube --config /etc/tether/agent.toml
tether agent add bot --provider telegram --config /etc/tether/agent.toml
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
sed -i -e "s|^listen = .*|listen = \"127.0.0.1:$port\"|" \
       -e 's|^url = "https://hooks.slack.com/.*"|url = "http://127.0.0.1:9/hook"|' /etc/tether/agent.toml
[[ "$(stat -c '%a %U %G' /etc/tether/agent.toml)" == "640 root tether" ]] || fail "the edits changed agent.toml's mode"

# --- run the daemon under its own user ---------------------------------------------------
if [[ -d /run/systemd/system ]]; then
    systemctl start tether-agent
    say "started through systemd"
else
    # No systemd here (a container): as the unit would, as user tether, no core dumps.
    # setpriv execs (runuser would stay as the parent and keep SIGHUP to itself).
    (ulimit -c 0; exec setpriv --reuid tether --regid tether --init-groups --reset-env \
        env TETHER_LOG=info tether agent serve --config /etc/tether/agent.toml) >"$WORK/daemon.log" 2>&1 &
    daemon_pid=$!
    say "no systemd: started directly as user tether (pid $daemon_pid)"
fi
for _ in $(seq 300); do
    curl -ksf https://127.0.0.1:$port/healthz >/dev/null 2>&1 && break
    sleep 0.1
done
curl -ksf https://127.0.0.1:$port/healthz >/dev/null || { cat "$WORK/daemon.log" >&2 || true; fail "the daemon does not answer"; }
pgrep -u tether -f '^tether agent serve --config /etc/tether/agent.toml' >/dev/null \
    || fail "no daemon runs as user tether"
say "daemon answers on https://127.0.0.1:$port as user tether"

# Pair the installed companion CLI with it (pairing codes are made as the daemon's user,
# so the files they leave in its state directory stay its own).
pair_link() { runuser -u tether -- tether agent pair --no-qr --config /etc/tether/agent.toml | grep '^tether://pair?'; }
export TETHER_CONFIG_DIR="$WORK/companion" TETHER_SECRETS=file
tether pair "$(pair_link)"
status_rc=0; tether status >"$WORK/status" 2>&1 || status_rc=$?
grep -q 'studio' "$WORK/status" && grep -q 'bot' "$WORK/status" || { cat "$WORK/status"; fail "tether status does not show studio/bot"; }
say "the installed companion is paired (tether status exit $status_rc: bot has no token yet)"
unset TETHER_CONFIG_DIR TETHER_SECRETS

# SIGHUP: a credential added with the daemon running appears without a restart.
tether agent add bot2 --provider github-pat --config /etc/tether/agent.toml
if [[ -d /run/systemd/system ]]; then systemctl reload tether-agent; else kill -HUP "$daemon_pid"; fi
for _ in $(seq 100); do
    TETHER_CONFIG_DIR="$WORK/companion" TETHER_SECRETS=file tether status 2>&1 | grep -q bot2 && break
    sleep 0.1
done
TETHER_CONFIG_DIR="$WORK/companion" TETHER_SECRETS=file tether status 2>&1 | grep -q bot2 || fail "reload did not add bot2"
say "reload: bot2 added to the running daemon"

# --- the installed tray app and a tether:// link --------------------------------------
if [[ -z "$daemon_only" ]]; then
    TETHER_TRAY_BIN=/usr/bin/tether-tray PAIR_LINK="$(pair_link)" \
        scripts/tray-session.sh python3 tests/tray/package_deep_link.py
fi

# --- remove keeps the vault; purge asks nothing and removes only the config --------------
[[ -n "$daemon_pid" ]] && { kill "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=""; }
ls /var/lib/tether/tls-identity.pem >/dev/null || fail "no TLS identity in the state directory"
dpkg -r tether $([[ -n "$daemon_only" ]] || echo tether-tray)
[[ ! -e /usr/bin/tether ]] || fail "dpkg -r left /usr/bin/tether"
[[ -f /var/lib/tether/tls-identity.pem && -f /var/lib/tether/devices.json ]] || fail "dpkg -r removed the daemon's state"
[[ -d /var/lib/tether/vault && -d /var/backups/tether ]] || fail "dpkg -r removed the vault"
[[ -f /etc/tether/agent.toml ]] || fail "dpkg -r removed the config (a conffile stays until purge)"
say "dpkg -r: program gone; vault, identity, devices and config kept"
dpkg --purge tether </dev/null
[[ ! -e /etc/tether/agent.toml ]] || fail "purge left agent.toml"
[[ -d /var/lib/tether/vault ]] || fail "purge removed the vault"
say "dpkg --purge: config gone, vault kept (/var/lib/tether, /var/backups/tether)"
