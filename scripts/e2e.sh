#!/usr/bin/env bash
# The desktop app's WebDriver end-to-end test, from a fresh Debian/Ubuntu machine:
# installs what is missing (WebKitGTK, WebKitWebDriver, Xvfb, ImageMagick, tauri-driver),
# builds the app, and runs tests/webdriver.rs under Xvfb with an outer timeout.
# Artifacts (screenshots, driver logs): $CARGO_TARGET_DIR/e2e-artifacts (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-rust.sh

ensure_rust
ensure_packages "${APP_BUILD_PACKAGES[@]}" webkit2gtk-driver xvfb xauth imagemagick

# cargo install puts tauri-driver in rustup's bin directory, which ensure_rust put on PATH.
if ! command -v tauri-driver >/dev/null 2>&1; then
  cargo install tauri-driver --locked --version 2.1.0
fi

cargo build -p recorder --bin interview-recorder
cargo test -p e2e --test webdriver --no-run

# The outer timeout catches a hung driver; --kill-after ends whatever ignores TERM.
timeout --kill-after=20 "${E2E_TIMEOUT:-420}" \
  xvfb-run -a -s "-screen 0 1280x900x24" \
  cargo test -p e2e --test webdriver -- --nocapture --test-threads=1 </dev/null
