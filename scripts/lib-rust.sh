# shellcheck shell=bash
# Sourced by the scripts that build: make sure Rust comes from rustup, which reads the
# workspace's rust-toolchain.toml (channel, components, the Windows target), and that a C
# toolchain is there for the crates that compile C.
# Usage: ensure_rust   (returns 1 with what to do when rustup is missing)
#
# Debian/Ubuntu's own `cargo` package does not count: it is older than the stable Rust this
# workspace builds with, and it ignores rust-toolchain.toml. We do not install rustup ourselves
# (its installer changes the user's shell profile); we say how.

# shellcheck source=scripts/lib-apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib-apt.sh"

RUSTUP_INSTALL_HINT="install Rust with rustup (https://rustup.rs):
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y
then open a new terminal (or run: . \"\$HOME/.cargo/env\") and run this again."

ensure_rust() {
  # rustup's installer puts cargo, rustc and rustup here; a shell that has not read the
  # profile since then (or a CI step) may not have it on PATH yet.
  # `cargo install` (tauri-driver, in e2e.sh) puts its programs there too.
  local cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
  case ":$PATH:" in
    *":$cargo_bin:"*) ;;
    *) export PATH="$cargo_bin:$PATH" ;;
  esac

  if ! command -v rustup >/dev/null 2>&1; then
    if command -v cargo >/dev/null 2>&1; then
      echo "found $(command -v cargo) ($(cargo --version 2>/dev/null || echo 'unknown version')) but no rustup:" >&2
      echo "this project needs the stable Rust named in rust-toolchain.toml, which a distribution's cargo does not provide." >&2
    else
      echo "Rust (cargo) is not installed." >&2
    fi
    echo "$RUSTUP_INSTALL_HINT" >&2
    return 1
  fi

  local cargo_path
  cargo_path=$(command -v cargo || true)
  if [ -z "$cargo_path" ]; then
    echo "rustup is installed but cargo is not on PATH (rustup puts it in $cargo_bin)." >&2
    return 1
  fi
  if command -v dpkg-query >/dev/null 2>&1 \
    && dpkg-query -S "$(readlink -f "$cargo_path")" 2>/dev/null | grep -q '^cargo:'; then
    echo "$cargo_path is Debian/Ubuntu's cargo package, found before rustup's cargo on PATH." >&2
    echo "Put rustup's directory first (export PATH=\"$cargo_bin:\$PATH\") or remove it: apt-get remove cargo rustc" >&2
    return 1
  fi

  # The first cargo call in the workspace makes rustup install the toolchain rust-toolchain.toml
  # names when it is missing; components it lists are added here if the toolchain came without.
  cargo --version >&2
  local installed
  installed=$(rustup component list --installed)
  local component
  for component in rustfmt clippy; do
    grep -q "^$component-" <<<"$installed" || rustup component add "$component"
  done

  ensure_packages build-essential
}
