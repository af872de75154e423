#!/usr/bin/env bash
# The Linux installer: builds the app's .deb with the Tauri CLI and checks what is inside it
# (the binary, the .desktop entry, the icons) and what it declares (Depends, Recommends).
#
#   bash scripts/bundle.sh             packages the debug build of the app (what the test command
#                                      runs: the binary scripts/e2e.sh built, no new compile)
#   bash scripts/bundle.sh --release   the installer to hand out: `tauri build`, an optimized
#                                      build of the app as the CLI makes it (with tauri's
#                                      custom-protocol feature, the production setting)
#
# The debug package is a check of the packaging (configuration, files, Depends), not a release:
# its binary is the tests' (no custom-protocol feature; assets are embedded all the same, as
# tauri.conf.json names no dev server) and carries line tables for backtraces.
#
# Only the .deb: an AppImage (also configured, `bundle.linux.appimage`) needs the CLI to
# download linuxdeploy and its plugins from GitHub, which CI here cannot reach. The hosted
# runners of .github/workflows/bundles.yml build it, and the macOS and Windows installers.
#
# The Tauri CLI comes from the npm registry (@tauri-apps/cli ships it prebuilt; building
# tauri-cli with cargo takes longer than the app), pinned to the release line of the tauri
# crate in Cargo.lock, installed once into /var/cache/interview-recorder/tools (else
# ${XDG_CACHE_HOME:-$HOME/.cache}/interview-recorder/tools). The app builds into
# CARGO_TARGET_DIR (default target/); the package lands in <target>/<profile>/bundle/deb/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-rust.sh

profile=debug
case "${1:-}" in
  "") ;;
  --release) profile=release ;;
  *) echo "usage: bash scripts/bundle.sh [--release]" >&2; exit 2 ;;
esac

# The CLI's major.minor follows the tauri crate's (2.11.x CLIs read the configuration of the
# 2.11 crates, through tauri-utils 2.9). Moving tauri to another minor means moving this too.
TAURI_CLI_VERSION=2.11.5

ensure_rust
# dpkg-deb comes with dpkg; the build needs what the app needs.
ensure_packages "${APP_BUILD_PACKAGES[@]}"

tauri_locked=$(awk '/^name = "tauri"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [ "${tauri_locked%.*}" != "${TAURI_CLI_VERSION%.*}" ]; then
  echo "Cargo.lock has tauri $tauri_locked but this script pins @tauri-apps/cli $TAURI_CLI_VERSION:" >&2
  echo "set TAURI_CLI_VERSION in $0 to the newest @tauri-apps/cli ${tauri_locked%.*}.x" >&2
  exit 1
fi

# --- the CLI, once ----------------------------------------------------------------------------
tools=/var/cache/interview-recorder/tools
if ! mkdir -p "$tools" 2>/dev/null || [ ! -w "$tools" ]; then
  tools=${XDG_CACHE_HOME:-$HOME/.cache}/interview-recorder/tools
  mkdir -p "$tools"
fi
cli_root="$tools/npm-tauri-cli-$TAURI_CLI_VERSION"
cli="$cli_root/node_modules/.bin/tauri"
if [ "$("$cli" --version 2>/dev/null)" != "tauri-cli $TAURI_CLI_VERSION" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    ensure_packages nodejs npm
  fi
  echo "installing @tauri-apps/cli $TAURI_CLI_VERSION into $cli_root" >&2
  mkdir -p "$cli_root"
  # The binary is the optional dependency for this platform (@tauri-apps/cli-linux-x64-gnu);
  # no install scripts are needed.
  npm install --prefix "$cli_root" --no-audit --no-fund --ignore-scripts --loglevel=error \
    "@tauri-apps/cli@$TAURI_CLI_VERSION" >&2
fi

# --- build ------------------------------------------------------------------------------------
target=${CARGO_TARGET_DIR:-target}
case "$target" in /*) ;; *) target="$(pwd)/$target" ;; esac
out="$target/$profile/bundle/deb"
rm -rf "$out"
start=$SECONDS
if [ "$profile" = debug ]; then
  # The same command as scripts/e2e.sh: nothing to do after it ran. `tauri bundle` then
  # packages that binary (it marks the bundle type in it) without building again.
  cargo build -p recorder --bin interview-recorder
  (cd src-tauri && CARGO_TARGET_DIR="$target" "$cli" bundle --debug --bundles deb --ci)
else
  (cd src-tauri && CARGO_TARGET_DIR="$target" "$cli" build --bundles deb --ci)
fi
echo "bundle: built in $((SECONDS - start)) s" >&2

# --- check ------------------------------------------------------------------------------------
shopt -s nullglob
debs=("$out"/*.deb)
if [ ${#debs[@]} -ne 1 ]; then
  echo "expected one .deb in $out, found ${#debs[@]}" >&2
  exit 1
fi
deb=${debs[0]}
fail() { echo "bundle check: $*" >&2; failed=1; }
failed=0

info=$(dpkg-deb --info "$deb")
contents=$(dpkg-deb --contents "$deb")
echo "$info"
echo "$contents"

# What the package says about itself, from tauri.conf.json.
field() { dpkg-deb --field "$deb" "$1"; }
[ "$(field Package)" = interview-recorder ] || fail "Package is '$(field Package)', not interview-recorder"
version=$(sed -n 's/^ *"version": "\(.*\)",$/\1/p' src-tauri/tauri.conf.json | head -n 1)
[ "$(field Version)" = "$version" ] || fail "Version is '$(field Version)', tauri.conf.json says '$version'"
[ "$(field Architecture)" = amd64 ] || fail "Architecture is '$(field Architecture)'"

# Depends: what the CLI adds for any Tauri app (the WebKitGTK and GTK runtimes) and what
# tauri.conf.json adds (ALSA, which the binary links; the GStreamer plugins the window's audio
# player needs to play WAV).
depends=$(field Depends)
for dep in libwebkit2gtk-4.1-0 libgtk-3-0 'libasound2 | libasound2t64' \
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good; do
  grep -qF "$dep" <<<"$depends" || fail "Depends lacks '$dep' (it is: $depends)"
done
# Recommends: the sound server for the meeting audio, the tray icon's library (loaded at run
# time, so not in the binary's links), xdg-open for "Open folder".
recommends=$(field Recommends)
for rec in 'pipewire-pulse | pulseaudio' libayatana-appindicator3-1 xdg-utils; do
  grep -qF "$rec" <<<"$recommends" || fail "Recommends lacks '$rec' (it is: $recommends)"
done
# Every shared library the binary links must come from a package the .deb depends on.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb --extract "$deb" "$tmp"
bin="$tmp/usr/bin/interview-recorder"
if [ ! -x "$bin" ]; then
  fail "no executable usr/bin/interview-recorder"
else
  for lib in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    case "$lib" in
      libwebkit2gtk-4.1.so.* | libjavascriptcoregtk-4.1.so.* | libsoup-3.0.so.*) ;; # libwebkit2gtk-4.1-0
      libgtk-3.so.* | libgdk-3.so.* | libgdk_pixbuf-2.0.so.* | libcairo.so.* | libpango*) ;; # libgtk-3-0 and its own
      libgobject-2.0.so.* | libglib-2.0.so.* | libgio-2.0.so.* | libdbus-1.so.*) ;; # under GTK
      libasound.so.*) ;; # libasound2
      libc.so.* | libm.so.* | libgcc_s.so.* | ld-linux-*) ;; # essential
      *) fail "the binary links $lib, which no Depends of the .deb provides for sure" ;;
    esac
  done
fi

# The desktop entry and the icons the launcher shows.
desktop=("$tmp"/usr/share/applications/*.desktop)
if [ ${#desktop[@]} -ne 1 ]; then
  fail "expected one .desktop file under usr/share/applications, found ${#desktop[@]}"
else
  entry=$(cat "${desktop[0]}")
  echo "--- ${desktop[0]#"$tmp"}"
  echo "$entry"
  for line in 'Name=Interview Recorder' 'Exec=interview-recorder' 'Icon=interview-recorder' \
    'Type=Application' 'Categories=Office;'; do
    grep -qxF "$line" <<<"$entry" || fail ".desktop lacks the line '$line'"
  done
  if command -v desktop-file-validate >/dev/null 2>&1; then
    desktop-file-validate "${desktop[0]}" || fail ".desktop does not validate"
  fi
fi
for size in 32x32 128x128 256x256@2; do
  [ -f "$tmp/usr/share/icons/hicolor/$size/apps/interview-recorder.png" ] \
    || fail "no $size icon (usr/share/icons/hicolor/$size/apps/interview-recorder.png)"
done

# Every Depends can be met here (a simulated install: nothing is changed).
if ! apt-get install --simulate --no-install-recommends "$deb" >"$tmp/simulate.log" 2>&1; then
  cat "$tmp/simulate.log" >&2
  fail "apt cannot meet the .deb's Depends on this system"
fi

if [ "$failed" != 0 ]; then
  echo "bundle check FAILED: $deb" >&2
  exit 1
fi
echo "bundle: $deb ($(du -h "$deb" | cut -f1)) checked in $((SECONDS - start)) s from the start of the build" >&2
