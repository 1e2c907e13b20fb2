#!/usr/bin/env bash
# Courses service benchmarks next to the echo baseline of
# the same run, all on loopback over mutual TLS with a fresh dev PKI:
#   1. echo baseline: lotse_echo_server + lotse_loadgen;
#   2. N_COURSES synthetic courses, a race course with RACE_SEATS seats and
#      N_PERSONS persons with admissions bulk-loaded into a fresh database
#      (service stopped); the demo agencies are written into the courses'
#      registry as identity's events would;
#   3. lotse_courses on that database, calling a stand-in identity
#      (lotse_courses_bench --mode=fake_identity, mTLS) for every person
#      check, because the real identity does not admit service callers yet;
#   4. CreateBooking QPS uncontended (each call a new person, another
#      course), its ratio to the echo QPS (goal >= 0.15) and the service's
#      CPU per call next to the echo server's;
#   5. the race: RACE_CLIENTS concurrent bookers with distinct persons for
#      the race course; exactly RACE_SEATS bookings, 0 overbooked; attempts
#      per second against the uncontended QPS;
#   6. SearchCourses near a random demo postal code (one kind, 30 km, 20 per
#      page) with N_COURSES courses: latency at concurrency 1 and
#      CONCURRENCY (the echo baseline is also run at concurrency 1 for the
#      latency floor of one mTLS round trip on this machine);
#   7. BACKEND=postgres: pgbench -N at CONCURRENCY clients against the same
#      server (service stopped) and CreateBooking QPS / pgbench TPS (goal
#      >= 1.0); then the summary line.
#
# Durability: lotse_courses runs with the storage defaults (SQLite WAL,
# synchronous=NORMAL) and group commit on. BACKEND=postgres starts a
# throwaway PostgreSQL server on loopback (bench_env.sh pg_start) with
# synchronous_commit=on and fsync=off (PG_FSYNC=on for the power-loss-safe
# setting); pgbench runs against it with the same settings.
#
# Usage: bench/run_courses_bench.sh [N_COURSES=50000] [DURATION_S=10]
#                                   [CONCURRENCY=32]
# Environment:
#   BUILD_DIR     build tree (default build/ci) with lotse_courses,
#                 lotse_courses_bench, lotse_echo_server, lotse_loadgen
#   CHANNELS      connections per load generator (default 2)
#   RACE_CLIENTS  contended bookers (default 500); RACE_SEATS (default 10)
#   N_PERSONS     persons with admissions (default 200000)
#   KEEP_TMP      set to keep the temp dir
#   BACKEND       sqlite (default) or postgres; PG_FSYNC off (default) or on
set -euo pipefail

N_COURSES="${1:-50000}"
DURATION="${2:-10}"
CONCURRENCY="${3:-32}"
CHANNELS="${CHANNELS:-2}"
RACE_CLIENTS="${RACE_CLIENTS:-500}"
RACE_SEATS="${RACE_SEATS:-10}"
N_PERSONS="${N_PERSONS:-200000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/ci}"
# shellcheck source=bench/internal/bench_env.sh
source "$ROOT/bench/internal/bench_env.sh"
COURSES="$(bench_binary "$BUILD_DIR" lotse_courses)"
BENCH="$(bench_binary "$BUILD_DIR" lotse_courses_bench)"
ECHO_SERVER="$(bench_binary "$BUILD_DIR" lotse_echo_server)"
LOADGEN="$(bench_binary "$BUILD_DIR" lotse_loadgen)"
bench_ensure_built "$BUILD_DIR" lotse_courses lotse_courses_bench \
  lotse_echo_server lotse_loadgen
backend_check
bench_init
if [[ "$BACKEND" == postgres ]]; then pg_start; fi
LIMIT=$((${DURATION%.*} + 60))

# ---- 1. echo baseline ------------------------------------------------------
status=0
echo_start
echo_run echo kim-koeln "$CONCURRENCY" "$CHANNELS" "$DURATION" "$LIMIT" ||
  status=1
# The same at concurrency 1: the latency floor search latency compares with.
echo_run echo-c1 kim-koeln 1 1 "$DURATION" "$LIMIT" || status=1
echo_stop
echo "echo (mTLS):          $(grep '^{' "$TMP/echo.json")"
echo "echo c=1 (mTLS):      $(grep '^{' "$TMP/echo-c1.json")"

# ---- 2. load ---------------------------------------------------------------
echo "backend:              $BACKEND"
DB="$(db_url courses)"
bounded $((N_COURSES / 1000 + N_PERSONS / 2000 + 120)) "$BENCH" --mode=load \
  --database="$DB" --courses="$N_COURSES" --persons="$N_PERSONS" \
  --race_seats="$RACE_SEATS" --ids_out="$TMP/ids" >"$TMP/load.json"
echo "load:                 $(cat "$TMP/load.json")"

# ---- 3. stand-in identity and the service ----------------------------------
"$BENCH" --mode=fake_identity --tls_dir="$TMP/pki" --listen=127.0.0.1:0 \
  >"$TMP/identity.out" 2>"$TMP/identity.err" &
ID_PID=$!
PIDS+=("$ID_PID")
ID_PORT="$(wait_port "$TMP/identity.out" "$ID_PID" \
  's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p')"
"$COURSES" --listen=127.0.0.1:0 --tls_dir="$TMP/pki" --database="$DB" \
  --identity_target="127.0.0.1:$ID_PORT" --log_calls=false \
  >"$TMP/courses.out" 2>"$TMP/courses.err" &
CO_PID=$!
PIDS+=("$CO_PID")
CO_PORT="$(serving_port "$TMP/courses.err" "$CO_PID")"
run() {  # run NAME ARGS...: one bench run against the service
  local name="$1"
  shift
  bounded "$LIMIT" "$BENCH" --target="127.0.0.1:$CO_PORT" \
    --tls_dir="$TMP/pki" --channels="$CHANNELS" --duration_s="$DURATION" \
    --ids="$TMP/ids" --persons="$N_PERSONS" "$@" >"$TMP/$name.json" ||
    status=1
  printf '%-22s%s\n' "$name (mTLS):" "$(grep '^{' "$TMP/$name.json" || true)"
  grep -v '^{' "$TMP/$name.json" | grep -v '^\(book\|race\|search\) ' || true
}

# ---- 4. uncontended booking ------------------------------------------------
cpu_begin "$CO_PID"
run book --mode=book --client=kim-koeln --concurrency="$CONCURRENCY"
cpu_end "$CO_PID" book
BOOK_QPS="$(json_field qps "$TMP/book.json")"

# ---- 5. the race for the last seats ----------------------------------------
cpu_begin "$CO_PID"
run race --mode=race --client=jobcenter-koeln --concurrency="$RACE_CLIENTS" \
  --race_seats="$RACE_SEATS"
cpu_end "$CO_PID" race
RACE_QPS="$(json_field qps "$TMP/race.json")"
awk -v r="$RACE_QPS" -v b="$BOOK_QPS" 'BEGIN {
  printf "contended QPS %.1f / uncontended QPS %.1f = %.3f (target >= 0.5)\n",
    r, b, (b > 0 ? r / b : 0) }'

# ---- 6. search -------------------------------------------------------------
for c in 1 "$CONCURRENCY"; do
  run "search-c$c" --mode=search --client=kim-koeln --concurrency="$c"
done
echo "search p99 with $N_COURSES courses: c=1 $(json_field p99_us \
  "$TMP/search-c1.json") us, c=$CONCURRENCY $(json_field p99_us \
  "$TMP/search-c$CONCURRENCY.json") us (target <= 5000 us); echo c=1 p99" \
  "$(json_field p99_us "$TMP/echo-c1.json") us"
stop "$CO_PID"
stop "$ID_PID"

# ---- 7. committing baseline and summary --------------------------------------
if [[ "$BACKEND" == postgres ]]; then
  pgbench_run pgbench "$CONCURRENCY" "$DURATION" || status=1
fi
write_summary "CreateBooking c=$CONCURRENCY" book
echo "CreateBooking race c=$RACE_CLIENTS [$BACKEND]: server CPU" \
  "$(cat "$TMP/race.cpu") us/attempt, postgres CPU $(cat "$TMP/race.pgcpu")" \
  "us/attempt (0 on sqlite)"
exit "$status"
