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
#      and after the runs, and its start-up time: first with the in-memory
#      key index (--key_index=true, the default), then the same runs with
#      the SQL lookups (--key_index=false), and the ratios of the two.
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
#   LOADED_DB  sqlite only: a file an earlier lotse_identity_bench
#              --mode=load wrote with N_PERSONS persons; step 3 copies it
#              instead of loading
#   IDENTITY_ARGS  further flags for lotse_identity in step 3, e.g.
#              --match_form_cache_mb=2600 (the default 256 MB holds the
#              match forms of about a million persons)
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
# LOADED_DB=path (SQLite): copy that file, written by an earlier --mode=load
# of the same N_PERSONS, instead of loading again (10 M take an hour).
FIND_DB="$(db_url identity_find)"
if [[ -n "${LOADED_DB:-}" && "$BACKEND" == sqlite ]]; then
  cp "$LOADED_DB" "${FIND_DB#sqlite:}"
  echo "load:               copied $LOADED_DB"
else
  bounded $((N_PERSONS / 200 + 120)) "$BENCH" --mode=load \
    --database="$FIND_DB" --persons="$N_PERSONS" \
    >"$TMP/load.json" 2>"$TMP/load.err" || {
    tail -n 5 "$TMP/load.err" >&2
    exit 1
  }
  echo "load:               $(cat "$TMP/load.json")"
fi
if [[ "$BACKEND" == sqlite ]]; then
  echo "database file:      $(du -h "${FIND_DB#sqlite:}" | cut -f1)"
else
  # As after any bulk import: planner statistics for the loaded tables
  # (autovacuum would gather them too, but later).
  psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d identity_find -c ANALYZE
  echo "database size:      $(psql -At -h 127.0.0.1 -p "$PG_PORT" -U postgres \
    -d identity_find -c "SELECT pg_size_pretty(pg_database_size('identity_find'))")"
fi

# start_find NAME FLAG: lotse_identity on the loaded database with FLAG
# (--key_index=true or false), waiting as long as its start-up takes (the
# key index is built before it serves); sets ID_PID, ID_PORT and START_S
# (launch to "serving").
start_find() {
  local name="$1" t0
  t0="$(date +%s.%N)"
  # shellcheck disable=SC2086  # IDENTITY_ARGS is split into flags
  "$IDENTITY" --listen=127.0.0.1:0 --tls_dir="$TMP/pki" \
    --database="$FIND_DB" --access_rules="$ROOT/config/access-rules.conf" \
    --log_calls=false "$2" ${IDENTITY_ARGS:-} \
    >"$TMP/$name.out" 2>"$TMP/$name.err" &
  ID_PID=$!
  PIDS+=("$ID_PID")
  ID_PORT=""
  for _ in $(seq 9000); do
    ID_PORT="$(sed -n 's/.*"msg":"serving".*"port":\([0-9]*\).*/\1/p' \
      "$TMP/$name.err" | head -n 1)"
    [[ -n "$ID_PORT" ]] && break
    kill -0 "$ID_PID" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n "$ID_PORT" ]] || {
    echo "server did not start:" >&2
    cat "$TMP/$name.err" >&2
    return 1
  }
  START_S="$(awk -v t0="$t0" -v t1="$(date +%s.%N)" \
    'BEGIN { printf "%.1f", t1 - t0 }')"
  # The match-form cache fills in the background after SERVING; the
  # latency runs measure the filled cache (FILL_S: launch to filled).
  FILL_S=""
  for _ in $(seq 12000); do
    if grep -q '"msg":"match-form cache filled"' "$TMP/$name.err"; then
      FILL_S="$(awk -v t0="$t0" -v t1="$(date +%s.%N)" \
        'BEGIN { printf "%.1f", t1 - t0 }')"
      break
    fi
    kill -0 "$ID_PID" 2>/dev/null || break
    sleep 0.1
  done
  bounded 60 "$SEED" --identity="127.0.0.1:$ID_PORT" --tls_dir="$TMP/pki" \
    >"$TMP/$name.seed" 2>&1 || {
    cat "$TMP/$name.seed" >&2
    return 1
  }
}

# The same queries against the in-memory key index and against the SQL
# lookups (--key_index=false), one after the other in this run.
for index in true false; do
  start_find "find-$index" "--key_index=$index"
  RSS_LOADED="$(rss_kib "$ID_PID")"
  echo "key_index=$index: serving ${START_S} s after launch;" \
    "$(grep -o '"msg":"key index built".*' "$TMP/find-$index.err" || true)"
  echo "match-form cache filled ${FILL_S:-never} s after launch;" \
    "$(grep -o '"msg":"match-form cache filled".*' "$TMP/find-$index.err" || true)"
  for c in 1 "$CONCURRENCY"; do
    bounded "$LIMIT" "$BENCH" --mode=find --target="127.0.0.1:$ID_PORT" \
      --tls_dir="$TMP/pki" --client=kim-koeln --concurrency="$c" \
      --channels="$CHANNELS" --duration_s="$DURATION" \
      --persons="$N_PERSONS" >"$TMP/find-$index-$c.json" || status=1
    echo "find key_index=$index c=$c (mTLS): $(grep '^{' "$TMP/find-$index-$c.json")"
    grep -v '^{' "$TMP/find-$index-$c.json" || true
  done
  RSS_AFTER="$(rss_kib "$ID_PID")"
  stop "$ID_PID"
  echo "identity VmRSS with $N_PERSONS persons, key_index=$index:" \
    "after start ${RSS_LOADED} KiB, after the FindDuplicates runs ${RSS_AFTER} KiB"
done
for c in 1 "$CONCURRENCY"; do
  awk -v a="$(json_field p99_us "$TMP/find-true-$c.json")" \
    -v b="$(json_field p99_us "$TMP/find-false-$c.json")" \
    -v qa="$(json_field qps "$TMP/find-true-$c.json")" \
    -v qb="$(json_field qps "$TMP/find-false-$c.json")" -v c="$c" 'BEGIN {
    printf "FindDuplicates c=%s: p99 key index %.0f us / SQL %.0f us = %.2f;" \
      " QPS key index / SQL = %.2f\n", c, a, b, (b > 0 ? a / b : 0),
      (qb > 0 ? qa / qb : 0) }'
done
exit "$status"
