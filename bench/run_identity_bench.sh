#!/usr/bin/env bash
# Identity service benchmarks next to the echo baseline of
# the same run, all on loopback over mutual TLS with a fresh dev PKI:
#   1. echo baseline: lotse_echo_server + lotse_loadgen;
#   2. CreatePerson QPS against lotse_identity on a fresh database, and its
#      ratio to the echo QPS;
#   3. N synthetic persons bulk-loaded into a second database (service
#      stopped), then FindDuplicates latency for spelling variants of loaded
#      persons, at concurrency 1 (latency of one caller) and at CONCURRENCY,
#      with the identity process's RSS after start-up on the loaded database
#      and after the runs, and its start-up time: first with the in-memory
#      key index (--key_index=true, the default), then the same runs with
#      the SQL lookups (--key_index=false), and the ratios of the two.
#
# BACKEND=sqlite (default) uses SQLite files; BACKEND=postgres starts a
# throwaway PostgreSQL server on loopback (initdb + pg_ctl, as the OS user
# postgres when run as root; removed at exit) with one database per phase.
#
# Durability: lotse_identity runs with the storage defaults. SQLite: WAL mode
# with synchronous=NORMAL, every commit is in the WAL before the call
# answers, so an acknowledged write survives kill -9 of the process (not
# necessarily a power loss; that is synchronous=FULL). PostgreSQL: the same
# promise, synchronous_commit=on (the commit's WAL is written before the
# server acknowledges it) with fsync=off, so commits survive kill -9 of the
# service or of the server but not a power loss; PG_FSYNC=on makes it the
# power-loss-safe default instead.
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
#
# Exit status is non-zero if any run fails (an RPC error, no calls).
set -euo pipefail

N_PERSONS="${1:-100000}"
DURATION="${2:-10}"
CONCURRENCY="${3:-32}"
CHANNELS="${CHANNELS:-2}"
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
IDENTITY="$BUILD_DIR/services/identity/lotse_identity"
SEED="$BUILD_DIR/tools/lotse_seed_demo"
ECHO_SERVER="$BUILD_DIR/bench/lotse_echo_server"
LOADGEN="$BUILD_DIR/bench/lotse_loadgen"
BENCH="$BUILD_DIR/bench/lotse_identity_bench"

for bin in "$IDENTITY" "$SEED" "$ECHO_SERVER" "$LOADGEN" "$BENCH"; do
  if [[ ! -x "$bin" ]]; then
    echo "building the benchmark binaries in $BUILD_DIR" >&2
    cmake --build "$BUILD_DIR" --target lotse_identity lotse_seed_demo \
      lotse_echo_server lotse_loadgen lotse_identity_bench >/dev/null
    break
  fi
done

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
  if [[ -n "${PG_DATA:-}" ]]; then
    as_pg_owner "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -s \
      >/dev/null 2>&1 || true
  fi
  if [[ -n "${KEEP_TMP:-}" ]]; then
    echo "kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- PostgreSQL server (BACKEND=postgres) ----------------------------------
PG_DATA=""
# Runs a command as the owner of the cluster: postgres when we are root (the
# server refuses to run as root), ourselves otherwise.
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

# db_url NAME: a fresh database for one phase.
db_url() {
  if [[ "$BACKEND" == postgres ]]; then
    psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
      -c "CREATE DATABASE $1" >/dev/null
    echo "postgresql://postgres@127.0.0.1:$PG_PORT/$1"
  else
    echo "sqlite:$TMP/$1.db"
  fi
}

"$ROOT/tools/dev-pki.sh" "$TMP/pki" >/dev/null
LIMIT=$((${DURATION%.*} + 60))  # bound on every timed run

# bounded SECONDS CMD...: runs CMD in the background with a time limit and
# waits for it, so a signal to this script is handled at once (bash defers
# traps while a foreground child runs).
bounded() {
  local limit="$1"
  shift
  timeout "$limit" "$@" &
  local pid=$!
  PIDS+=("$pid")
  wait "$pid"
}

# wait_port LOG PID PATTERN: prints the port once the server logged it.
wait_port() {
  local log="$1" pid="$2" pattern="$3" port=""
  for _ in $(seq 300); do
    port="$(sed -n "$pattern" "$log" 2>/dev/null | head -n 1)"
    if [[ -n "$port" ]]; then
      echo "$port"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "server did not start:" >&2
  cat "$log" >&2
  return 1
}

# stop PID: SIGTERM and wait (graceful drain), so the next phase does not
# compete with it for the CPU or the database file.
stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

json_field() {  # json_field FIELD FILE: the first numeric FIELD in FILE
  sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p" "$2" | head -n 1
}

# ---- 1. echo baseline ------------------------------------------------------
"$ECHO_SERVER" --listen=127.0.0.1:0 --tls_dir="$TMP/pki" \
  >"$TMP/echo.out" 2>"$TMP/echo.err" &
ECHO_PID=$!
PIDS+=("$ECHO_PID")
ECHO_PORT="$(wait_port "$TMP/echo.out" "$ECHO_PID" \
  's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p')"
status=0
bounded "$LIMIT" "$LOADGEN" --target="127.0.0.1:$ECHO_PORT" \
  --tls_dir="$TMP/pki" --client=kim-koeln --concurrency="$CONCURRENCY" \
  --channels="$CHANNELS" --duration_s="$DURATION" >"$TMP/echo.json" ||
  status=1
stop "$ECHO_PID"
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
bounded "$LIMIT" "$BENCH" --mode=create --target="127.0.0.1:$ID_PORT" \
  --tls_dir="$TMP/pki" --client=kim-koeln --concurrency="$CONCURRENCY" \
  --channels="$CHANNELS" --duration_s="$DURATION" >"$TMP/create.json" ||
  status=1
stop "$ID_PID"
echo "create (mTLS):      $(grep '^{' "$TMP/create.json")"
CREATE_QPS="$(json_field qps "$TMP/create.json")"
awk -v c="$CREATE_QPS" -v e="$ECHO_QPS" 'BEGIN {
  printf "CreatePerson QPS %.1f / echo QPS %.1f = %.3f (target >= 0.5)\n",
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
  "$IDENTITY" --listen=127.0.0.1:0 --tls_dir="$TMP/pki" \
    --database="$FIND_DB" --access_rules="$ROOT/config/access-rules.conf" \
    --log_calls=false "$2" >"$TMP/$name.out" 2>"$TMP/$name.err" &
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
