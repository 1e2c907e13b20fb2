#!/usr/bin/env bash
# Identity service benchmarks next to the echo baseline of
# the same run, all on loopback over mutual TLS with a fresh dev PKI:
#   1. echo baseline: lotse_echo_server + lotse_loadgen;
#   2. CreatePerson QPS against lotse_identity on a fresh database, its
#      ratio to the echo QPS (goal >= 0.15) and the service's CPU per call
#      next to the echo server's; with BACKEND=postgres also pgbench -N at
#      the same client count against the same server (service stopped) and
#      CreatePerson QPS / pgbench TPS (goal >= 1.0);
#   3. N synthetic persons bulk-loaded into a second database (service
#      stopped), then FindDuplicates latency for spelling variants of loaded
#      persons, at concurrency 1 (latency of one caller) and at CONCURRENCY,
#      with the identity process's RSS after start-up on the loaded database
#      and after the runs.
#
# BACKEND=sqlite (default) uses SQLite files; BACKEND=postgres starts a
# throwaway PostgreSQL server on loopback (bench_env.sh pg_start: initdb +
# pg_ctl, as the OS user postgres when run as root; removed at exit) with
# one database per phase.
#
# Durability: lotse_identity runs with the storage defaults. SQLite: WAL mode
# with synchronous=NORMAL, every commit is in the WAL before the call
# answers, so an acknowledged write survives kill -9 of the process (not
# necessarily a power loss; that is synchronous=FULL). PostgreSQL: the same
# promise, synchronous_commit=on (the commit's WAL is written before the
# server acknowledges it) with fsync=off, so commits survive kill -9 of the
# service or of the server but not a power loss; PG_FSYNC=on makes it the
# power-loss-safe default instead. pgbench runs with the same settings.
#
# Usage: bench/run_identity_bench.sh [N_PERSONS=100000] [DURATION_S=10]
#                                    [CONCURRENCY=32]
# Environment:
#   BUILD_DIR  build tree (default build/ci at the repo root) holding
#              lotse_identity, lotse_seed_demo, lotse_echo_server,
#              lotse_loadgen, lotse_identity_bench; missing ones are built
#              there (configure it with -DLOTSE_BUILD_BENCH=ON)
#   CHANNELS   connections per load generator (default 2)
#   KEEP_TMP   set to keep the temp dir (databases, logs) for inspection
#   BACKEND    sqlite (default) or postgres
#   PG_FSYNC   postgres only: off (default) or on
#
# Exit status is non-zero if any run fails (an RPC error, no calls).
set -euo pipefail

N_PERSONS="${1:-100000}"
DURATION="${2:-10}"
CONCURRENCY="${3:-32}"
CHANNELS="${CHANNELS:-2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/ci}"
# shellcheck source=bench/internal/bench_env.sh
source "$ROOT/bench/internal/bench_env.sh"
IDENTITY="$(bench_binary "$BUILD_DIR" lotse_identity)"
SEED="$(bench_binary "$BUILD_DIR" lotse_seed_demo)"
ECHO_SERVER="$(bench_binary "$BUILD_DIR" lotse_echo_server)"
LOADGEN="$(bench_binary "$BUILD_DIR" lotse_loadgen)"
BENCH="$(bench_binary "$BUILD_DIR" lotse_identity_bench)"
bench_ensure_built "$BUILD_DIR" lotse_identity lotse_seed_demo \
  lotse_echo_server lotse_loadgen lotse_identity_bench
backend_check
bench_init
if [[ "$BACKEND" == postgres ]]; then pg_start; fi
LIMIT=$((${DURATION%.*} + 60))  # bound on every timed run

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# ---- 1. echo baseline ------------------------------------------------------
status=0
echo_start
echo_run echo kim-koeln "$CONCURRENCY" "$CHANNELS" "$DURATION" "$LIMIT" ||
  status=1
echo_stop
echo "echo (mTLS):        $(grep '^{' "$TMP/echo.json")"
ECHO_QPS="$(json_field qps "$TMP/echo.json")"

# start_identity NAME URL: starts lotse_identity on database URL, registers
# the demo agencies (kim-koeln among them) as lotse-admin, sets ID_PID and
# ID_PORT.
start_identity() {
  local name="$1" db="$2"
  "$IDENTITY" --listen=127.0.0.1:0 --tls_dir="$TMP/pki" \
    --database="$db" --access_rules="$ROOT/config/access-rules.conf" \
    --log_calls=false >"$TMP/$name.out" 2>"$TMP/$name.err" &
  ID_PID=$!
  PIDS+=("$ID_PID")
  ID_PORT="$(wait_port "$TMP/$name.err" "$ID_PID" \
    's/.*"msg":"serving".*"port":\([0-9]*\).*/\1/p')"
  bounded 60 "$SEED" --identity="127.0.0.1:$ID_PORT" --tls_dir="$TMP/pki" \
    >"$TMP/$name.seed" 2>&1 || {
    cat "$TMP/$name.seed" >&2
    return 1
  }
}

# ---- 2. CreatePerson QPS ---------------------------------------------------
echo "backend:            $BACKEND"
start_identity create "$(db_url identity_create)"
cpu_begin "$ID_PID"
bounded "$LIMIT" "$BENCH" --mode=create --target="127.0.0.1:$ID_PORT" \
  --tls_dir="$TMP/pki" --client=kim-koeln --concurrency="$CONCURRENCY" \
  --channels="$CHANNELS" --duration_s="$DURATION" >"$TMP/create.json" ||
  status=1
cpu_end "$ID_PID" create
stop "$ID_PID"
echo "create (mTLS):      $(grep '^{' "$TMP/create.json")"
if [[ "$BACKEND" == postgres ]]; then
  pgbench_run pgbench "$CONCURRENCY" "$DURATION" || status=1
fi
write_summary "CreatePerson c=$CONCURRENCY" create
CREATE_QPS="$(json_field qps "$TMP/create.json")"
awk -v c="$CREATE_QPS" -v e="$ECHO_QPS" 'BEGIN {
  printf "CreatePerson QPS %.1f / echo QPS %.1f = %.3f (goal >= 0.15)\n",
    c, e, (e > 0 ? c / e : 0) }'

# ---- 3. FindDuplicates with N persons loaded -------------------------------
# The loader writes through PersonStore (blocking keys exactly as the service
# derives them) in large transactions while no service holds the file.
FIND_DB="$(db_url identity_find)"
bounded $((N_PERSONS / 500 + 120)) "$BENCH" --mode=load \
  --database="$FIND_DB" --persons="$N_PERSONS" \
  >"$TMP/load.json" 2>"$TMP/load.err" || {
  tail -n 5 "$TMP/load.err" >&2
  exit 1
}
echo "load:               $(cat "$TMP/load.json")"
if [[ "$BACKEND" == sqlite ]]; then
  echo "database file:      $(du -h "${FIND_DB#sqlite:}" | cut -f1)"
else
  # As after any bulk import: planner statistics for the loaded tables
  # (autovacuum would gather them too, but later).
  psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d identity_find -c ANALYZE
  echo "database size:      $(psql -At -h 127.0.0.1 -p "$PG_PORT" -U postgres \
    -d identity_find -c "SELECT pg_size_pretty(pg_database_size('identity_find'))")"
fi

start_identity find "$FIND_DB"
RSS_LOADED="$(rss_kib "$ID_PID")"
for c in 1 "$CONCURRENCY"; do
  bounded "$LIMIT" "$BENCH" --mode=find --target="127.0.0.1:$ID_PORT" \
    --tls_dir="$TMP/pki" --client=kim-koeln --concurrency="$c" \
    --channels="$CHANNELS" --duration_s="$DURATION" \
    --persons="$N_PERSONS" >"$TMP/find-$c.json" || status=1
  echo "find c=$c (mTLS):    $(grep '^{' "$TMP/find-$c.json")"
  grep -v '^{' "$TMP/find-$c.json" || true
done
RSS_AFTER="$(rss_kib "$ID_PID")"
stop "$ID_PID"
echo "identity VmRSS with $N_PERSONS persons: after start ${RSS_LOADED} KiB," \
  "after the FindDuplicates runs ${RSS_AFTER} KiB"
exit "$status"
