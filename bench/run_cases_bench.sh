#!/usr/bin/env bash
# Cases service benchmarks next to the echo baseline of the
# same run, all on loopback over mutual TLS with a fresh dev PKI:
#   1. echo baseline: lotse_echo_server + lotse_loadgen;
#   2. step transitions (Accept/Start/Complete as the receiving agency)
#      against lotse_cases on a database seeded with REFERRED steps: QPS,
#      its ratio to the echo QPS (goal >= 0.25), the service's CPU per call
#      next to the echo server's; with BACKEND=postgres then pgbench -N at
#      the same client count against the same server, and the ratio
#      transition QPS / pgbench TPS (goal >= 1.0);
#   3. 100 watchers (WatchCaseEvents) connected while a writer commits
#      transitions at a steady rate: latency from the event's commit to
#      each watcher, p50/p99 (target p99 <= 50 ms);
#   4. end to end, course result -> case event: lotse_courses with its
#      events going to lotse_cases (--event_destinations), both calling a
#      stand-in identity (lotse_courses_bench --mode=fake_identity) for
#      person checks; COURSE_EVENTS bookings made, confirmed and their
#      courses started through the courses RPCs, a case with course steps
#      per booked person seeded in cases; then WATCHERS streams of
#      WatchCaseEvents while the provider records one result per booking
#      (RecordCourseResult) at COURSE_EVENT_RATE per second: latency from
#      the call's start to each watcher's receipt of the case's
#      COURSE_RESULT activity, p50/p99 (target p99 <= 50 ms);
#   5. N_EVENTS case events stored (service stopped), lotse_cases started
#      on that database (time to serving), then one watcher resumes after
#      cursor N_EVENTS - MISSED: time to the first missed event and to all.
#
# BACKEND=sqlite (default) uses SQLite files; BACKEND=postgres starts a
# throwaway PostgreSQL server on loopback (bench_env.sh pg_start: initdb +
# pg_ctl, as the OS user postgres when run as root; removed at exit),
# fsync=off and synchronous_commit=on (commits survive kill -9, not a power
# loss; PG_FSYNC=on for the power-loss-safe default).
#
# Usage: bench/run_cases_bench.sh [DURATION_S=10] [CONCURRENCY=32]
#                                 [N_EVENTS=1000000] [MISSED=1000]
# Environment:
#   BUILD_DIR  build tree holding lotse_cases, lotse_courses,
#              lotse_echo_server, lotse_loadgen, lotse_cases_bench,
#              lotse_courses_bench (default build/ci; missing
#              ones are built there; configure with -DLOTSE_BUILD_BENCH=ON)
#   CHANNELS   connections per load generator (default 2)
#   WATCHERS   watch streams in phases 3 and 4 (default 100)
#   COURSE_EVENTS      results recorded in phase 4 (default 500)
#   COURSE_EVENT_RATE  results per second in phase 4 (default 50)
#   KEEP_TMP   set to keep the temp dir (databases, logs)
#   BACKEND    sqlite (default) or postgres
#   PG_FSYNC   postgres only: off (default) or on
#
# Exit status is non-zero if any run fails.
set -euo pipefail

DURATION="${1:-10}"
CONCURRENCY="${2:-32}"
N_EVENTS="${3:-1000000}"
MISSED="${4:-1000}"
CHANNELS="${CHANNELS:-2}"
WATCHERS="${WATCHERS:-100}"
COURSE_EVENTS="${COURSE_EVENTS:-500}"
COURSE_EVENT_RATE="${COURSE_EVENT_RATE:-50}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/ci}"
# shellcheck source=bench/internal/bench_env.sh
source "$ROOT/bench/internal/bench_env.sh"
CASES="$(bench_binary "$BUILD_DIR" lotse_cases)"
ECHO_SERVER="$(bench_binary "$BUILD_DIR" lotse_echo_server)"
LOADGEN="$(bench_binary "$BUILD_DIR" lotse_loadgen)"
BENCH="$(bench_binary "$BUILD_DIR" lotse_cases_bench)"
COURSES="$(bench_binary "$BUILD_DIR" lotse_courses)"
COURSES_BENCH="$(bench_binary "$BUILD_DIR" lotse_courses_bench)"
bench_ensure_built "$BUILD_DIR" lotse_cases lotse_echo_server lotse_loadgen \
  lotse_cases_bench lotse_courses lotse_courses_bench
backend_check
bench_init
if [[ "$BACKEND" == postgres ]]; then pg_start; fi

LIMIT=$((${DURATION%.*} + 120))

# ---- 1. echo baseline ------------------------------------------------------
status=0
echo_start
echo_run echo vhs-koeln "$CONCURRENCY" "$CHANNELS" "$DURATION" "$LIMIT" ||
  status=1
echo_stop
echo "echo (mTLS):        $(grep '^{' "$TMP/echo.json")"

# start_cases NAME URL: starts lotse_cases on URL; sets CASES_PID, CASES_PORT
# and START_MS (process start to serving).
start_cases() {
  local name="$1" db="$2" t0
  t0="$(date +%s%N)"
  "$CASES" --listen=127.0.0.1:0 --tls_dir="$TMP/pki" --database="$db" \
    --log_calls=false >"$TMP/$name.out" 2>"$TMP/$name.err" &
  CASES_PID=$!
  PIDS+=("$CASES_PID")
  CASES_PORT="$(serving_port "$TMP/$name.err" "$CASES_PID")"
  START_MS=$((($(date +%s%N) - t0) / 1000000))
}

echo "backend:            $BACKEND"
# Enough REFERRED steps for three transitions each over the whole run.
STEPS=$((${DURATION%.*} * 3000 + 20000))

# ---- 2. step transition QPS --------------------------------------------------
TRANS_DB="$(db_url cases_transition)"
bounded 600 "$BENCH" --mode=seed --database="$TRANS_DB" --steps="$STEPS" \
  >"$TMP/seed.json"
echo "seed:               $(cat "$TMP/seed.json")"
start_cases transition "$TRANS_DB"
cpu_begin "$CASES_PID"
bounded "$LIMIT" "$BENCH" --mode=transition --target="127.0.0.1:$CASES_PORT" \
  --tls_dir="$TMP/pki" --steps="$STEPS" --concurrency="$CONCURRENCY" \
  --channels="$CHANNELS" --duration_s="$DURATION" >"$TMP/transition.json" ||
  status=1
cpu_end "$CASES_PID" transition
stop "$CASES_PID"
echo "transition (mTLS):  $(grep '^{' "$TMP/transition.json")"
grep '^first error' "$TMP/transition.json" || true
if [[ "$BACKEND" == postgres ]]; then
  pgbench_run pgbench "$CONCURRENCY" "$DURATION" || status=1
fi
write_summary "step transition c=$CONCURRENCY" transition

# ---- 3. watch latency with many watchers -----------------------------------
WATCH_DB="$(db_url cases_watch)"
bounded 600 "$BENCH" --mode=seed --database="$WATCH_DB" --steps=2000 \
  >/dev/null
start_cases watch "$WATCH_DB"
bounded 300 "$BENCH" --mode=watch --target="127.0.0.1:$CASES_PORT" \
  --tls_dir="$TMP/pki" --steps=2000 --watchers="$WATCHERS" --events=1000 \
  --rate=100 >"$TMP/watch.json" || status=1
stop "$CASES_PID"
echo "watch (mTLS):       $(grep '^{' "$TMP/watch.json")"

# ---- 4. course result -> case event, end to end ----------------------------
# courses (its events to cases) and cases (person checks at a stand-in
# identity that allows everything) as the run command wires them.
EV_COURSES_DB="$(db_url courses_events)"
bounded 600 "$COURSES_BENCH" --mode=load --database="$EV_COURSES_DB" \
  --courses=$((COURSE_EVENTS / 20 + 10)) --persons="$COURSE_EVENTS" \
  --race_seats=1 --ids_out="$TMP/course-ids" >/dev/null
EV_CASES_DB="$(db_url cases_course_events)"
bounded 600 "$BENCH" --mode=seed --database="$EV_CASES_DB" \
  --steps=$((COURSE_EVENTS * 10)) --courses_persons >/dev/null
"$COURSES_BENCH" --mode=fake_identity --tls_dir="$TMP/pki" \
  --listen=127.0.0.1:0 >"$TMP/identity.out" 2>"$TMP/identity.err" &
ID_PID=$!
PIDS+=("$ID_PID")
ID_PORT="$(wait_port "$TMP/identity.out" "$ID_PID" \
  's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p')"
"$CASES" --listen=127.0.0.1:0 --tls_dir="$TMP/pki" --database="$EV_CASES_DB" \
  --identity_target="127.0.0.1:$ID_PORT" --log_calls=false \
  >"$TMP/ev-cases.out" 2>"$TMP/ev-cases.err" &
CASES_PID=$!
PIDS+=("$CASES_PID")
CASES_PORT="$(serving_port "$TMP/ev-cases.err" "$CASES_PID")"
"$COURSES" --listen=127.0.0.1:0 --tls_dir="$TMP/pki" \
  --database="$EV_COURSES_DB" --identity_target="127.0.0.1:$ID_PORT" \
  --event_destinations="cases=127.0.0.1:$CASES_PORT" --log_calls=false \
  >"$TMP/ev-courses.out" 2>"$TMP/ev-courses.err" &
CO_PID=$!
PIDS+=("$CO_PID")
CO_PORT="$(serving_port "$TMP/ev-courses.err" "$CO_PID")"
bounded 900 "$COURSES_BENCH" --mode=course_events \
  --target="127.0.0.1:$CO_PORT" --cases_target="127.0.0.1:$CASES_PORT" \
  --tls_dir="$TMP/pki" --client=kim-koeln --ids="$TMP/course-ids" \
  --persons="$COURSE_EVENTS" --events="$COURSE_EVENTS" \
  --watchers="$WATCHERS" --rate="$COURSE_EVENT_RATE" \
  >"$TMP/course-events.json" || {
  status=1
  tail -n 5 "$TMP/ev-courses.err" "$TMP/ev-cases.err" >&2
}
stop "$CO_PID"
stop "$CASES_PID"
stop "$ID_PID"
grep '^first error' "$TMP/course-events.json" || true
echo "course result -> case event (mTLS): $(grep '^{' \
  "$TMP/course-events.json" || true)"

# ---- 5. resume after restart with N_EVENTS stored ----------------------------
RESUME_DB="$(db_url cases_resume)"
bounded 3600 "$BENCH" --mode=seed_events --database="$RESUME_DB" \
  --events="$N_EVENTS" >"$TMP/seed_events.json"
echo "seed events:        $(cat "$TMP/seed_events.json")"
if [[ "$BACKEND" == sqlite ]]; then
  echo "database file:      $(du -h "${RESUME_DB#sqlite:}" | cut -f1)"
fi
start_cases resume "$RESUME_DB"
echo "start to serving:   ${START_MS} ms with $N_EVENTS events stored"
for missed in "$MISSED" $((N_EVENTS / 2)); do
  bounded 600 "$BENCH" --mode=resume --target="127.0.0.1:$CASES_PORT" \
    --tls_dir="$TMP/pki" --events="$N_EVENTS" --missed="$missed" \
    >"$TMP/resume-$missed.json" || status=1
  echo "resume (mTLS):      $(grep '^{' "$TMP/resume-$missed.json")"
done
stop "$CASES_PID"
exit "$status"
