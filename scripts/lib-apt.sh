# Sourced by the scripts here: install Debian/Ubuntu packages that are missing, once.
# Usage: ensure_packages pkg...   (uses sudo when not root; apt-get update only if needed)

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
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "installing ${missing[*]}" >&2
  # Install straight away when the lists are fresh enough; update them and retry otherwise.
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
    "${sudo[@]}" apt-get update >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
  fi
}

# Build packages of the desktop app (WebKitGTK for the window, ALSA for cpal).
APP_BUILD_PACKAGES=(pkg-config libasound2-dev libwebkit2gtk-4.1-dev)
