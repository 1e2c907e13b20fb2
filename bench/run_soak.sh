#!/usr/bin/env bash
# A soak run of the four services (not part of CI): they run on loopback
# over mutual TLS with a fresh dev PKI and the demo agencies, wired like
# tools/lotse.sh (every service sends its events to the other three; the
# three others call identity). lotse_soak first measures what they sustain
# together (closed loop, CAPACITY_S seconds) unless RATE is given, then
# sends 80 % of it as a steady mixed load for DURATION_S seconds, printing
# each minute the p99 latency per service and the RSS of each process, and
# at the end a Markdown table and the last-minute / first-minute ratios.
#
# Usage: bench/run_soak.sh [DURATION_S=600] [RATE=0 (measure)]
# Environment:
#   BUILD_DIR    build tree (default build/ci) with the four services,
#                lotse_seed_demo and lotse_soak
#   CAPACITY_S   length of the capacity measurement (default 20)
#   INTERVAL_S   sampling interval (default 60)
#   FRACTION     fraction of the capacity sent (default 0.8)
#   BACKEND      sqlite (default) or postgres
#   KEEP_TMP     set to keep the temp dir (databases, service logs)
set -euo pipefail

DURATION="${1:-600}"
RATE="${2:-0}"
CAPACITY_S="${CAPACITY_S:-20}"
INTERVAL_S="${INTERVAL_S:-60}"
FRACTION="${FRACTION:-0.8}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/ci}"
# shellcheck source=bench/internal/bench_env.sh
source "$ROOT/bench/internal/bench_env.sh"
SOAK="$(bench_binary "$BUILD_DIR" lotse_soak)"
SEED="$(bench_binary "$BUILD_DIR" lotse_seed_demo)"
SERVICES=(identity cases courses placement)
bench_ensure_built "$BUILD_DIR" lotse_identity lotse_cases lotse_courses \
  lotse_placement lotse_seed_demo lotse_soak
backend_check
bench_init
if [[ "$BACKEND" == postgres ]]; then pg_start; fi
export LOTSE_ACCESS_RULES="$ROOT/config/access-rules.conf"
echo "backend: $BACKEND, build: $BUILD_DIR, $(nproc) cores"

declare -A PORT PID
for s in "${SERVICES[@]}"; do PORT[$s]="$(free_port)"; done
to() { echo "$1=127.0.0.1:${PORT[$1]}"; }
others() {
  local s out=()
  for s in "${SERVICES[@]}"; do [[ "$s" == "$1" ]] || out+=("$(to "$s")"); done
  local IFS=,
  echo "${out[*]}"
}

pids=()
for s in "${SERVICES[@]}"; do
  extra="--event_destinations=$(others "$s")"
  [[ "$s" == identity ]] ||
    extra+=" --identity_target=127.0.0.1:${PORT[identity]}"
  # shellcheck disable=SC2086  # extra holds several flags
  "$(bench_binary "$BUILD_DIR" "lotse_$s")" --listen="127.0.0.1:${PORT[$s]}" \
    --tls_dir="$TMP/pki" --database="$(db_url "$s")" --log_calls=false \
    $extra >>"$TMP/$s.out" 2>"$TMP/$s.err" &
  PID[$s]=$!
  PIDS+=("${PID[$s]}")
  pids+=("$s=${PID[$s]}")
done
for s in "${SERVICES[@]}"; do
  serving_port "$TMP/$s.err" "${PID[$s]}" >/dev/null
done
bounded 60 "$SEED" --identity="127.0.0.1:${PORT[identity]}" \
  --tls_dir="$TMP/pki" >"$TMP/seed.log" 2>&1

pid_list="$(IFS=,; echo "${pids[*]}")"
status=0
bounded $((${DURATION%.*} + ${CAPACITY_S%.*} + 180)) "$SOAK" \
  --identity="127.0.0.1:${PORT[identity]}" --cases="127.0.0.1:${PORT[cases]}" \
  --courses="127.0.0.1:${PORT[courses]}" \
  --placement="127.0.0.1:${PORT[placement]}" --tls_dir="$TMP/pki" \
  --rate="$RATE" --load_fraction="$FRACTION" --capacity_s="$CAPACITY_S" \
  --duration_s="$DURATION" --interval_s="$INTERVAL_S" \
  --pids="$pid_list" || status=$?
for s in "${SERVICES[@]}"; do
  if ! kill -0 "${PID[$s]}" 2>/dev/null; then
    echo "$s is no longer running; its log:" >&2
    tail -n 20 "$TMP/$s.err" >&2
    status=1
  fi
done
exit "$status"
