#!/usr/bin/env bash
# Issue 10's scale benchmark for a many-core machine, in one run: the physical limits first
# (page-cache and synced write bandwidth where the data goes), then `gateway bench` in
# `process` mode pinned to 1, 2, 4, … cores, frames in the log against one file per frame,
# thousands of real-time sessions, `power` mode, and the built-in speaker engine on speech.
#
#   bash scripts/scale-bench.sh [path/to/gateway] [speech.wav]
#
# The gateway binary defaults to a release build in $CARGO_TARGET_DIR (or target/). The WAV
# (16 kHz mono 16-bit, with speech) is optional; without it the engine-on run is skipped.
# Each step is bounded by a timeout so that one slow step still leaves the others' figures.
set -uo pipefail
cd "$(dirname "$0")/.."

gateway=${1:-${CARGO_TARGET_DIR:-target}/release/gateway}
speech=${2:-}
cores=$(nproc)
step_timeout=${STEP_TIMEOUT:-150}
work=${BENCH_DIR:-${TMPDIR:-/tmp}/scale-bench}
mkdir -p "$work"
export TMPDIR=$work
# Thousands of sessions: a socket each on both sides of the loopback.
ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null || true

# Counts of cores to pin the gateway to: 1, 2, 4, … up to all of them.
counts=1
n=2
while [ "$n" -lt "$cores" ]; do counts="$counts,$n"; n=$((n * 2)); done
[ "$cores" -gt 1 ] && counts="$counts,$cores"

step() {
  echo
  echo "=== $1"
  shift
  timeout --kill-after=10 "$step_timeout" "$@" 2>&1 | grep -v "^\s*$" || echo "(step ended: exit ${PIPESTATUS[0]})"
}

echo "=== machine: $cores cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB; data in $work ($(df -h "$work" | awk 'NR==2 {print $1 ", " $4 " free"}'))"

# Page-cache write bandwidth: 3.2 MB writes (100 frames), no sync; the 16-core target is
# 100,000 frames/s or 70 % of this, whichever is lower.
step "page-cache write bandwidth (3.2 MB writes, no sync)" \
  dd if=/dev/zero of="$work/dd.bin" bs=3200000 count=1000 conv=notrunc
rm -f "$work/dd.bin"

step "process mode, gateway pinned to $counts core(s): 256 sessions x 400 frames, window 8" \
  env GATEWAY_INFERENCE=off "$gateway" bench --sessions 256 --frames 400 --pace max --window 8 \
  --cores "$counts"

step "process mode, all cores: frames in the log against one file per frame" \
  env GATEWAY_INFERENCE=off "$gateway" bench --sessions 256 --frames 200 --pace max --window 8 \
  --compare

step "5,000 real-time sessions (one frame a second each), 30 s" \
  env GATEWAY_INFERENCE=off "$gateway" bench --sessions 5000 --frames 30 --pace realtime

step "power mode, all cores (prints the synced write bandwidth first)" \
  env GATEWAY_INFERENCE=off "$gateway" bench --sessions 256 --frames 200 --pace max --window 8 \
  --durability power

if [ -n "$speech" ]; then
  step "built-in speaker engine on, speech in every frame, all cores; then off" \
    bash -c "GATEWAY_INFERENCE=builtin '$gateway' bench --sessions 256 --frames 200 --pace max \
      --window 8 --audio '$speech' && GATEWAY_INFERENCE=off '$gateway' bench --sessions 256 \
      --frames 200 --pace max --window 8 --audio '$speech'"
fi
rm -rf "$work"
