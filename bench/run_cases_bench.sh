#!/usr/bin/env bash
# Cases service benchmarks next to the echo baseline of the
# same run, all on loopback over mutual TLS with a fresh dev PKI:
#   1. echo baseline: lotse_echo_server + lotse_loadgen;
#   2. step transitions (Accept/Start/Complete as the receiving agency)
#      against lotse_cases on a database seeded with REFERRED steps, and
#      the ratio to the echo QPS (target >= 0.5);
#   3. 100 watchers (WatchCaseEvents) connected while a writer commits
#      transitions at a steady rate: latency from the event's commit to
#      each watcher, p50/p99 (target p99 <= 50 ms);
#   4. N_EVENTS case events stored (service stopped), lotse_cases started
#      on that database (time to serving), then one watcher resumes after
#      cursor N_EVENTS - MISSED: time to the first missed event and to all.
#
# BACKEND=sqlite (default) uses SQLite files; BACKEND=postgres starts a
# throwaway PostgreSQL server on loopback (initdb + pg_ctl, as the OS user
# postgres when run as root; removed at exit), fsync=off and
# synchronous_commit=on (commits survive kill -9, not a power loss; PG_FSYNC=on
# for the power-loss-safe default).
#
# Usage: bench/run_cases_bench.sh [DURATION_S=10] [CONCURRENCY=32]
#                                 [N_EVENTS=1000000] [MISSED=1000]
# Environment:
#   BUILD_DIR  build tree holding lotse_cases, lotse_echo_server,
#              lotse_loadgen, lotse_cases_bench (default build/ci; missing
#              ones are built there; configure with -DLOTSE_BUILD_BENCH=ON)
#   CHANNELS   connections per load generator (default 2)
#   WATCHERS   watch streams in phase 3 (default 100)
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
BACKEND="${BACKEND:-sqlite}"
PG_FSYNC="${PG_FSYNC:-off}"
case "$BACKEND" in
  sqlite | postgres) ;;
  *)
    echo "BACKEND must be sqlite or postgres" >&2
    exit 2
    ;;
esac
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/ci}"
# shellcheck source=bench/internal/bench_env.sh
source "$ROOT/bench/internal/bench_env.sh"
CASES="$(bench_binary "$BUILD_DIR" lotse_cases)"
ECHO_SERVER="$(bench_binary "$BUILD_DIR" lotse_echo_server)"
LOADGEN="$(bench_binary "$BUILD_DIR" lotse_loadgen)"
BENCH="$(bench_binary "$BUILD_DIR" lotse_cases_bench)"
bench_ensure_built "$BUILD_DIR" lotse_cases lotse_echo_server lotse_loadgen \
  lotse_cases_bench
bench_init

# ---- PostgreSQL server (BACKEND=postgres) ----------------------------------
PG_DATA=""
# shellcheck disable=SC2317  # invoked at exit
pg_stop() {
  if [[ -n "${PG_DATA:-}" ]]; then
    as_pg_owner "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -s \
      >/dev/null 2>&1 || true
  fi
}
bench_on_exit pg_stop
as_pg_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}
if [[ "$BACKEND" == postgres ]]; then
  PG_BIN="$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  [[ -x "$PG_BIN/pg_ctl" ]] || {
    echo "no PostgreSQL server under /usr/lib/postgresql" >&2
    exit 1
  }
  chmod 755 "$TMP"
  mkdir "$TMP/pg"
  [[ $(id -u) -eq 0 ]] && chown postgres: "$TMP/pg"
  as_pg_owner "$PG_BIN/initdb" -D "$TMP/pg/data" -U postgres --auth=trust \
    -E UTF8 --locale=C.UTF-8 --no-sync >"$TMP/pg-initdb.log" 2>&1 || {
    cat "$TMP/pg-initdb.log" >&2
    exit 1
  }
  PG_DATA="$TMP/pg/data"
  PG_PORT="$(python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  as_pg_owner "$PG_BIN/pg_ctl" start -D "$PG_DATA" -w -t 60 -s \
    -l "$TMP/pg/server.log" \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $TMP/pg \
        -c fsync=$PG_FSYNC -c synchronous_commit=on \
        -c max_connections=200 -c shared_buffers=256MB" >/dev/null
  echo "postgres:           $("$PG_BIN/postgres" --version), port $PG_PORT," \
    "fsync=$PG_FSYNC synchronous_commit=on"
fi

db_url() {
  if [[ "$BACKEND" == postgres ]]; then
    psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
      -c "CREATE DATABASE $1" >/dev/null
    echo "postgresql://postgres@127.0.0.1:$PG_PORT/$1"
  else
    echo "sqlite:$TMP/$1.db"
  fi
}

LIMIT=$((${DURATION%.*} + 120))

# ---- 1. echo baseline ------------------------------------------------------
status=0
echo_start
echo_run echo vhs-koeln "$CONCURRENCY" "$CHANNELS" "$DURATION" "$LIMIT" ||
  status=1
echo_stop
echo "echo (mTLS):        $(grep '^{' "$TMP/echo.json")"
ECHO_QPS="$(json_field qps "$TMP/echo.json")"

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
bounded "$LIMIT" "$BENCH" --mode=transition --target="127.0.0.1:$CASES_PORT" \
  --tls_dir="$TMP/pki" --steps="$STEPS" --concurrency="$CONCURRENCY" \
  --channels="$CHANNELS" --duration_s="$DURATION" >"$TMP/transition.json" ||
  status=1
stop "$CASES_PID"
echo "transition (mTLS):  $(grep '^{' "$TMP/transition.json")"
grep '^first error' "$TMP/transition.json" || true
TRANS_QPS="$(json_field qps "$TMP/transition.json")"
awk -v c="$TRANS_QPS" -v e="$ECHO_QPS" 'BEGIN {
  printf "step transition QPS %.1f / echo QPS %.1f = %.3f (target >= 0.5)\n",
    c, e, (e > 0 ? c / e : 0) }'

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

# ---- 4. resume after restart with N_EVENTS stored ----------------------------
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
