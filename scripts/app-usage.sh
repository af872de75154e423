#!/usr/bin/env bash
# Prints the desktop app's RSS and CPU while it records a tone (20 s sampled from /proc),
# with the window under Xvfb and driven through WebDriver. A measurement, not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
command -v tauri-driver >/dev/null 2>&1 || { echo "run scripts/e2e.sh once first (installs tauri-driver and packages)" >&2; exit 1; }
cargo build -p recorder --bin interview-recorder
cargo build -p e2e --example app_usage
timeout --kill-after=20 300 xvfb-run -a -s "-screen 0 1280x900x24" \
  cargo run -q -p e2e --example app_usage </dev/null
