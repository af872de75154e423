#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through cargo-fuzz) of what strangers send the gateway:
# the targets in fuzz/fuzz_targets/ (what each checks is in its module doc), each run for a
# bounded time from the seed inputs committed in fuzz/corpus/<target>/.
#
#   bash scripts/fuzz.sh [TARGET...]       all targets when none is named
#
# FUZZ_SECONDS    seconds per target (default 60; 0: no time bound, then set FUZZ_RUNS)
# FUZZ_RUNS       stop a target after this many executions instead (e.g. 10000000)
# FUZZ_CORPUS_DIR keep the inputs the fuzzer finds in FUZZ_CORPUS_DIR/<target> (outside the
#                 repository) for the next run; by default they go to a temporary folder that
#                 is deleted, so the committed seeds stay a few hand-made files
# FUZZ_SANITIZER  address (default) or none (about twice the executions a second, no ASan)
#
# Exits 1 when a target crashes (a panic, a failed assertion, an overflow), hangs (over 10 s on
# one input) or runs out of memory, after printing where libFuzzer wrote the failing input:
# reproduce with `RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz TARGET fuzz/artifacts/...`.
#
# Why cargo-fuzz on stable Rust: cargo-fuzz passes rustc the sanitizer-coverage flags
# (`-Cpasses=sancov-module`, `-Cllvm-args=-sanitizer-coverage-*`, all stable) and
# `-Zsanitizer=address`, which only a nightly rustc takes. This workspace builds with stable
# (rust-toolchain.toml) and CI has no nightly, so the fuzz builds set RUSTC_BOOTSTRAP=1, which
# lets the stable compiler accept that one `-Z` flag. Only these builds see it: the crate in
# fuzz/ is its own workspace with its own target dir.
#
# Builds go to ${CARGO_TARGET_DIR:-target}/fuzz, apart from the workspace's builds (other flags:
# each would rebuild the other). cargo-fuzz is installed once (pinned) under
# /var/cache/interview-recorder/tools when that folder is writable, else under
# ${XDG_CACHE_HOME:-$HOME/.cache}/interview-recorder/tools.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-rust.sh
ensure_rust

CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_RUNS=${FUZZ_RUNS:--1}
FUZZ_SANITIZER=${FUZZ_SANITIZER:-address}
FUZZ_TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-target}/fuzz")

# --- cargo-fuzz, once ---------------------------------------------------------------------
tools=/var/cache/interview-recorder/tools
if ! mkdir -p "$tools" 2>/dev/null || [ ! -w "$tools" ]; then
  tools=${XDG_CACHE_HOME:-$HOME/.cache}/interview-recorder/tools
  mkdir -p "$tools"
fi
cargo_fuzz="$tools/bin/cargo-fuzz"
if [ "$("$cargo_fuzz" --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION into $tools" >&2
  # Its own build folder, removed after: not the workspace's target dir, not a leftover.
  CARGO_TARGET_DIR="$FUZZ_TARGET_DIR/cargo-fuzz-install" \
    cargo install --locked --quiet --root "$tools" --version "$CARGO_FUZZ_VERSION" cargo-fuzz
  rm -rf "$FUZZ_TARGET_DIR/cargo-fuzz-install"
fi
export PATH="$tools/bin:$PATH"

# --- build ----------------------------------------------------------------------------------
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$FUZZ_TARGET_DIR"
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi
echo "building fuzz targets (${targets[*]}) into $FUZZ_TARGET_DIR" >&2
if [ $# -gt 0 ]; then
  for target in "${targets[@]}"; do
    cargo fuzz build --fuzz-dir fuzz --sanitizer "$FUZZ_SANITIZER" "$target"
  done
else
  cargo fuzz build --fuzz-dir fuzz --sanitizer "$FUZZ_SANITIZER"
fi
host=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="$FUZZ_TARGET_DIR/$host/release"
# Each change to the fuzz crate's dependencies leaves the previous copy of every target binary
# (up to 160 MB each) in deps/; keep only the ones just built.
for target in "${targets[@]}"; do
  find "$bin_dir/deps" -maxdepth 1 -type f -name "$target-*" ! -name '*.d' \
    ! -samefile "$bin_dir/$target" -delete
done

# --- run ------------------------------------------------------------------------------------
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
failed=()
reproduce=()
summary=()
for target in "${targets[@]}"; do
  seeds="fuzz/corpus/$target"
  artifacts="fuzz/artifacts/$target"
  mkdir -p "$artifacts"
  # New inputs go to the first folder; the committed seeds are only read.
  if [ -n "${FUZZ_CORPUS_DIR:-}" ]; then
    grown="$FUZZ_CORPUS_DIR/$target"
  else
    grown="$scratch/corpus-$target"
  fi
  mkdir -p "$grown"
  options=(-max_total_time="$FUZZ_SECONDS" -runs="$FUZZ_RUNS" -timeout=10
    -artifact_prefix="$artifacts/" -print_final_stats=1)
  # A chunk message is ~43 KB; the socket takes up to 64 KiB.
  [ "$target" = message ] && options+=(-max_len=65536)
  echo "--- fuzzing $target (${FUZZ_SECONDS}s, runs ${FUZZ_RUNS}) ---" >&2
  log="$scratch/$target.log"
  status=0
  "$bin_dir/$target" "${options[@]}" "$grown" "$seeds" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  summary+=("$(printf '%-18s %12s execs %8s exec/s  exit %s' "$target" "${execs:-?}" "${speed:-?}" "$status")")
  if [ "$status" -ne 0 ]; then
    # The whole report (panic, stack, libFuzzer's summary) stays beside the input; the panic
    # or libFuzzer's error, and where it wrote the input, are shown here.
    cp "$log" "$artifacts/last-failure.log"
    grep -m1 -A6 -E "panicked at|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)" "$log" >&2 || tail -n 30 "$log" >&2
    input=$(sed -n 's/.*[Tt]est unit written to \(.*\)$/\1/p' "$log" | tail -1)
    failed+=("$target: ${input:-no input written} (log: $artifacts/last-failure.log)")
    reproduce+=("RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz --sanitizer $FUZZ_SANITIZER $target ${input:-}")
  fi
done

echo "--- fuzz summary ---" >&2
printf '%s\n' "${summary[@]}" >&2
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: a fuzz target found an input that breaks it:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  echo "reproduce (from the repository root, cargo-fuzz in $tools/bin):" >&2
  printf '  %s\n' "${reproduce[@]}" >&2
  exit 1
fi
