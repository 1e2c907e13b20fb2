# shellcheck shell=bash
# Shared set-up of the bench/run_*_bench.sh scripts; sourced, not run:
#
#   source "$ROOT/bench/internal/bench_env.sh"
#   bench_ensure_built "$BUILD_DIR" lotse_courses lotse_echo_server ...
#   bench_init                      # TMP, PIDS, clean-up traps, $TMP/pki
#   echo_start                      # ECHO_PID, ECHO_PORT
#   echo_run echo kim-koeln 32 2 10 70 || status=1   # -> $TMP/echo.json
#   echo_stop
#
# Functions:
#   bench_binary DIR TARGET    path of a target's binary in build tree DIR
#                              (services/<s>/ for lotse_<service>, tools/ for
#                              lotse_seed_demo and lotse_health_probe,
#                              bench/ otherwise)
#   bench_ensure_built DIR TARGET...
#                              builds the targets (one job) when any binary
#                              is missing
#   bench_init                 makes TMP (a fresh temp dir) and a fresh dev
#                              PKI in $TMP/pki; on exit stops every process
#                              in PIDS (SIGTERM, then waits), runs the
#                              commands given to bench_on_exit, and removes
#                              TMP unless KEEP_TMP is set
#   bench_on_exit CMD          run CMD (a string, eval'd) at exit, before TMP
#                              is removed
#   bounded LIMIT CMD...       runs CMD under `timeout LIMIT`, tracked in PIDS
#   wait_port LOG PID SED      polls LOG (30 s) until the sed -n expression
#                              SED prints a port; fails (and shows LOG) if
#                              PID exits first
#   serving_port LOG PID       wait_port for a Lotse service's JSON
#                              {"msg":"serving",...,"port":N} line
#   stop PID                   SIGTERM and wait
#   json_field NAME FILE       a numeric field of the first JSON line in FILE
#   free_port                  a TCP port free on 127.0.0.1 right now
#   echo_start                 starts lotse_echo_server (ECHO_SERVER) over
#                              mTLS on a free port; sets ECHO_PID, ECHO_PORT
#   echo_run NAME CLIENT CONCURRENCY CHANNELS DURATION LIMIT
#                              runs lotse_loadgen (LOADGEN) against it as
#                              agency CLIENT into $TMP/NAME.json; non-zero if
#                              the run failed
#   echo_stop                  stops the echo server
#
# Callers set ECHO_SERVER and LOADGEN (bench_binary gives the paths) and
# ROOT (the repository root).

bench_binary() {
  local dir="$1" target="$2"
  case "$target" in
    lotse_identity | lotse_cases | lotse_courses | lotse_placement)
      echo "$dir/services/${target#lotse_}/$target"
      ;;
    lotse_seed_demo | lotse_health_probe) echo "$dir/tools/$target" ;;
    *) echo "$dir/bench/$target" ;;
  esac
}

bench_ensure_built() {
  local dir="$1" target
  shift
  for target in "$@"; do
    if [[ ! -x "$(bench_binary "$dir" "$target")" ]]; then
      echo "building the benchmark binaries in $dir" >&2
      cmake --build "$dir" --target "$@" -j1 >/dev/null
      return
    fi
  done
}

BENCH_EXIT_HOOKS=()
bench_on_exit() {
  BENCH_EXIT_HOOKS+=("$1")
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
bench_cleanup() {
  local pid hook
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  for hook in "${BENCH_EXIT_HOOKS[@]}"; do
    eval "$hook" || true
  done
  if [[ -n "${KEEP_TMP:-}" ]]; then
    echo "kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
}

bench_init() {
  TMP="$(mktemp -d)"
  PIDS=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  "$ROOT/tools/dev-pki.sh" "$TMP/pki" >/dev/null
}

bounded() {
  local limit="$1"
  shift
  timeout "$limit" "$@" &
  local pid=$!
  PIDS+=("$pid")
  wait "$pid"
}

wait_port() {
  local log="$1" pid="$2" pattern="$3" port=""
  for _ in $(seq 600); do
    port="$(sed -n "$pattern" "$log" | head -n 1)"
    if [[ -n "$port" ]]; then
      echo "$port"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "server did not start:" >&2
  cat "$log" >&2
  return 1
}

serving_port() {
  wait_port "$1" "$2" 's/.*"msg":"serving".*"port":\([0-9]*\).*/\1/p'
}

stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

json_field() {
  sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p" "$2" | head -n 1
}

free_port() {
  python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

echo_start() {
  "$ECHO_SERVER" --listen=127.0.0.1:0 --tls_dir="$TMP/pki" \
    >"$TMP/echo-server.out" 2>"$TMP/echo-server.err" &
  ECHO_PID=$!
  PIDS+=("$ECHO_PID")
  ECHO_PORT="$(wait_port "$TMP/echo-server.out" "$ECHO_PID" \
    's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p')"
}

echo_run() {
  local name="$1" client="$2" concurrency="$3" channels="$4" duration="$5"
  local limit="$6"
  bounded "$limit" "$LOADGEN" --target="127.0.0.1:$ECHO_PORT" \
    --tls_dir="$TMP/pki" --client="$client" --concurrency="$concurrency" \
    --channels="$channels" --duration_s="$duration" >"$TMP/$name.json"
}

echo_stop() {
  stop "$ECHO_PID"
}
