#!/usr/bin/env bash
# Builds the two Debian packages into target/package/ and prints their sizes:
# - tether_VERSION_ARCH.deb: the daemon and CLI (cargo-deb; [package.metadata.deb] in
#   Cargo.toml, maintainer scripts in dist/debian/), with /etc/tether/agent.toml as a
#   conffile written by `tether agent init`;
# - tether-tray_VERSION_ARCH.deb: the tray app (Tauri's bundler; src-tauri/tauri.deb.json),
#   with its desktop entry, icons and the tether:// scheme.
#
# CI packages the debug binaries the tests already built (no second compile):
#   scripts/package.sh
# A release build instead compiles optimised binaries first and packages those:
#   TETHER_PACKAGE_PROFILE=release scripts/package.sh
# (cargo build --release --bin tether && cargo build --release -p tether-tray, then the
# same packaging with cargo-deb's release profile and `tauri bundle` without --debug.)
#
# Needs cargo-deb and Tauri's CLI: scripts/install-deps.sh package.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
profile="${TETHER_PACKAGE_PROFILE:-debug}"
out="$ROOT/target/package"
mkdir -p "$out"
rm -f "$out"/*.deb

case "$profile" in
    debug)
        cargo_flags=()
        deb_profile=(--profile dev)
        tauri_flags=(--debug)
        dir=debug
        ;;
    release)
        cargo_flags=(--release)
        deb_profile=()
        tauri_flags=()
        dir=release
        ;;
    *) echo "TETHER_PACKAGE_PROFILE must be debug or release, not $profile" >&2; exit 2 ;;
esac

# Up to date, or built now: a no-op right after the tests.
cargo build "${cargo_flags[@]}" --bin tether
cargo build "${cargo_flags[@]}" -p tether-tray

# The conffile is exactly what `tether agent init` writes (a commented example).
"target/$dir/tether" agent init --force --config "$out/agent.toml" >/dev/null

# cargo-deb names target/release/ in assets; with --profile it reads the profile's dir.
cargo deb "${deb_profile[@]}" --no-build --fast --output "$out/" >/dev/null

# The tray binary is already built: `tauri bundle` only packages it.
# Tauri's CLI from the npm registry (tools/tauri-cli, an exact version): the same
# program as `cargo install tauri-cli`, without a twenty-minute build on a small machine.
tauri="$ROOT/tools/tauri-cli/node_modules/.bin/tauri"
(cd src-tauri && "$tauri" bundle "${tauri_flags[@]}" --bundles deb --config tauri.deb.json >/dev/null)
cp "target/$dir/bundle/deb/"tether-tray_*.deb "$out/"

echo "packages ($profile binaries):"
for deb in "$out"/*.deb; do
    printf '  %-40s %6s KiB (installed %s KiB)\n' "$(basename "$deb")" \
        "$(( $(stat -c %s "$deb") / 1024 ))" "$(dpkg-deb -f "$deb" Installed-Size)"
done
