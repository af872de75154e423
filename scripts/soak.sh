#!/usr/bin/env bash
# Soak benchmark (a measurement, not a test): 200 real-time sessions for 30 minutes against a
# release gateway child, printing every minute the ACKs so far, the gateway's resident memory
# and open file descriptors (both must stay flat) and the ACK p99 of that minute.
#   bash scripts/soak.sh [SESSIONS] [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-rust.sh
ensure_rust
sessions=${1:-200}
minutes=${2:-30}
cargo build --release -p gateway
target=${CARGO_TARGET_DIR:-target}
"$target/release/gateway" bench --sessions "$sessions" --frames $((minutes * 60)) \
  --pace realtime --report-every 60
