#!/usr/bin/env bash
# Measures the echo baseline: lotse_echo_server + lotse_loadgen on loopback,
# first over mutual TLS (with a fresh dev PKI in a temp dir), then plaintext,
# and prints both JSON result lines, the TLS/plaintext QPS ratio and the echo
# server's CPU per call in each mode (utime + stime from /proc, the baseline
# the services' CPU per call is quoted against).
#
# Usage: bench/run_echo_baseline.sh [DURATION_S=10] [CONCURRENCY=64]
# Environment:
#   BUILD_DIR     build tree holding bench/lotse_{echo_server,loadgen}
#                 (default: build-bench at the repo root; built if missing)
#   LOADGEN_ARGS  extra flags for lotse_loadgen, e.g. "--payload_bytes=1024"
#   REPEATS       run mTLS and plaintext alternately this many times (default
#                 1) and report the medians; on a shared, noisy machine
#                 interleaving keeps both modes exposed to the same noise
#
# Exit status is non-zero if either run fails (any RPC error, no calls).
set -euo pipefail

DURATION="${1:-10}"
CONCURRENCY="${2:-64}"
REPEATS="${REPEATS:-1}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-bench}"
SERVER="$BUILD_DIR/bench/lotse_echo_server"
LOADGEN="$BUILD_DIR/bench/lotse_loadgen"
read -r -a EXTRA <<<"${LOADGEN_ARGS:-}"
# shellcheck source=bench/internal/bench_env.sh
source "$ROOT/bench/internal/bench_env.sh"  # cpu_ticks, cpu_us_per_call

if [[ ! -x "$SERVER" || ! -x "$LOADGEN" ]]; then
  echo "building lotse_echo_server and lotse_loadgen in $BUILD_DIR" >&2
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DLOTSE_BUILD_TESTS=OFF >/dev/null
  cmake --build "$BUILD_DIR" --target lotse_echo_server lotse_loadgen -j1 >/dev/null
fi

TMP="$(mktemp -d)"
PIDS=()
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$ROOT/tools/dev-pki.sh" "$TMP/pki" >/dev/null

# start_server NAME [SERVER FLAGS...]: starts a server on a free loopback port
# and sets PORT once the server has printed its "listening on" line. (Not run
# in $(...): the PID must be recorded in this shell for the cleanup.)
start_server() {
  local name="$1"
  shift
  "$SERVER" --listen=127.0.0.1:0 "$@" >"$TMP/$name.server.out" \
    2>"$TMP/$name.server.err" &
  local pid=$!
  PIDS+=("$pid")
  SERVER_PID="$pid"
  local port=""
  for _ in $(seq 100); do
    port="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
      "$TMP/$name.server.out")"
    if [[ -n "$port" ]]; then
      PORT="$port"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name echo server did not start:" >&2
  cat "$TMP/$name.server.err" >&2
  exit 1
}

# run_load NAME PORT PID [LOADGEN FLAGS...]: runs the load generator, bounded
# in time, against the server PID listening on PORT; appends its JSON line to
# $TMP/NAME.json and the server's CPU per call to $TMP/NAME.cpu.
run_load() {
  local name="$1" port="$2" pid="$3" before
  shift 3
  local limit
  limit="$(awk -v d="$DURATION" 'BEGIN { printf "%d", d + 60 }')"
  local rc=0
  before="$(cpu_ticks "$pid")"
  # In the background + wait, so a signal to this script is handled at once
  # (bash defers traps while a foreground child runs).
  timeout "$limit" "$LOADGEN" --target="127.0.0.1:$port" \
    --duration_s="$DURATION" --concurrency="$CONCURRENCY" "${EXTRA[@]}" "$@" \
    >"$TMP/$name.out" &
  PIDS+=("$!")
  wait "$!" || rc=$?
  grep '^{' "$TMP/$name.out" >"$TMP/$name.last" || true
  cpu_us_per_call "$before" "$(cpu_ticks "$pid")" "$TMP/$name.last" \
    >>"$TMP/$name.cpu"
  grep -v '^{' "$TMP/$name.out" || true
  grep '^{' "$TMP/$name.out" >>"$TMP/$name.json" || true
  return "$rc"
}

# Both servers stay up for the whole run; an idle one costs nothing.
PORT=""
start_server mtls --tls_dir="$TMP/pki"
MTLS_PORT="$PORT"
MTLS_PID="$SERVER_PID"
start_server plaintext
PLAIN_PORT="$PORT"
PLAIN_PID="$SERVER_PID"
: >"$TMP/mtls.json"
: >"$TMP/plaintext.json"

status=0
for _ in $(seq "$REPEATS"); do
  run_load mtls "$MTLS_PORT" "$MTLS_PID" --tls_dir="$TMP/pki" \
    --client=kim-koeln || status=1
  run_load plaintext "$PLAIN_PORT" "$PLAIN_PID" || status=1
done

while read -r line; do echo "mtls:      $line"; done <"$TMP/mtls.json"
while read -r line; do echo "plaintext: $line"; done <"$TMP/plaintext.json"
# Median QPS over the repeats (the only value when REPEATS=1).
median_qps() {
  sed -n 's/.*"qps":\([0-9.]*\).*/\1/p' "$1" | median
}
median() {
  sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print 0;
      else if (NR % 2) print v[(NR + 1) / 2];
      else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
awk -v t="$(median_qps "$TMP/mtls.json")" \
  -v p="$(median_qps "$TMP/plaintext.json")" -v n="$REPEATS" \
  'BEGIN { printf "median QPS over %d run(s): mTLS %.1f, plaintext %.1f\n", n, t, p
           if (p > 0) printf "mTLS/plaintext QPS ratio: %.2f\n", t / p }'
echo "median echo server CPU per call: mTLS $(median <"$TMP/mtls.cpu") us," \
  "plaintext $(median <"$TMP/plaintext.cpu") us"
exit "$status"
