#!/usr/bin/env bash
# Installs the system packages, npm packages and Python packages that Tether's build,
# demo and tests need on a Debian/Ubuntu machine. Safe to run again: it skips what is there.
#   scripts/install-deps.sh build   # build + run the CLI and tray app
#   scripts/install-deps.sh test    # everything the test suite needs
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-test}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

build_pkgs=(build-essential pkg-config libwebkit2gtk-4.1-dev libayatana-appindicator3-1 libayatana-appindicator3-dev curl ca-certificates)
test_pkgs=(xvfb xauth x11-utils xdotool imagemagick dbus dbus-bin dbus-x11 libglib2.0-bin dunst gnome-keyring libsecret-tools
           webkit2gtk-driver chromium chromium-driver nodejs npm python3 python3-pip zbar-tools)

pkgs=("${build_pkgs[@]}")
if [ "$what" = "test" ]; then pkgs+=("${test_pkgs[@]}"); fi

missing=()
for p in "${pkgs[@]}"; do
  # node and npm may come from elsewhere (nvm, NodeSource): accept the commands.
  case "$p" in
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
    python3) command -v python3 >/dev/null && continue ;;
    python3-pip) python3 -m pip --version >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "error: cargo not found; install Rust with rustup (https://rustup.rs) and run this again" >&2
  exit 1
fi

if [ "$what" = "test" ]; then
  # The real OAuth server for the end-to-end tests, pinned by the lock file.
  (cd tests/fixtures/oidc-provider && npm ci --no-audit --no-fund --loglevel=error)
  # google-auth reads the rendered token file; aiosmtpd is the real SMTP server for alert tests.
  python3 -m pip install --quiet --disable-pip-version-check google-auth aiosmtpd 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages google-auth aiosmtpd
  if ! command -v tauri-driver >/dev/null; then
    cargo install tauri-driver --locked --quiet
  fi
  # CI checks dependency bans, licenses and sources with it (deny.toml).
  if ! cargo deny --version >/dev/null 2>&1; then
    cargo install cargo-deny --locked --quiet
  fi
fi
