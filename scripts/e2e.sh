#!/usr/bin/env bash
# The desktop app's WebDriver end-to-end tests, from a fresh Debian/Ubuntu machine:
# installs what is missing (WebKitGTK, WebKitWebDriver, Xvfb, ImageMagick, tauri-driver, the
# tray's libayatana-appindicator3, a D-Bus session bus for the single-instance check, the
# notification and tray tests, xdotool for the hotkey test, PulseAudio for the unplugged
# microphone, axe-core for the accessibility audit), builds the app, and runs
# tests/webdriver.rs and tests/desktop.rs under Xvfb and a private session bus, with an outer
# timeout.
# Artifacts (screenshots, driver logs): $CARGO_TARGET_DIR/e2e-artifacts (default target/).
# UPDATE_SCREENSHOT=1 also refreshes the pictures in docs/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-rust.sh

ensure_rust
# xdotool: tests/desktop.rs presses the global hotkey with it (XTEST), as a keyboard would.
# pulseaudio, pulseaudio-utils (pactl) and libasound2-plugins (ALSA's PulseAudio plugin): the
# unplugged-microphone test runs a sound server of its own and pulls its microphone out.
ensure_packages "${APP_BUILD_PACKAGES[@]}" webkit2gtk-driver xvfb xauth imagemagick \
  libayatana-appindicator3-1 dbus-bin dbus-daemon dbus-session-bus-common xdotool \
  pulseaudio pulseaudio-utils libasound2-plugins

# axe-core, the accessibility audit tests/desktop.rs runs in the page: pinned, fetched from the
# npm registry once (npm checks the tarball's integrity) and kept in the cache with its licence
# (MPL-2.0, in the package).
AXE_VERSION=4.11.0
cache=/var/cache/interview-recorder/tools
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/interview-recorder/tools
  mkdir -p "$cache"
fi
axe_dir="$cache/axe-core-$AXE_VERSION"
if [ ! -f "$axe_dir/package/axe.min.js" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    ensure_packages nodejs npm
  fi
  echo "fetching axe-core $AXE_VERSION into $axe_dir" >&2
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent --loglevel=error "axe-core@$AXE_VERSION" >/dev/null)
  mkdir -p "$axe_dir.partial"
  tar -xzf "$tmp/axe-core-$AXE_VERSION.tgz" -C "$axe_dir.partial"
  rm -rf "$tmp" "$axe_dir"
  mv "$axe_dir.partial" "$axe_dir"
fi
export AXE_CORE_JS="$axe_dir/package/axe.min.js"

# cargo install puts tauri-driver in rustup's bin directory, which ensure_rust put on PATH.
if ! command -v tauri-driver >/dev/null 2>&1; then
  cargo install tauri-driver --locked --version 2.1.0
fi

cargo build -p recorder --bin interview-recorder
cargo test -p e2e --test webdriver --test desktop --no-run

# The outer timeout catches a hung driver; --kill-after ends whatever ignores TERM.
# dbus-run-session: a private session bus for the run (the single-instance plugin meets the
# first instance there; notifications and the tray ask it too), gone with the run.
timeout --kill-after=20 "${E2E_TIMEOUT:-720}" \
  dbus-run-session -- \
  xvfb-run -a -s "-screen 0 1280x900x24" \
  cargo test -p e2e --test webdriver --test desktop -- --nocapture --test-threads=1 </dev/null
