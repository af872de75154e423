#!/usr/bin/env bash
# Prints the desktop app's RSS and CPU, idle and while it records a tone (sampled from /proc),
# with the window under Xvfb and Start clicked by xdotool. A measurement, not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-rust.sh
ensure_rust
ensure_packages "${APP_BUILD_PACKAGES[@]}" xvfb xauth xdotool
cargo build -p recorder --bin interview-recorder
cargo build -p e2e --example app_usage
timeout --kill-after=20 300 xvfb-run -a -s "-screen 0 1280x900x24" \
  cargo run -q -p e2e --example app_usage </dev/null
