#!/usr/bin/env bash
# Every check of the workspace, in the order a reviewer would ask: formatting, lints, then all
# unit, integration and end-to-end tests. The README's test command; .ci/run calls it after
# installing what the tests need (see there: apt packages, moto's S3 server).
set -euo pipefail
cd "$(dirname "$0")/.."

# One shared build directory for developers and CI (the machine keeps it between runs).
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/interview-recorder/target}

# strace: gateway/tests/durability.rs counts the gateway's sync calls with it (a no-op when
# present; uses sudo when not root).
. scripts/lib-apt.sh
ensure_packages strace

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# --no-fail-fast: every test binary runs and reports, not only those before the first failure.
# The WebDriver test needs a display and tauri-driver; it runs below, under Xvfb. (A plain
# `cargo test --workspace` without them fails it loudly rather than skipping.)
cargo test --workspace --exclude e2e --no-fail-fast

# The recorder and the app must keep building for Windows.
bash scripts/windows-check.sh

# The real app window under Xvfb, driven through WebDriver.
bash scripts/e2e.sh
