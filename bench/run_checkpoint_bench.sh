#!/usr/bin/env bash
# The cost of witnessed audit checkpoints on the write path: CreatePerson
# QPS against identity with checkpoints every second, next to the same load
# with checkpoints only at start and shutdown, in the same run. All four
# services run on loopback over mutual TLS with a fresh dev PKI, wired like
# tools/lotse.sh (every service sends its events, checkpoints among them,
# to the other three), each service with the same --audit_checkpoint_interval.
# The two settings alternate ROUNDS times on fresh databases, so drift of a
# shared machine falls on both; the summary gives each setting's median and
# their ratio.
#
# Usage: bench/run_checkpoint_bench.sh [DURATION_S=10] [ROUNDS=3]
#                                      [CONCURRENCY=8]
# Environment:
#   BUILD_DIR  build tree (default build/ci) with the four services,
#              lotse_seed_demo and lotse_identity_bench
#   FAST       the interval measured (default 1s)
#   SLOW       the interval that stands for "no checkpoints" (default 1h:
#              one at start-up, once the chains moved, and one at shutdown)
#   KEEP_TMP   set to keep the temp dir
#   BACKEND    sqlite (default) or postgres; PG_FSYNC off (default) or on
set -euo pipefail

DURATION="${1:-10}"
ROUNDS="${2:-3}"
CONCURRENCY="${3:-8}"
FAST="${FAST:-1s}"
SLOW="${SLOW:-1h}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/ci}"
# shellcheck source=bench/internal/bench_env.sh
source "$ROOT/bench/internal/bench_env.sh"
BENCH="$(bench_binary "$BUILD_DIR" lotse_identity_bench)"
SEED="$(bench_binary "$BUILD_DIR" lotse_seed_demo)"
SERVICES=(identity cases courses placement)
bench_ensure_built "$BUILD_DIR" lotse_identity lotse_cases lotse_courses \
  lotse_placement lotse_seed_demo lotse_identity_bench
backend_check
bench_init
if [[ "$BACKEND" == postgres ]]; then pg_start; fi
LIMIT=$((${DURATION%.*} + 60))
export LOTSE_ACCESS_RULES="$ROOT/config/access-rules.conf"
echo "backend:              $BACKEND"

declare -A PORT PID
for s in "${SERVICES[@]}"; do PORT[$s]="$(free_port)"; done
METRICS_PORT="$(free_port)"
to() { echo "$1=127.0.0.1:${PORT[$1]}"; }
others() {
  local s out=()
  for s in "${SERVICES[@]}"; do [[ "$s" == "$1" ]] || out+=("$(to "$s")"); done
  local IFS=,
  echo "${out[*]}"
}

# One measured run: fresh databases, the four services with checkpoint
# interval $2, the demo agencies, then CreatePerson for DURATION.
run_once() {
  local label=$1 interval=$2 s extra
  for s in "${SERVICES[@]}"; do
    extra="--event_destinations=$(others "$s")"
    if [[ "$s" == identity ]]; then
      extra+=" --metrics_listen=127.0.0.1:$METRICS_PORT"
    else
      extra+=" --identity_target=127.0.0.1:${PORT[identity]}"
    fi
    # shellcheck disable=SC2086  # extra holds several flags
    "$(bench_binary "$BUILD_DIR" "lotse_$s")" --listen="127.0.0.1:${PORT[$s]}" \
      --tls_dir="$TMP/pki" --database="$(db_url "${s}_$label")" \
      --log_calls=false --audit_checkpoint_interval="$interval" \
      $extra >>"$TMP/$s.out" 2>"$TMP/$s-$label.err" &
    PID[$s]=$!
    PIDS+=("${PID[$s]}")
  done
  for s in "${SERVICES[@]}"; do
    serving_port "$TMP/$s-$label.err" "${PID[$s]}" >/dev/null
  done
  bounded 60 "$SEED" --identity="127.0.0.1:${PORT[identity]}" \
    --tls_dir="$TMP/pki" >"$TMP/seed-$label.log" 2>&1
  local ok=0
  bounded "$LIMIT" "$BENCH" --mode=create --tls_dir="$TMP/pki" \
    --target="127.0.0.1:${PORT[identity]}" --concurrency="$CONCURRENCY" \
    --duration_s="$DURATION" >"$TMP/$label.json" || ok=1
  # How many checkpoints identity signed during the run (shows that the
  # fast setting published and the slow one did not).
  curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
    awk '/^lotse_audit_checkpoints_published_total/ { n += $NF } END { print n + 0 }' \
      >"$TMP/$label.published" || true
  for s in "${SERVICES[@]}"; do stop "${PID[$s]}"; done
  return "$ok"
}

status=0
for round in $(seq 1 "$ROUNDS"); do
  for setting in slow fast; do
    interval=$SLOW
    [[ "$setting" == fast ]] && interval=$FAST
    run_once "${setting}_$round" "$interval" || status=1
    qps="$(json_field qps "$TMP/${setting}_$round.json")"
    echo "round $round $setting (--audit_checkpoint_interval=$interval): CreatePerson c=$CONCURRENCY $qps calls/s, identity published $(cat "$TMP/${setting}_$round.published") checkpoints"
    echo "$qps" >>"$TMP/$setting.qps"
  done
done

median() { sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
awk -v f="$(median "$TMP/fast.qps")" -v s="$(median "$TMP/slow.qps")" 'BEGIN {
  printf "median CreatePerson QPS: checkpoints every '"$FAST"' %.0f, every '"$SLOW"' %.0f; ratio %.3f\n",
    f, s, (s > 0 ? f / s : 0) }'
exit "$status"
