# shellcheck shell=bash
# Sourced by the scripts here: install Debian/Ubuntu packages that are missing, once.
# Usage: ensure_packages pkg...   (uses sudo when not root; apt-get update only if needed;
# says which packages and the command to run when neither root nor sudo is available)

ensure_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing packages: ${missing[*]} (and no apt-get here; install them with your package manager)" >&2
    return 1
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "missing packages: ${missing[*]}" >&2
      echo "installing them needs root and sudo is not installed: as root, run" >&2
      echo "  apt-get install ${missing[*]}" >&2
      echo "then run this again." >&2
      return 1
    fi
    sudo=(sudo)
    echo "installing ${missing[*]} (needs root: asking sudo)" >&2
  else
    echo "installing ${missing[*]}" >&2
  fi
  # Install straight away when the lists are fresh enough; update them and retry otherwise.
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
    "${sudo[@]}" apt-get update >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
  fi
}

# Build packages of the desktop app: a C toolchain (build-essential: crates that compile C, such
# as SQLite's), pkg-config, WebKitGTK for the window, ALSA for cpal.
# shellcheck disable=SC2034 # used by the scripts that source this file
APP_BUILD_PACKAGES=(build-essential pkg-config libasound2-dev libwebkit2gtk-4.1-dev)
