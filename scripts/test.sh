#!/usr/bin/env bash
# Every check of the workspace, in the order a reviewer would ask: formatting, lints, then all
# unit, integration and end-to-end tests. The README's test command, and what .ci/run calls.
# It installs or checks what it needs itself: Rust through rustup (rust-toolchain.toml), the
# Debian/Ubuntu build packages (sudo when not root), and moto's S3 server in a venv.
#
# Builds go to the project's target/ unless CARGO_TARGET_DIR says otherwise (.ci/run sets its own).
# REQUIRE_S3=1 (set by .ci/run) makes a missing S3 server a failure instead of a skipped test.
# TEST_VENV: where the venv for test tools lives
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/interview-recorder/venv).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib-rust.sh
ensure_rust
# strace: gateway/tests/durability.rs counts the gateway's sync calls with it.
ensure_packages "${APP_BUILD_PACKAGES[@]}" strace

# --- moto's S3 server (gateway/tests/s3.rs starts `moto_server` from PATH) ---------------------
# In a venv of its own: Debian and Ubuntu refuse pip installs into the system Python (PEP 668),
# and a test tool has no business there. Made once; later runs find it and download nothing.
TEST_VENV=${TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/interview-recorder/venv}
ensure_moto_server() {
  if [ ! -x "$TEST_VENV/bin/moto_server" ]; then
    if command -v moto_server >/dev/null 2>&1; then
      echo "moto_server: using $(command -v moto_server)" >&2
      return 0
    fi
    # python3-venv: Debian's python3 has no venv/ensurepip without it.
    ensure_packages python3 python3-venv || return 1
    echo "installing moto's S3 server into $TEST_VENV" >&2
    python3 -m venv "$TEST_VENV" || return 1
    "$TEST_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      'moto[server]>=5,<6' || return 1
  fi
  # Only moto_server goes on PATH, not the venv's python and pip: the tests see the system's.
  mkdir -p "$TEST_VENV/test-bin" || return 1
  ln -sf ../bin/moto_server "$TEST_VENV/test-bin/moto_server" || return 1
  export PATH="$TEST_VENV/test-bin:$PATH"
  echo "moto_server: $TEST_VENV/bin/moto_server" >&2
}
if ! ensure_moto_server; then
  if [ -n "${REQUIRE_S3:-}" ] && [ "$REQUIRE_S3" != 0 ]; then
    echo "REQUIRE_S3 is set and moto's S3 server could not be installed (see above)" >&2
    exit 1
  fi
  echo "warning: moto's S3 server could not be installed; gateway/tests/s3.rs will be skipped" >&2
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# --no-fail-fast: every test binary runs and reports, not only those before the first failure.
# The WebDriver test needs a display and tauri-driver; it runs below, under Xvfb. (A plain
# `cargo test --workspace` without them fails it loudly rather than skipping.)
cargo test --workspace --exclude e2e --no-fail-fast

# The recorder and the app must keep building for Windows.
bash scripts/windows-check.sh

# The engine and the CLI build without the app, so without the gateway (SQLite, axum, S3).
cargo clippy -p recorder --no-default-features --all-targets -- -D warnings
if cargo tree -p recorder --no-default-features -e normal | grep -qE ' (gateway|rusqlite|axum|object_store) v'; then
  echo "the recorder engine without the app must not depend on the gateway" >&2
  exit 1
fi
# The wire contract and the session core compile for Cloudflare Workers (wasm32). The target comes from rustup; a
# machine that cannot fetch it says so and skips this one check.
if rustup target list --installed | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown; then
  cargo check -p contract -p session-core --target wasm32-unknown-unknown
else
  echo "SKIPPED: the wasm32-unknown-unknown target could not be installed; contract and session-core not checked for wasm32" >&2
fi

# The edge host (edge/, Cloudflare Workers + Durable Objects + R2): the worker built with
# worker-build and the shared contract suite (gateway/tests/contract.rs) run against it under
# `wrangler dev --local`, a restart of wrangler included. Its tools (worker-build,
# wasm-bindgen-cli, wrangler) are installed once into the cache by the script itself.
bash scripts/edge.sh

# Coverage-guided fuzzing of what strangers send the gateway (fuzz/): each target for a bounded
# time from its committed seeds; a crash fails the run and names the input.
FUZZ_SECONDS=${FUZZ_SECONDS:-30} bash scripts/fuzz.sh

# The real app window under Xvfb, driven through WebDriver.
bash scripts/e2e.sh

# The Linux installer: the app's .deb built with the Tauri CLI from the debug build above, and
# checked (binary, desktop entry, icons, Depends). The AppImage and the macOS and Windows
# installers are built on hosted runners (.github/workflows/bundles.yml).
bash scripts/bundle.sh
