#!/usr/bin/env bash
# The edge host (edge/: a Cloudflare Worker + one Durable Object per session + R2) built and run
# locally under `wrangler dev --local` (workerd), and the shared contract suite
# (gateway/tests/contract.rs) run against it: the same suite `cargo test` runs against the
# server gateway.
#
#   bash scripts/edge.sh [test]     tools, build, start wrangler, run the suite, stop (default)
#   bash scripts/edge.sh bench      tools, build, start wrangler, `gateway bench` against it
#   bash scripts/edge.sh tools      install the build tools only
#   bash scripts/edge.sh build      worker-build --release into edge/build
#   bash scripts/edge.sh start|stop|restart   wrangler dev for the suite's restart test
#   bash scripts/edge.sh objects KEY...        the R2 objects at KEYs in EDGE_RUN_DIR's local
#                  state, as JSON {"KEY": base64 bytes or null}, read the way `wrangler r2
#                  object get --local` reads them (the suite checks frames reach their keys)
#
# Tools are installed once, pinned, into /var/cache/interview-recorder/tools (else
# ${XDG_CACHE_HOME:-$HOME/.cache}/interview-recorder/tools): worker-build and wasm-bindgen-cli
# from crates.io (wasm-bindgen at the version edge/Cargo.lock pins; worker-build's own download
# of it, from GitHub, is not used), wrangler from the npm registry (4.86.0: the newest that runs
# on Node 20). wasm-opt is off (edge/Cargo.toml). The worker builds into
# /var/cache/interview-recorder/edge-target (EDGE_TARGET_DIR), apart from the workspace's builds.
#
# EDGE_RUN_DIR   where wrangler's persisted state (DO SQLite, R2), its log and pid live
#                (default: a fresh temporary folder for `test`/`bench`, removed after)
# EDGE_PORT      wrangler's port (default: a free one)
# EDGE_FRAME_MOVE_DELAY_MS  `bench`: how long after a batch's first ACK its frames move to R2
#                (default 5000, the worker's; `test` uses 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
. scripts/lib-rust.sh
ensure_rust

WORKER_BUILD_VERSION=0.8.7
WRANGLER_VERSION=4.86.0
# Only where the system's Node is older than 20.
NODE_VERSION=22.22.0

tools=/var/cache/interview-recorder/tools
if ! mkdir -p "$tools" 2>/dev/null || [ ! -w "$tools" ]; then
  tools=${XDG_CACHE_HOME:-$HOME/.cache}/interview-recorder/tools
  mkdir -p "$tools"
fi
EDGE_TARGET_DIR=${EDGE_TARGET_DIR:-/var/cache/interview-recorder/edge-target}
if ! mkdir -p "$EDGE_TARGET_DIR" 2>/dev/null || [ ! -w "$EDGE_TARGET_DIR" ]; then
  EDGE_TARGET_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/interview-recorder/edge-target
fi
npm_root="$tools/npm-wrangler-$WRANGLER_VERSION"
wrangler="$npm_root/node_modules/.bin/wrangler"

# --- tools, once ------------------------------------------------------------------------------
install_tools() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
  fi
  if [ "$("$tools/bin/worker-build" --version 2>/dev/null)" != "$WORKER_BUILD_VERSION" ]; then
    echo "installing worker-build $WORKER_BUILD_VERSION into $tools" >&2
    cargo install --locked --quiet --force --root "$tools" --version "$WORKER_BUILD_VERSION" worker-build
  fi
  # The CLI must be exactly the library's version, which the lock file says.
  local bindgen
  bindgen=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' edge/Cargo.lock)
  if [ -z "$bindgen" ]; then
    echo "edge/Cargo.lock names no wasm-bindgen version" >&2
    exit 1
  fi
  if [ "$("$tools/bin/wasm-bindgen" --version 2>/dev/null)" != "wasm-bindgen $bindgen" ]; then
    echo "installing wasm-bindgen-cli $bindgen into $tools" >&2
    # Not --locked: its lock file pins a webpki-roots that no longer builds.
    cargo install --quiet --force --root "$tools" --version "$bindgen" wasm-bindgen-cli
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    ensure_packages nodejs npm
  fi
  # wrangler 4 needs Node 20 or newer; Debian 12's is 18. Node itself comes from the npm
  # registry then (the `node` package), once, into the tools folder.
  if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    local node_root="$tools/npm-node-$NODE_VERSION"
    if [ ! -x "$node_root/node_modules/.bin/node" ]; then
      echo "installing Node $NODE_VERSION into $node_root (this system's is $(node --version))" >&2
      mkdir -p "$node_root"
      npm install --prefix "$node_root" --no-audit --no-fund --loglevel=error "node@$NODE_VERSION" >&2
    fi
    export PATH="$node_root/node_modules/.bin:$PATH"
  fi
  if [ "$("$wrangler" --version 2>/dev/null | tail -n 1)" != "$WRANGLER_VERSION" ]; then
    echo "installing wrangler $WRANGLER_VERSION into $npm_root" >&2
    mkdir -p "$npm_root"
    # workerd's binary comes as an optional dependency; install scripts are not needed.
    npm install --prefix "$npm_root" --no-audit --no-fund --ignore-scripts --loglevel=error \
      "wrangler@$WRANGLER_VERSION" >&2
  fi
  export PATH="$tools/bin:$PATH"
  export WASM_BINDGEN_BIN="$tools/bin/wasm-bindgen"
  export ESBUILD_BIN="$npm_root/node_modules/.bin/esbuild"
  export WRANGLER_SEND_METRICS=false
}

build() {
  (cd edge && CARGO_TARGET_DIR="$EDGE_TARGET_DIR" worker-build --release)
}

# --- wrangler dev ----------------------------------------------------------------------------
free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

# Starts wrangler in its own process group with the run dir's settings and waits (with a
# deadline) until /health answers.
start() {
  mkdir -p "$EDGE_RUN_DIR/state"
  rm -f "$EDGE_RUN_DIR/pid"
  [ -f "$EDGE_RUN_DIR/port" ] || echo "${EDGE_PORT:-$(free_port)}" >"$EDGE_RUN_DIR/port"
  [ -f "$EDGE_RUN_DIR/inspector-port" ] || free_port >"$EDGE_RUN_DIR/inspector-port"
  local port vars=()
  port=$(cat "$EDGE_RUN_DIR/port")
  if [ -f "$EDGE_RUN_DIR/vars" ]; then
    while read -r var; do vars+=(--var "$var"); done <"$EDGE_RUN_DIR/vars"
  fi
  # wrangler runs wrangler.toml's [build] command on every start: into the edge's target dir,
  # where the build above left everything up to date.
  # setsid may fork: the new session's leader writes its own pid (= the group id) and execs.
  (cd edge && CARGO_TARGET_DIR="$EDGE_TARGET_DIR" PIDFILE="$EDGE_RUN_DIR/pid" setsid sh -c \
    'echo $$ >"$PIDFILE"; exec "$0" "$@"' "$wrangler" dev --local --ip 127.0.0.1 --port "$port" \
    --inspector-port "$(cat "$EDGE_RUN_DIR/inspector-port")" \
    --persist-to "$EDGE_RUN_DIR/state" --show-interactive-dev-session=false "${vars[@]}" &) \
    >>"$EDGE_RUN_DIR/wrangler.log" 2>&1 </dev/null
  local wait_pid=$((SECONDS + 10))
  until [ -s "$EDGE_RUN_DIR/pid" ]; do
    [ $SECONDS -lt $wait_pid ] || { echo "wrangler did not start" >&2; return 1; }
    sleep 0.05
  done
  local deadline=$((SECONDS + 120))
  until node -e 'fetch(process.argv[1]).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
    "http://127.0.0.1:$port/health" 2>/dev/null; do
    if ! kill -0 "$(cat "$EDGE_RUN_DIR/pid")" 2>/dev/null; then
      echo "wrangler exited; its log:" >&2
      tail -n 40 "$EDGE_RUN_DIR/wrangler.log" >&2
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "wrangler did not answer /health within 120 s; its log:" >&2
      tail -n 40 "$EDGE_RUN_DIR/wrangler.log" >&2
      stop
      return 1
    fi
    sleep 0.2
  done
  echo "edge host: http://127.0.0.1:$port (state in $EDGE_RUN_DIR/state)" >&2
}

# Stops wrangler's whole process group (wrangler, esbuild, workerd) and waits until it is gone.
stop() {
  [ -f "$EDGE_RUN_DIR/pid" ] || return 0
  local pid
  pid=$(cat "$EDGE_RUN_DIR/pid")
  kill -TERM -- "-$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 20))
  while kill -0 -- "-$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    sleep 0.1
  done
  rm -f "$EDGE_RUN_DIR/pid"
}

# Prints the local R2 objects at the given keys as one JSON object (key: base64 or null), in
# one miniflare (as `wrangler r2 object get --local` opens it, on the same persisted state).
read_objects() {
  local bucket
  bucket=$(awk -F'"' '/^bucket_name *=/ { print $2; exit }' edge/wrangler.toml)
  NODE_PATH="$npm_root/node_modules" node --input-type=commonjs -e '
    const { Miniflare } = require("miniflare");
    const [persist, bucketName, ...keys] = process.argv.slice(1);
    (async () => {
      const mf = new Miniflare({
        modules: true,
        script: "export default { fetch() { return new Response(null, { status: 404 }); } }",
        defaultPersistRoot: require("path").join(persist, "v3"),
        r2Buckets: { BUCKET: bucketName },
      });
      try {
        const bucket = await mf.getR2Bucket("BUCKET");
        const out = {};
        for (const key of keys) {
          const object = await bucket.get(key);
          out[key] = object ? Buffer.from(await object.arrayBuffer()).toString("base64") : null;
        }
        process.stdout.write(JSON.stringify(out));
      } finally {
        await mf.dispose();
      }
    })().catch((e) => { console.error(e); process.exit(1); });
  ' "$EDGE_RUN_DIR/state" "$bucket" "$@"
}

# CPU ticks (user + system) of one process, or of each of its threads ("tid ticks" lines).
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
thread_ticks() {
  local task
  for task in /proc/"$1"/task/*; do
    echo "${task##*/} $(awk '{ print $14 + $15 }' "$task/stat" 2>/dev/null || echo 0)"
  done
}

# A run dir of our own for this command, removed (after stopping wrangler) when it ends.
own_run_dir() {
  if [ -z "${EDGE_RUN_DIR:-}" ]; then
    EDGE_RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/edge-run.XXXXXX")
    trap 'stop; rm -rf "$EDGE_RUN_DIR"' EXIT
  else
    trap 'stop' EXIT
  fi
  export EDGE_RUN_DIR
}

command=${1:-test}
case "$command" in
tools) install_tools ;;
build)
  install_tools
  build
  ;;
objects)
  : "${EDGE_RUN_DIR:?set EDGE_RUN_DIR to the folder of the wrangler whose R2 to read}"
  install_tools
  read_objects "${@:2}"
  ;;
start | stop | restart)
  : "${EDGE_RUN_DIR:?set EDGE_RUN_DIR to the folder of the wrangler to $command}"
  install_tools
  [ "$command" = start ] || stop
  [ "$command" = stop ] || start
  ;;
test)
  install_tools
  build
  own_run_dir
  # The suite's fake inference service listens where the worker is told to send resolves.
  inference_port=$(free_port)
  key="contract-key-$RANDOM$RANDOM"
  printf '%s\n' "GATEWAY_API_KEY:$key" "INFERENCE_BASE_URL:http://127.0.0.1:$inference_port" \
    "INFERENCE_TIMEOUT_MS:1000" "EDGE_FRAME_MOVE_DELAY_MS:1000" \
    "GATEWAY_ALLOW_ORIGINS:https://app.example.com" >"$EDGE_RUN_DIR/vars"
  start
  # The suite restarts the host through this script (DO state and R2 objects must persist).
  CONTRACT_HOST_URL="http://127.0.0.1:$(cat "$EDGE_RUN_DIR/port")" \
    CONTRACT_API_KEY="$key" \
    CONTRACT_INFERENCE_ADDR="127.0.0.1:$inference_port" \
    CONTRACT_RESTART_CMD="bash $repo/scripts/edge.sh restart" \
    CONTRACT_OBJECTS_CMD="bash $repo/scripts/edge.sh objects" \
    cargo test -p gateway --test contract -- --test-threads 4
  ;;
bench)
  install_tools
  build
  own_run_dir
  # Frames move to R2 this long after their batch's first ACK (the worker's default: 5 s).
  move_delay=${EDGE_FRAME_MOVE_DELAY_MS:-5000}
  echo "EDGE_FRAME_MOVE_DELAY_MS:$move_delay" >"$EDGE_RUN_DIR/vars"
  start
  cargo build --release -p gateway
  # `gateway bench --target` loads a running host but cannot see its CPU: read it from /proc
  # around the load. wrangler runs two workerd processes: its dev proxy (listening on the
  # public port) and the runtime that hosts the worker and its Durable Objects (the one
  # wrangler points the proxy at, started with `entry=127.0.0.1:0`). The runtime runs every
  # isolate on one thread; its other threads compile wasm and JavaScript in the background.
  port=$(cat "$EDGE_RUN_DIR/port")
  pgid=$(cat "$EDGE_RUN_DIR/pid")
  proxy=$(pgrep -g "$pgid" -f "workerd serve .*entry=127.0.0.1:$port " | head -n 1)
  runtime=$(pgrep -g "$pgid" -f "workerd serve .*entry=127.0.0.1:0 " | head -n 1)
  if [ -z "$proxy" ] || [ -z "$runtime" ]; then
    echo "cannot tell wrangler's two workerd processes apart" >&2
    exit 1
  fi
  # Compile the module and open one object first, so the figures are the steady state.
  node -e 'fetch(process.argv[1]).then(r => r.text())' "http://127.0.0.1:$port/v1/sessions/bench-warm-up/state"
  proxy0=$(proc_ticks "$proxy")
  runtime0=$(proc_ticks "$runtime")
  thread_ticks "$runtime" >"$EDGE_RUN_DIR/threads.before"
  "${CARGO_TARGET_DIR:-target}/release/gateway" bench --target "127.0.0.1:$port" "${@:2}" \
    | tee "$EDGE_RUN_DIR/bench.txt"
  proxy1=$(proc_ticks "$proxy")
  runtime1=$(proc_ticks "$runtime")
  thread_ticks "$runtime" >"$EDGE_RUN_DIR/threads.after"
  # The isolate's thread: the one of the runtime that used the most CPU during the load.
  isolate=$(awk 'NR == FNR { before[$1] = $2; next } { d = $2 - before[$1]; if (d > max) max = d } END { print max + 0 }' \
    "$EDGE_RUN_DIR/threads.before" "$EDGE_RUN_DIR/threads.after")
  acked=$(awk '/^frames acked/ { print $3; exit }' "$EDGE_RUN_DIR/bench.txt")
  if [ -n "$acked" ] && [ "$acked" -gt 0 ]; then
    awk -v r=$((runtime1 - runtime0)) -v i="$isolate" -v p=$((proxy1 - proxy0)) -v hz="$(getconf CLK_TCK)" -v n="$acked" 'BEGIN {
      ms = 1000 / hz / n
      printf "CPU per frame: workerd runtime %.3f ms (isolate thread %.3f ms, background threads %.3f ms), dev proxy %.3f ms\n", r * ms, i * ms, (r - i) * ms, p * ms
    }'
    # Then the frames' move to R2 behind the ACKs: the runtime's CPU until it has been idle
    # for longer than the move delay (at most 5 minutes).
    quiet=$((move_delay / 1000 + 3))
    last=$(proc_ticks "$runtime")
    idle_since=$SECONDS
    deadline=$((SECONDS + 300))
    while [ $((SECONDS - idle_since)) -lt "$quiet" ] && [ $SECONDS -lt $deadline ]; do
      sleep 1
      now=$(proc_ticks "$runtime")
      [ $((now - last)) -le 1 ] || idle_since=$SECONDS
      last=$now
    done
    awk -v r=$((last - runtime0)) -v hz="$(getconf CLK_TCK)" -v n="$acked" 'BEGIN {
      printf "CPU per frame until idle, the move to R2 included: workerd runtime %.3f ms\n", r * 1000 / hz / n
    }'
  fi
  ;;
*)
  echo "usage: scripts/edge.sh [test|bench|tools|build|start|stop|restart]" >&2
  exit 2
  ;;
esac
