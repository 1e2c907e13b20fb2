#!/usr/bin/env bash
# A person's transparency report at scale, next to the echo baseline of the
# same run, all on loopback over mutual TLS with a fresh dev PKI:
#   1. echo baseline at concurrency 1 (the latency floor of one mTLS round
#      trip on this machine);
#   2. the four services on fresh databases, wired like tools/lotse.sh
#      (events, identity's --audit_peers), the demo agencies seeded; a
#      person registered by kim-koeln, who opens the person's case and so
#      becomes the case owner; then the services are stopped;
#   3. ROWS audit records appended to the change chain of each service's
#      database (lotse_transparency_bench --mode=load_audit: common/audit's
#      AppendAudit, so chain hashes and the person index are the service's
#      own), PERSON_ROWS / 4 of them in each about the person;
#   4. the services started again on those databases; GetTransparencyReport
#      for the person at concurrency 1 for DURATION_S: p50 and p99 (target
#      p99 <= 50 ms), next to the echo p50 and p99;
#   5. VerifyAuditChain of each service's change chain (ROWS records and
#      more): rows per second, next to the echo QPS at concurrency 1;
#   6. BACKEND=postgres: pgbench -N at concurrency 1 against the same
#      server, services stopped.
# Write QPS with and without witnessed checkpoints: run_checkpoint_bench.sh.
#
# Usage: bench/run_transparency_bench.sh [ROWS=1000000] [DURATION_S=20]
# Environment:
#   BUILD_DIR     build tree (default build/ci) with the four services,
#                 lotse_seed_demo, lotse_transparency_bench,
#                 lotse_echo_server, lotse_loadgen
#   PERSON_ROWS   records about the person over the four services
#                 (default 1000)
#   KEEP_TMP      set to keep the temp dir
#   BACKEND       sqlite (default) or postgres; PG_FSYNC off (default) or on
set -euo pipefail

ROWS="${1:-1000000}"
DURATION="${2:-20}"
PERSON_ROWS="${PERSON_ROWS:-1000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/ci}"
# shellcheck source=bench/internal/bench_env.sh
source "$ROOT/bench/internal/bench_env.sh"
BENCH="$(bench_binary "$BUILD_DIR" lotse_transparency_bench)"
SEED="$(bench_binary "$BUILD_DIR" lotse_seed_demo)"
ECHO_SERVER="$(bench_binary "$BUILD_DIR" lotse_echo_server)"
LOADGEN="$(bench_binary "$BUILD_DIR" lotse_loadgen)"
SERVICES=(identity cases courses placement)
bench_ensure_built "$BUILD_DIR" lotse_identity lotse_cases lotse_courses \
  lotse_placement lotse_seed_demo lotse_transparency_bench lotse_echo_server \
  lotse_loadgen
backend_check
bench_init
if [[ "$BACKEND" == postgres ]]; then pg_start; fi
LIMIT=$((${DURATION%.*} + 60))
export LOTSE_ACCESS_RULES="$ROOT/config/access-rules.conf"

# ---- 1. echo baseline ------------------------------------------------------
status=0
echo_start
echo_run echo-c1 kim-koeln 1 1 "$DURATION" "$LIMIT" || status=1
echo_stop
echo "echo c=1 (mTLS):      $(grep '^{' "$TMP/echo-c1.json")"
echo "backend:              $BACKEND"

# ---- 2. the services, the person and the case ------------------------------
declare -A PORT DB PID
for s in "${SERVICES[@]}"; do
  PORT[$s]="$(free_port)"
  DB[$s]="$(db_url "$s")"
done
to() { echo "$1=127.0.0.1:${PORT[$1]}"; }
declare -A EXTRA=(
  [identity]="--event_destinations=$(to courses),$(to cases),$(to placement) --audit_peers=$(to cases),$(to courses),$(to placement)"
  [cases]="--identity_target=127.0.0.1:${PORT[identity]} --event_destinations=$(to identity)"
  [courses]="--identity_target=127.0.0.1:${PORT[identity]} --event_destinations=$(to identity),$(to cases),$(to placement)"
  [placement]="--identity_target=127.0.0.1:${PORT[identity]} --event_destinations=$(to identity),$(to cases)"
)
start_services() {
  local s
  for s in "${SERVICES[@]}"; do
    # shellcheck disable=SC2086  # EXTRA holds several flags
    "$(bench_binary "$BUILD_DIR" "lotse_$s")" --listen="127.0.0.1:${PORT[$s]}" \
      --tls_dir="$TMP/pki" --database="${DB[$s]}" --log_calls=false \
      ${EXTRA[$s]} >>"$TMP/$s.out" 2>>"$TMP/$s.err" &
    PID[$s]=$!
    PIDS+=("${PID[$s]}")
  done
  for s in "${SERVICES[@]}"; do
    : >"$TMP/$s.serving"
    serving_port "$TMP/$s.err" "${PID[$s]}" >"$TMP/$s.serving"
    # serving_port reads the first "serving" line: truncate the log so a
    # restart waits for its own.
    : >"$TMP/$s.err"
  done
}
stop_services() {
  local s
  for s in "${SERVICES[@]}"; do stop "${PID[$s]}"; done
}
start_services
bounded 60 "$SEED" --identity="127.0.0.1:${PORT[identity]}" \
  --tls_dir="$TMP/pki" >"$TMP/seed.log" 2>&1
bounded 120 "$BENCH" --mode=setup --tls_dir="$TMP/pki" \
  --identity="127.0.0.1:${PORT[identity]}" \
  --cases="127.0.0.1:${PORT[cases]}" >"$TMP/setup.json"
PERSON="$(sed -n 's/.*"person":"\([^"]*\)".*/\1/p' "$TMP/setup.json")"
echo "setup:                $(cat "$TMP/setup.json")"
stop_services

# ---- 3. ROWS audit records per service -------------------------------------
for s in "${SERVICES[@]}"; do
  bounded $((ROWS / 1000 + 600)) "$BENCH" --mode=load_audit \
    --database="${DB[$s]}" --service="$s" --rows="$ROWS" \
    --person="$PERSON" --person_rows=$((PERSON_ROWS / 4)) \
    >"$TMP/load-$s.json"
  echo "load $s: $(cat "$TMP/load-$s.json")"
done

# ---- 4. the report at concurrency 1 -----------------------------------------
start_services
cpu_begin "${PID[identity]}"
bounded "$LIMIT" "$BENCH" --mode=report --tls_dir="$TMP/pki" \
  --identity="127.0.0.1:${PORT[identity]}" --person="$PERSON" \
  --concurrency=1 --duration_s="$DURATION" >"$TMP/report.json" || status=1
cpu_end "${PID[identity]}" report
grep -v '^report ' "$TMP/report.json" || true
awk -v p50="$(json_field p50_us "$TMP/report.json")" \
  -v p99="$(json_field p99_us "$TMP/report.json")" \
  -v e50="$(json_field p50_us "$TMP/echo-c1.json")" \
  -v e99="$(json_field p99_us "$TMP/echo-c1.json")" 'BEGIN {
  printf "GetTransparencyReport c=1 [%s rows/service]: p50 %.0f us (%.1fx echo p50 %.0f us), p99 %.0f us (%.1fx echo p99 %.0f us; target <= 50000 us)\n",
    "'"$ROWS"'", p50, (e50 > 0 ? p50 / e50 : 0), e50, p99,
    (e99 > 0 ? p99 / e99 : 0), e99 }'

# ---- 5. VerifyAuditChain ---------------------------------------------------
for s in "${SERVICES[@]}"; do
  bounded 1800 "$BENCH" --mode=verify --tls_dir="$TMP/pki" \
    --target="127.0.0.1:${PORT[$s]}" >"$TMP/verify-$s.json" || status=1
  awk -v r="$(json_field rows_per_s "$TMP/verify-$s.json")" \
    -v q="$(json_field qps "$TMP/echo-c1.json")" 'BEGIN {
    printf "VerifyAuditChain %-10s %s rows/s (%.1f rows per echo call at c=1, echo %.0f calls/s)\n",
      "'"$s"'", r, (q > 0 ? r / q : 0), q }'
  grep '^{' "$TMP/verify-$s.json" || true
done
stop_services

# ---- 6. committing baseline --------------------------------------------------
if [[ "$BACKEND" == postgres ]]; then
  pgbench_run pgbench 1 "$DURATION" || status=1
fi
exit "$status"
