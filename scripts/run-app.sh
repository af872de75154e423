#!/usr/bin/env bash
# Runs the desktop app on Debian/Ubuntu: checks for Rust (rustup; it says how to install it when
# missing), installs the build packages when missing (sudo when not root), then builds and opens
# the window (bundled gateway; settings in the app's config directory).
# Builds go to the project's target/ unless CARGO_TARGET_DIR says otherwise.
# Extra arguments go to cargo, e.g. --release.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-rust.sh

ensure_rust
# libayatana-appindicator3-1: the tray icon (the app runs without it, with no tray).
ensure_packages "${APP_BUILD_PACKAGES[@]}" libayatana-appindicator3-1
exec cargo run -p recorder --bin interview-recorder "$@"
