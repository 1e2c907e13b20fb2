# shellcheck shell=bash
# Shared set-up of the bench/run_*_bench.sh scripts; sourced, not run:
#
#   source "$ROOT/bench/internal/bench_env.sh"
#   bench_ensure_built "$BUILD_DIR" lotse_courses lotse_echo_server ...
#   bench_init                      # TMP, PIDS, clean-up traps, $TMP/pki
#   echo_start                      # ECHO_PID, ECHO_PORT
#   echo_run echo kim-koeln 32 2 10 70 || status=1   # -> $TMP/echo.json
#   echo_stop
#
# Functions:
#   bench_binary DIR TARGET    path of a target's binary in build tree DIR
#                              (services/<s>/ for lotse_<service>, tools/ for
#                              lotse_seed_demo and lotse_health_probe,
#                              bench/ otherwise)
#   bench_ensure_built DIR TARGET...
#                              builds the targets (one job) when any binary
#                              is missing
#   bench_init                 makes TMP (a fresh temp dir) and a fresh dev
#                              PKI in $TMP/pki; on exit stops every process
#                              in PIDS (SIGTERM, then waits), runs the
#                              commands given to bench_on_exit, and removes
#                              TMP unless KEEP_TMP is set
#   bench_on_exit CMD          run CMD (a string, eval'd) at exit, before TMP
#                              is removed
#   bounded LIMIT CMD...       runs CMD under `timeout LIMIT`, tracked in PIDS
#   wait_port LOG PID SED      polls LOG (30 s) until the sed -n expression
#                              SED prints a port; fails (and shows LOG) if
#                              PID exits first
#   serving_port LOG PID       wait_port for a Lotse service's JSON
#                              {"msg":"serving",...,"port":N} line
#   stop PID                   SIGTERM and wait
#   json_field NAME FILE       a numeric field of the first JSON line in FILE
#   free_port                  a TCP port free on 127.0.0.1 right now
#   echo_start                 starts lotse_echo_server (ECHO_SERVER) over
#                              mTLS on a free port; sets ECHO_PID, ECHO_PORT
#   echo_run NAME CLIENT CONCURRENCY CHANNELS DURATION LIMIT
#                              runs lotse_loadgen (LOADGEN) against it as
#                              agency CLIENT into $TMP/NAME.json; non-zero if
#                              the run failed
#   echo_stop                  stops the echo server
#
# Server CPU per call (utime + stime from /proc/<pid>/stat, in clock ticks):
#   cpu_ticks PID              CPU time the process has used so far
#   pg_cpu_ticks               CPU time of the PostgreSQL server: the
#                              postmaster, its live children and the children
#                              it has reaped (0 without a server)
#   cpu_us_per_call BEFORE AFTER JSON [WARMUP_S]
#                              microseconds of CPU per call between two
#                              samples taken around one load run whose JSON
#                              line is in file JSON. The samples bracket the
#                              warm-up too, whose calls the JSON does not
#                              count, so the calls are estimated as
#                              qps * (window_s + WARMUP_S) (default 1 s, the
#                              warm-up of every bench driver)
#   cpu_begin PID              samples the server PID (and PostgreSQL) before
#                              a run
#   cpu_end PID NAME           samples them again after the run whose JSON
#                              line is in $TMP/NAME.json and writes the
#                              microseconds of CPU per call of the server to
#                              $TMP/NAME.cpu and of PostgreSQL (postgres
#                              backend only, else 0) to $TMP/NAME.pgcpu, and
#                              PostgreSQL's statements and commits per call
#                              to $TMP/NAME.pgstmts (pg_stat_statements is
#                              reset at cpu_begin) and the most frequent
#                              statements to $TMP/NAME.pgtop
#   write_summary LABEL NAME   one line: QPS of run NAME, its ratio to the
#                              echo QPS (run "echo"), server CPU per call
#                              next to the echo server's, PostgreSQL CPU
#                              per call; with BACKEND=postgres also the
#                              ratio to PGBENCH_TPS and the statements
#
# Backends (BACKEND=sqlite|postgres, checked by backend_check):
#   backend_check              exits 2 unless BACKEND is sqlite or postgres
#   pg_start                   BACKEND=postgres only: initdb and starts a
#                              throwaway server on a free loopback port as
#                              the OS user postgres when run as root
#                              (synchronous_commit=on, fsync=$PG_FSYNC,
#                              default off, pg_stat_statements loaded;
#                              removed at exit); sets PG_PORT,
#                              PG_BIN, PG_DATA and prints its settings
#   db_url NAME                URL of a fresh database NAME: a new database
#                              on the server, or sqlite:$TMP/NAME.db
#   pgbench_run NAME CLIENTS DURATION
#                              pgbench -N (TPC-B without the contended
#                              branch/teller updates, one transaction of five
#                              statements per call) with CLIENTS connections
#                              for DURATION s against database pgbench of the
#                              same server (initialised once with
#                              pgbench -i -s 10); the output goes to
#                              $TMP/NAME.pgbench, the TPS (initial connection
#                              time excluded) into PGBENCH_TPS; prints it
#                              with PostgreSQL's CPU per transaction
#
# Callers set ECHO_SERVER and LOADGEN (bench_binary gives the paths) and
# ROOT (the repository root).

# The throughput benchmarks drive a service as one agency (kim-koeln) far
# above the per-agency limits a deployment runs with (README, Limits): they
# measure what the service can do, so the limits are off for every service
# they start. run_overload_bench.sh sets them on the command line, which
# wins over the environment.
export LOTSE_AGENCY_RATE=0 LOTSE_AGENCY_MAX_IN_FLIGHT=0

bench_binary() {
  local dir="$1" target="$2"
  case "$target" in
    lotse_identity | lotse_cases | lotse_courses | lotse_placement)
      echo "$dir/services/${target#lotse_}/$target"
      ;;
    lotse_seed_demo | lotse_health_probe) echo "$dir/tools/$target" ;;
    *) echo "$dir/bench/$target" ;;
  esac
}

bench_ensure_built() {
  local dir="$1" target
  shift
  for target in "$@"; do
    if [[ ! -x "$(bench_binary "$dir" "$target")" ]]; then
      echo "building the benchmark binaries in $dir" >&2
      cmake --build "$dir" --target "$@" -j1 >/dev/null
      return
    fi
  done
}

BENCH_EXIT_HOOKS=()
bench_on_exit() {
  BENCH_EXIT_HOOKS+=("$1")
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
bench_cleanup() {
  local pid hook
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  for hook in "${BENCH_EXIT_HOOKS[@]}"; do
    eval "$hook" || true
  done
  if [[ -n "${KEEP_TMP:-}" ]]; then
    echo "kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
}

bench_init() {
  TMP="$(mktemp -d)"
  PIDS=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  "$ROOT/tools/dev-pki.sh" "$TMP/pki" >/dev/null
}

bounded() {
  local limit="$1"
  shift
  timeout "$limit" "$@" &
  local pid=$!
  PIDS+=("$pid")
  wait "$pid"
}

wait_port() {
  local log="$1" pid="$2" pattern="$3" port=""
  for _ in $(seq 600); do
    port="$(sed -n "$pattern" "$log" 2>/dev/null | head -n 1)"
    if [[ -n "$port" ]]; then
      echo "$port"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "server did not start:" >&2
  cat "$log" >&2
  return 1
}

serving_port() {
  wait_port "$1" "$2" 's/.*"msg":"serving".*"port":\([0-9]*\).*/\1/p'
}

stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

json_field() {
  sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p" "$2" | head -n 1
}

free_port() {
  python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

echo_start() {
  "$ECHO_SERVER" --listen=127.0.0.1:0 --tls_dir="$TMP/pki" \
    >"$TMP/echo-server.out" 2>"$TMP/echo-server.err" &
  ECHO_PID=$!
  PIDS+=("$ECHO_PID")
  ECHO_PORT="$(wait_port "$TMP/echo-server.out" "$ECHO_PID" \
    's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p')"
}

echo_run() {
  local name="$1" client="$2" concurrency="$3" channels="$4" duration="$5"
  local limit="$6" rc=0
  cpu_begin "$ECHO_PID"
  bounded "$limit" "$LOADGEN" --target="127.0.0.1:$ECHO_PORT" \
    --tls_dir="$TMP/pki" --client="$client" --concurrency="$concurrency" \
    --channels="$channels" --duration_s="$duration" >"$TMP/$name.json" ||
    rc=$?
  cpu_end "$ECHO_PID" "$name"
  return "$rc"
}

echo_stop() {
  stop "$ECHO_PID"
}

cpu_ticks() {
  # Fields after the command name (which may hold spaces): utime is the
  # 12th, stime the 13th.
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

pg_cpu_ticks() {
  local pm pid total=0
  if [[ -z "${PG_DATA:-}" || ! -f "$PG_DATA/postmaster.pid" ]]; then
    echo 0
    return
  fi
  pm="$(head -n 1 "$PG_DATA/postmaster.pid")"
  # cutime + cstime: children already reaped (closed connections).
  total="$(sed 's/^.*) //' "/proc/$pm/stat" |
    awk '{ print $12 + $13 + $14 + $15 }')"
  local -a children=()
  read -r -a children <"/proc/$pm/task/$pm/children" || true
  for pid in "${children[@]}"; do
    total=$((total + $(cpu_ticks "$pid" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

cpu_us_per_call() {
  local before="$1" after="$2" json="$3" warmup="${4:-1}"
  awk -v b="$before" -v a="$after" -v hz="$(getconf CLK_TCK)" \
    -v q="$(json_field qps "$json")" -v w="$(json_field window_s "$json")" \
    -v u="$warmup" 'BEGIN {
      calls = q * (w + u)
      if (calls <= 0) { print "0"; exit }
      printf "%.0f\n", (a - b) / hz * 1e6 / calls }'
}

backend_check() {
  BACKEND="${BACKEND:-sqlite}"
  PG_FSYNC="${PG_FSYNC:-off}"
  case "$BACKEND" in
    sqlite | postgres) ;;
    *)
      echo "BACKEND must be sqlite or postgres" >&2
      exit 2
      ;;
  esac
}

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

# shellcheck disable=SC2317  # invoked at exit
pg_stop() {
  if [[ -n "${PG_DATA:-}" ]]; then
    as_pg_owner "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -s \
      >/dev/null 2>&1 || true
  fi
}

pg_start() {
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
  bench_on_exit pg_stop
  PG_PORT="$(free_port)"
  as_pg_owner "$PG_BIN/pg_ctl" start -D "$PG_DATA" -w -t 60 -s \
    -l "$TMP/pg/server.log" \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $TMP/pg \
        -c fsync=$PG_FSYNC -c synchronous_commit=on \
        -c max_connections=300 -c shared_buffers=256MB \
        -c shared_preload_libraries=pg_stat_statements" >/dev/null
  psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -c "CREATE EXTENSION pg_stat_statements" >/dev/null
  echo "postgres:             $("$PG_BIN/postgres" --version), port" \
    "$PG_PORT, fsync=$PG_FSYNC synchronous_commit=on"
}

db_url() {
  if [[ "$BACKEND" == postgres ]]; then
    psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
      -c "CREATE DATABASE $1" >/dev/null
    echo "postgresql://postgres@127.0.0.1:$PG_PORT/$1"
  else
    echo "sqlite:$TMP/$1.db"
  fi
}

PGBENCH_READY=""
pgbench_run() {
  local name="$1" clients="$2" duration="$3"
  if [[ -z "$PGBENCH_READY" ]]; then
    psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
      -c "CREATE DATABASE pgbench" >/dev/null
    pgbench -i -q -s 10 -h 127.0.0.1 -p "$PG_PORT" -U postgres pgbench \
      >"$TMP/pgbench-init.log" 2>&1 || {
      cat "$TMP/pgbench-init.log" >&2
      return 1
    }
    PGBENCH_READY=1
  fi
  local before
  before="$(pg_cpu_ticks)"
  bounded $((${duration%.*} + 60)) pgbench -N -c "$clients" \
    -j "$(nproc)" -T "${duration%.*}" -h 127.0.0.1 -p "$PG_PORT" \
    -U postgres pgbench >"$TMP/$name.pgbench" 2>&1 || {
    cat "$TMP/$name.pgbench" >&2
    return 1
  }
  PGBENCH_TPS="$(sed -n \
    's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' \
    "$TMP/$name.pgbench")"
  echo "pgbench -N c=$clients:      $PGBENCH_TPS TPS ($(sed -n \
    's/^latency average = //p' "$TMP/$name.pgbench") average latency)," \
    "postgres CPU $(awk -v b="$before" -v a="$(pg_cpu_ticks)" \
      -v hz="$(getconf CLK_TCK)" -v n="$(sed -n \
        's/^number of transactions actually processed: \([0-9]*\).*/\1/p' \
        "$TMP/$name.pgbench")" \
      'BEGIN { printf "%.0f", (n > 0 ? (a - b) / hz * 1e6 / n : 0) }') us per" \
    "transaction (5 statements, 1 commit)"
}


# pg_counts: "statements commits" the server has run so far, all databases
# (pg_stat_statements and pg_stat_database).
pg_counts() {
  psql -At -F ' ' -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c \
    "SELECT (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements),
            (SELECT sum(xact_commit) FROM pg_stat_database)"
}

CPU_BEFORE=0
PG_CPU_BEFORE=0
PG_COUNTS_BEFORE="0 0"
cpu_begin() {
  CPU_BEFORE="$(cpu_ticks "$1")"
  PG_CPU_BEFORE="$(pg_cpu_ticks)"
  if [[ "${BACKEND:-sqlite}" == postgres ]]; then
    psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
      -c "SELECT pg_stat_statements_reset()" >/dev/null
    PG_COUNTS_BEFORE="$(pg_counts)"
  fi
}

cpu_end() {
  local after pg_after
  after="$(cpu_ticks "$1")"
  pg_after="$(pg_cpu_ticks)"
  cpu_us_per_call "$CPU_BEFORE" "$after" "$TMP/$2.json" >"$TMP/$2.cpu"
  if [[ "${BACKEND:-sqlite}" == postgres ]]; then
    cpu_us_per_call "$PG_CPU_BEFORE" "$pg_after" "$TMP/$2.json" \
      >"$TMP/$2.pgcpu"
    # Statements and commits per call, estimated like the CPU.
    awk -v b="$PG_COUNTS_BEFORE" -v a="$(pg_counts)" \
      -v q="$(json_field qps "$TMP/$2.json")" \
      -v w="$(json_field window_s "$TMP/$2.json")" 'BEGIN {
        split(b, x, " "); split(a, y, " "); calls = q * (w + 1)
        if (calls <= 0) calls = 1
        printf "%.1f statements, %.2f commits (read-only ones included)",
          (y[1] - x[1]) / calls,
          (y[2] - x[2]) / calls }' >"$TMP/$2.pgstmts"
    # What those statements are: the most frequent ones of the run.
    psql -At -F ' | ' -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c \
      "SELECT calls, round(total_exec_time::numeric / calls * 1000),
              left(regexp_replace(query, '\s+', ' ', 'g'), 110)
       FROM pg_stat_statements ORDER BY calls DESC LIMIT 12" \
      >"$TMP/$2.pgtop"
  else
    echo 0 >"$TMP/$2.pgcpu"
  fi
}

write_summary() {
  local label="$1" name="$2"
  awk -v l="$label" -v q="$(json_field qps "$TMP/$name.json")" \
    -v e="$(json_field qps "$TMP/echo.json")" \
    -v c="$(cat "$TMP/$name.cpu")" -v ec="$(cat "$TMP/echo.cpu")" \
    -v pc="$(cat "$TMP/$name.pgcpu")" -v b="${BACKEND:-sqlite}" \
    -v t="${PGBENCH_TPS:-0}" \
    -v st="$(cat "$TMP/$name.pgstmts" 2>/dev/null || echo '?')" 'BEGIN {
      printf "%s [%s]: %.1f QPS = %.3f x echo (%.1f); server CPU %d us/call", \
        l, b, q, (e > 0 ? q / e : 0), e, c
      printf " = %.1f x echo (%d us/call)", (ec > 0 ? c / ec : 0), ec
      if (b == "postgres")
        printf "; postgres CPU %d us/call, %s per call; %.3f x pgbench -N TPS %.1f (goal >= 1.0)", \
          pc, st, (t > 0 ? q / t : 0), t
      printf "\n" }'
  if [[ -s "$TMP/$name.pgtop" ]]; then
    echo "  its most frequent PostgreSQL statements (calls | mean us | query):"
    sed 's/^/    /' "$TMP/$name.pgtop"
  fi
}
