#!/usr/bin/env bash
# Runs the desktop app on Debian/Ubuntu: installs the build packages when missing, then builds
# and opens the window (bundled gateway; settings in the app's config directory).
# Needs Rust (https://rustup.rs). Extra arguments go to cargo, e.g. --release.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-apt.sh

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust first (https://rustup.rs), then run this again." >&2
  exit 1
fi
ensure_packages "${APP_BUILD_PACKAGES[@]}"
exec cargo run -p recorder --bin interview-recorder "$@"
