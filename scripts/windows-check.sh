#!/usr/bin/env bash
# `cargo check` of the recorder (engine, CLI and the desktop app) for Windows, so Linux-only
# code cannot slip in. Installs the rustup target and the MinGW toolchain when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-rust.sh

ensure_rust
# Also named in rust-toolchain.toml; added here when the toolchain came without it.
TARGET=x86_64-pc-windows-gnu
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
ensure_packages gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64

cargo check -p recorder --target "$TARGET" --bins --lib
