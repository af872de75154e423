#!/usr/bin/env bash
# The README's two commands on a machine that has nothing of this project: a new user account
# (useradd -m) with a fresh clone of this repository's HEAD in its home, no Rust, no caches, no
# build directory. Prints what each step installed and how long it took.
#
# NEEDS ROOT: to create and remove the account, and for the Debian packages (what `sudo` does
# for a normal user; the account itself gets no sudo). Everything else runs as that user.
#
#   bash scripts/fresh-machine.sh [--until-window] [--test-timeout S] [--keep]
#
#   --until-window     stop after run-app.sh opened its window (skip the test command)
#   --test-timeout S   stop the test command after S seconds and say which step it was in
#                      (default: none)
#   --test-until TIME  the same, at a time of day (anything `date -d` reads, e.g. 01:50)
#   --keep             keep the account and its home (default: removed at the end)
#
# On a machine shared with other work, `touch <log dir>/pause` stops the running step (SIGSTOP
# to every process of the account) until the file is removed; paused seconds are left out of the step's
# time and their total is reported. The test command's own step list still includes them.
#
# MIN_FREE_GB (default 16): a step that lets the root file system fall below this many free
# GB is stopped, and the report says so (a cold build of every test takes tens of GB).
# FRESH_USER (default irfresh), FRESH_LOG_DIR (default /var/tmp/fresh-machine.<time>): the
# logs of each step stay there after the account is gone. `touch <log dir>/stop` stops the
# step that is running, and the run reports what it has.
#
# Steps:
#   1. apt        (root) the packages run-app.sh and test.sh install: what was missing is listed
#   2. clone      git clone of HEAD into the account's home
#   3. no-rust    run-app.sh with no Rust: must stop and say how to install rustup
#   4. rustup     the command that message gives, as the user
#   5. run-app    `bash scripts/run-app.sh` under xvfb-run until a window named
#                 "Interview Recorder" exists (build time and window time apart), then stopped
#   6. test       `bash scripts/test.sh` to its end (or the timeout); the start of each of its
#                 top-level commands is traced, so the report gives each one's time
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

until_window=0
test_timeout=0
test_until=
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --until-window) until_window=1 ;;
    --test-timeout) test_timeout=$2; shift ;;
    --test-until) test_until=$(date -d "$2" +%s); shift ;;
    --keep) keep=1 ;;
    *) echo "unknown argument: $1 (see the top of $0)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$(id -u)" -ne 0 ]; then
  echo "$0 needs root: it creates a user account for the run (useradd -m) and installs the" >&2
  echo "Debian packages the README's commands ask sudo for. Run it as root." >&2
  exit 1
fi

user=${FRESH_USER:-irfresh}
min_free_gb=${MIN_FREE_GB:-16}
log=${FRESH_LOG_DIR:-/var/tmp/fresh-machine.$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$log"
chmod 755 "$log"
if id "$user" >/dev/null 2>&1; then
  echo "user $user exists already (a previous run with --keep?): remove it with userdel -r $user" >&2
  exit 1
fi

# shellcheck source=scripts/lib-apt.sh
. scripts/lib-apt.sh
# What run-app.sh and test.sh (with the scripts it calls) ask apt for.
test_packages=(strace python3 python3-venv webkit2gtk-driver xvfb xauth imagemagick
  gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64)

summary="$log/summary.txt"
: >"$summary"
say() { printf '%s\n' "$*" | tee -a "$summary"; }
free_gb() { df --output=avail -B1G / | tail -n 1 | tr -d ' '; }
installed_packages() { dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" { print $2 }' | sort; }

# --- the account, removed at the end ----------------------------------------------------------
current_pgid=
cleanup() {
  if [ -n "$current_pgid" ]; then kill -TERM -- "-$current_pgid" 2>/dev/null || true; fi
  if id "$user" >/dev/null 2>&1 && [ "$keep" = 0 ]; then
    # Whatever the run left running belongs to the account made for it.
    local pids
    pids=$(pgrep -u "$user" || true)
    # shellcheck disable=SC2086 # one pid a word
    if [ -n "$pids" ]; then kill -KILL $pids 2>/dev/null || true; fi
    sleep 1
    find /tmp /var/tmp -maxdepth 1 -user "$user" -exec rm -rf {} + 2>/dev/null || true
    userdel -r "$user" 2>/dev/null || true
    echo "removed user $user and its home" >&2
  fi
}
trap cleanup EXIT

# Runs a command as the user in a session of its own (so the whole of it can be stopped),
# at nice 19, with the environment of a fresh login shell. Stops it past LIMIT seconds
# (0: no limit) or when the disk falls below MIN_FREE_GB. Sets step_rc and step_why.
as_user() {
  local name=$1 limit=$2 cmd=$3
  # setsid execs (the caller is not a group leader), so $! is the new group's id.
  setsid nice -n 19 setpriv --reuid="$user" --regid="$user" --init-groups --reset-env \
    bash -lc "cd \"\$HOME/interview-recorder\" && $cmd" >"$log/$name.log" 2>&1 </dev/null &
  current_pgid=$!
  local start=$SECONDS paused_from
  step_why=
  while kill -0 "$current_pgid" 2>/dev/null; do
    sleep 5
    if [ -e "$log/pause" ]; then
      paused_from=$SECONDS
      # Every process of the account: run-app.sh runs in a session of its own.
      pkill -STOP -u "$user" || true
      sleep 1
      pkill -STOP -u "$user" || true
      while [ -e "$log/pause" ] && [ ! -e "$log/stop" ]; do sleep 2; done
      pkill -CONT -u "$user" || true
      # The step's clocks (t, t0 and the time limit's start) skip the pause.
      paused_total=$((paused_total + SECONDS - paused_from))
      start=$((start + SECONDS - paused_from))
      t=$((t + SECONDS - paused_from))
      t0=$((${t0:-0} + SECONDS - paused_from))
    fi
    if [ "$limit" -gt 0 ] && [ $((SECONDS - start)) -ge "$limit" ]; then
      step_why="stopped after ${limit}s (time limit)"
    elif [ -e "$log/stop" ]; then
      step_why="stopped by hand (touch $log/stop)"
    elif [ "$(free_gb)" -lt "$min_free_gb" ]; then
      step_why="stopped: free disk below ${min_free_gb} GB"
    fi
    if [ -n "$step_why" ]; then
      kill -TERM -- "-$current_pgid" 2>/dev/null || true
      sleep 10
      kill -KILL -- "-$current_pgid" 2>/dev/null || true
      break
    fi
  done
  step_rc=0
  wait "$current_pgid" || step_rc=$?
  current_pgid=
}

step_times=()
paused_total=0
record() { step_times+=("$(printf '%-10s %6ss  %s' "$1" "$2" "$3")"); }

say "fresh-machine run on $(grep -m1 '^PRETTY_NAME=' /etc/os-release | cut -d'"' -f2), $(nproc) cores, $(free_gb) GB free; logs in $log"
say "repository: $(git -C "$repo" rev-parse --short HEAD) ($(git -C "$repo" log -1 --format=%s | cut -c1-70))"
installed_packages >"$log/packages.before"

# --- 1. apt -----------------------------------------------------------------------------------
t=$SECONDS
ensure_packages git "${APP_BUILD_PACKAGES[@]}" "${test_packages[@]}" >"$log/apt.log" 2>&1
installed_packages >"$log/packages.after-apt"
new=$(comm -13 "$log/packages.before" "$log/packages.after-apt" | wc -l)
record apt $((SECONDS - t)) "$new packages installed (list: packages.after-apt vs packages.before)"

# --- 2. the account and the clone -------------------------------------------------------------
t=$SECONDS
useradd -m -s /bin/bash "$user"
home=$(getent passwd "$user" | cut -d: -f6)
# --no-local: objects are copied, not hard-linked to this repository's.
git clone --quiet --no-local "$repo" "$home/interview-recorder"
chown -R "$user:$user" "$home/interview-recorder"
record clone $((SECONDS - t)) "useradd -m $user; git clone of $(git -C "$repo" rev-parse --short HEAD) into its home"

# --- 3. run-app.sh with nothing ---------------------------------------------------------------
t=$SECONDS
as_user no-rust 120 'bash scripts/run-app.sh'
if [ "$step_rc" -ne 0 ] && grep -q 'rustup' "$log/no-rust.log"; then
  record no-rust $((SECONDS - t)) "stopped (exit $step_rc) with the rustup instructions, as the README says"
else
  record no-rust $((SECONDS - t)) "UNEXPECTED (exit $step_rc): see no-rust.log"
fi

# --- 4. rustup, as the message says -----------------------------------------------------------
t=$SECONDS
hint=$(grep -m1 'sh.rustup.rs' "$log/no-rust.log" | sed 's/^ *//' || true)
[ -n "$hint" ] || hint="curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y"
as_user rustup 900 "$hint"
# (A failed curl still lets `sh` exit 0: the installed rustup is what tells.)
if grep -q 'resolve host: sh.rustup.rs' "$log/rustup.log"; then
  # sh.rustup.rs serves static.rust-lang.org/rustup/rustup-init.sh; some networks (this CI's)
  # reach only the latter.
  hint=${hint/sh.rustup.rs/static.rust-lang.org\/rustup\/rustup-init.sh}
  mv "$log/rustup.log" "$log/rustup-sh.rustup.rs.log"
  as_user rustup 900 "$hint"
fi
record rustup $((SECONDS - t)) "exit $step_rc: $hint"
if [ ! -x "$home/.cargo/bin/rustup" ]; then
  printf '%s\n' "${step_times[@]}" >&2
  echo "rustup could not be installed: see $log/rustup.log" >&2
  exit 1
fi

# --- 5. run-app.sh up to the window -----------------------------------------------------------
# Inside xvfb-run: start run-app.sh in a group of its own, wait for the window, take a
# screenshot, stop the group. Each output line gets the second it was printed.
cat >"$log/window.sh" <<'EOF_WINDOW'
stamp() { while IFS= read -r line; do printf '%s %s\n' "$(date +%s)" "$line"; done; }
# setsid execs here (not a group leader), so the pid written is the group's id.
setsid bash -c 'echo $$ >"$HOME/run-app.pgid"; exec bash scripts/run-app.sh' 2>&1 </dev/null | stamp &
sleep 2
pgid=$(cat "$HOME/run-app.pgid")
while ! xwininfo -root -tree 2>/dev/null | grep -q '"Interview Recorder"'; do
  if ! kill -0 -- "-$pgid" 2>/dev/null; then
    echo "$(date +%s) run-app.sh ended before a window appeared"
    exit 1
  fi
  sleep 2
done
echo "$(date +%s) WINDOW UP"
sleep 5
import -window root "$HOME/window.png" 2>/dev/null || true
kill -TERM -- "-$pgid" 2>/dev/null || true
wait
EOF_WINDOW
t=$SECONDS
t0=$(date +%s)
as_user run-app 5400 "xvfb-run -a -s '-screen 0 1280x900x24' bash $log/window.sh"
built=$(awk '/Running `/ { print $1; exit }' "$log/run-app.log")
up=$(awk '/WINDOW UP/ { print $1; exit }' "$log/run-app.log")
cp "$home/window.png" "$log/window.png" 2>/dev/null || true
if [ -n "$up" ]; then
  record run-app $((SECONDS - t)) "window up ${up:+$((up - t0))s} after start (build and start of cargo run: $((${built:-$up} - t0))s); screenshot window.png"
else
  record run-app $((SECONDS - t)) "NO WINDOW (exit $step_rc${step_why:+, $step_why}; $(grep -c ' Compiling ' "$log/run-app.log") crates compiled): see run-app.log"
fi
# The build directory as run-app.sh left it (the project's target/).
du -sh "$home/interview-recorder/target" 2>/dev/null | cut -f1 >"$log/target-after-run-app" || true

# --- 6. the test command ----------------------------------------------------------------------
if [ "$until_window" = 0 ] && [ -n "$up" ]; then
  if [ -n "$test_until" ]; then
    test_timeout=$((test_until - $(date +%s)))
    [ "$test_timeout" -gt 60 ] || test_timeout=60
  fi
  t=$SECONDS
  # test.sh is sourced by a bash that traces to fd 9 (its own stdout/stderr stay untouched):
  # each traced line carries the second it started. $0 stays scripts/test.sh.
  cat >"$log/test-runner.sh" <<'EOF_TEST'
exec 9>"$HOME/test.trace"
BASH_XTRACEFD=9
PS4='+ ${EPOCHSECONDS} '
set -x
. ./scripts/test.sh
EOF_TEST
  as_user test "$test_timeout" "bash -c '. $log/test-runner.sh' scripts/test.sh"
  cp "$home/test.trace" "$log/test.trace" 2>/dev/null || true
  if [ "$step_rc" -eq 0 ]; then
    record test $((SECONDS - t)) "passed, to its end"
  else
    last=$(grep -E '^\+ [0-9]+ (cargo|bash|FUZZ_SECONDS|ensure_)' "$log/test.trace" 2>/dev/null | tail -n 1 | cut -d' ' -f3- || true)
    record test $((SECONDS - t)) "exit $step_rc${step_why:+, $step_why}; last step started: ${last:-?}"
  fi
fi

# --- report -----------------------------------------------------------------------------------
say ""
say "step       seconds  result"
for line in "${step_times[@]}"; do say "$line"; done
[ "$paused_total" = 0 ] || say "(paused by hand for ${paused_total}s in all; left out of the times above)"
if [ -f "$log/test.trace" ]; then
  say ""
  say "test command, top-level steps (seconds from the start of the test command):"
  grep -E '^\+ [0-9]+ (cargo|bash|FUZZ_SECONDS|ensure_|rustup|if|python3)' "$log/test.trace" \
    | awk 'NR == 1 { s = $2 } { printf "  %6d  %s\n", $2 - s, substr($0, index($0, $3)) }' \
    | cut -c1-140 | tee -a "$summary" >/dev/null
fi

say ""
say "what the run installed:"
# Only step 1 installs packages (the account has no sudo); what else appeared on the machine
# meanwhile was someone else's doing and is named apart.
apt_new=$(comm -13 "$log/packages.before" "$log/packages.after-apt" | tr '\n' ' ')
say "  apt (step 1, as root): ${apt_new:-none: this machine had them all}"
installed_packages >"$log/packages.after"
others=$(comm -13 "$log/packages.after-apt" "$log/packages.after" | tr '\n' ' ')
[ -z "$others" ] || say "  (installed on this machine by others during the run: $others)"
report_user() {
  setpriv --reuid="$user" --regid="$user" --init-groups --reset-env bash -lc "$1" 2>/dev/null || true
}
say "  rustup: $(report_user 'cd ~/interview-recorder && rustup show active-toolchain' | head -n 1)"
say "          components: $(report_user 'cd ~/interview-recorder && rustup component list --installed' | tr '\n' ' ')"
say "          targets: $(report_user 'cd ~/interview-recorder && rustup target list --installed' | tr '\n' ' ')"
say "          ~/.rustup $(du -sh "$home/.rustup" 2>/dev/null | cut -f1), ~/.cargo $(du -sh "$home/.cargo" 2>/dev/null | cut -f1) (crates.io sources and cargo-installed tools)"
# rustup's own programs are links to rustup; anything else there came from `cargo install`.
names() { local f out=; for f in "$@"; do [ -e "$f" ] && out+="${f##*/} "; done; printf '%s' "$out"; }
cargo_installed=()
for f in "$home"/.cargo/bin/*; do
  [ -e "$f" ] && ! cmp -s "$f" "$home/.cargo/bin/rustup" && cargo_installed+=("$f")
done
say "  cargo install (~/.cargo/bin): $(names "${cargo_installed[@]}")"
tools="$home/.cache/interview-recorder/tools"
say "  tools cache (~/.cache/interview-recorder/tools): $(names "$tools"/* "$tools"/bin/*)($(du -sh "$tools" 2>/dev/null | cut -f1))"
venv="$home/.cache/interview-recorder/venv"
say "  venv: $( [ -x "$venv/bin/pip" ] && "$venv/bin/pip" list --disable-pip-version-check 2>/dev/null | grep -i '^moto ' | tr -s ' ') ($(du -sh "$venv" 2>/dev/null | cut -f1))"
say "  build directory: target/ $(cat "$log/target-after-run-app" 2>/dev/null) after run-app.sh, $(du -sh "$home/interview-recorder/target" 2>/dev/null | cut -f1) at the end"
say "  home in all: $(du -sh "$home" 2>/dev/null | cut -f1); free disk now $(free_gb) GB"
say ""
say "summary: $summary"
