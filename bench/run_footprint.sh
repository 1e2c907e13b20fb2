#!/usr/bin/env bash
# Footprint of each service on an empty database: start-up to SERVING and
# idle RSS, next to the echo server (gRPC + mutual TLS and nothing else) as
# the baseline of the same run.
#
# For every service (identity, cases, courses, placement) and REPEATS times:
#   1. a fresh, empty database (SQLite file, or a new database on a
#      throwaway PostgreSQL server with BACKEND=postgres), so the run
#      includes creating the schema (every migration);
#   2. the service started as the run command starts it (mutual TLS,
#      metrics and a plaintext health port on, --log_calls=false; the
#      services that call identity get an --identity_target, which they
#      dial lazily, so nothing needs to listen there);
#   3. start-up: from just before exec to the timestamp of the service's
#      {"msg":"serving"} log line, which it writes after the gRPC server,
#      with health answering SERVING, has started (lotse_health_probe
#      asks the health port once afterwards as a check; its own polling
#      interval, 200 ms, is too coarse to time with);
#   4. idle RSS: VmRSS after IDLE_S seconds without calls, with VmHWM (peak),
#      the thread count and RssAnon/RssFile (heap and stacks against mapped
#      code);
#   5. SIGTERM, wait.
# Prints one line per run, then the medians per service against the goals
# (start-up <= 200 ms, idle RSS <= 30 MiB).
#
# Usage: bench/run_footprint.sh [REPEATS=5] [IDLE_S=3]
# Environment:
#   BUILD_DIR     build tree (default build/ci) with the four services,
#                 lotse_echo_server and lotse_health_probe (missing ones are
#                 built there; configure with -DLOTSE_BUILD_BENCH=ON)
#   SERVICES      which services, space-separated (default all four)
#   SERVICE_ARGS  extra flags for every service, e.g. "--worker_threads=2"
#   BACKEND       sqlite (default) or postgres; PG_FSYNC off (default) or on
#   KEEP_TMP      set to keep the temp dir (logs)
#
# Exit status is non-zero if a service did not start or a probe failed.
set -euo pipefail

REPEATS="${1:-5}"
IDLE_S="${2:-3}"
SERVICES="${SERVICES:-identity cases courses placement}"
read -r -a EXTRA <<<"${SERVICE_ARGS:-}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/ci}"
# shellcheck source=bench/internal/bench_env.sh
source "$ROOT/bench/internal/bench_env.sh"
ECHO_SERVER="$(bench_binary "$BUILD_DIR" lotse_echo_server)"
PROBE="$(bench_binary "$BUILD_DIR" lotse_health_probe)"
read -r -a TARGETS <<<"$SERVICES"
TARGETS=("${TARGETS[@]/#/lotse_}")
bench_ensure_built "$BUILD_DIR" lotse_echo_server lotse_health_probe \
  "${TARGETS[@]}"
backend_check
bench_init
if [[ "$BACKEND" == postgres ]]; then pg_start; fi
echo "backend:              $BACKEND; $REPEATS runs per service, ${IDLE_S} s" \
  "idle; $(nproc) cores, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"

status_kib() {  # status_kib PID FIELD: a kB field of /proc/PID/status
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# sample PID: "rss_kib hwm_kib threads anon_kib file_kib" of a process.
sample() {
  echo "$(status_kib "$1" VmRSS) $(status_kib "$1" VmHWM)" \
    "$(awk '$1 == "Threads:" { print $2 }' "/proc/$1/status")" \
    "$(status_kib "$1" RssAnon) $(status_kib "$1" RssFile)"
}

# Milliseconds from T0_NS (date +%s%N) to the ISO timestamp in the "ts" field
# of the first "serving" line of LOG.
serving_ms() {
  local log="$1" t0="$2" ts
  ts="$(sed -n 's/.*"ts":"\([^"]*\)".*"msg":"serving".*/\1/p' "$log" |
    head -n 1)"
  python3 -c 'import datetime, sys
t = datetime.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%S.%fZ")
t = t.replace(tzinfo=datetime.timezone.utc)
print("%.1f" % ((t.timestamp() * 1e9 - int(sys.argv[2])) / 1e6))' "$ts" "$t0"
}

RESULTS="$TMP/results"
: >"$RESULTS"
status=0

# ---- baseline: the echo server ---------------------------------------------
for r in $(seq "$REPEATS"); do
  t0="$(date +%s%N)"
  echo_start
  up_ms=$((($(date +%s%N) - t0) / 1000000))
  sleep "$IDLE_S"
  read -r rss hwm threads anon file <<<"$(sample "$ECHO_PID")"
  echo_stop
  echo "echo $r: listening after ~${up_ms} ms (polled), RSS $rss KiB" \
    "(peak $hwm, anon $anon, file $file), $threads threads"
  echo "echo $up_ms $rss $hwm $threads $anon $file" >>"$RESULTS"
done

# ---- the services ------------------------------------------------------------
for s in $SERVICES; do
  bin="$(bench_binary "$BUILD_DIR" "lotse_$s")"
  for r in $(seq "$REPEATS"); do
    db="$(db_url "fp_${s}_$r")"
    health="$(free_port)"
    args=(--listen=127.0.0.1:0 --tls_dir="$TMP/pki" --database="$db"
      --metrics_listen=127.0.0.1:0 --health_listen="127.0.0.1:$health"
      --log_calls=false)
    case "$s" in
      identity) args+=(--access_rules="$ROOT/config/access-rules.conf") ;;
      *) args+=(--identity_target="127.0.0.1:$(free_port)") ;;
    esac
    log="$TMP/$s-$r.err"
    t0="$(date +%s%N)"
    "$bin" "${args[@]}" "${EXTRA[@]}" >"$TMP/$s-$r.out" 2>"$log" &
    pid=$!
    PIDS+=("$pid")
    if ! serving_port "$log" "$pid" >/dev/null; then
      status=1
      continue
    fi
    up_ms="$(serving_ms "$log" "$t0")"
    if ! "$PROBE" --target="127.0.0.1:$health" --insecure >/dev/null 2>&1; then
      echo "$s: health probe did not answer SERVING" >&2
      status=1
    fi
    sleep "$IDLE_S"
    read -r rss hwm threads anon file <<<"$(sample "$pid")"
    stop "$pid"
    echo "$s $r: SERVING after $up_ms ms, RSS $rss KiB (peak $hwm, anon" \
      "$anon, file $file), $threads threads"
    echo "$s $up_ms $rss $hwm $threads $anon $file" >>"$RESULTS"
  done
done

# ---- medians -----------------------------------------------------------------
echo "---- medians over $REPEATS runs [$BACKEND] (goal: start-up <= 200 ms," \
  "idle RSS <= 30 MiB)"
printf '%-10s %10s %9s %9s %8s %9s %9s\n' service start_ms rss_MiB \
  peak_MiB threads anon_MiB file_MiB
for s in echo $SERVICES; do
  awk -v s="$s" '$1 == s' "$RESULTS" | awk '
    function median(col,   n, i, j, t, v) {
      n = 0
      for (i = 1; i <= NR; ++i) v[++n] = row[i, col]
      for (i = 2; i <= n; ++i)
        for (j = i; j > 1 && v[j - 1] > v[j]; --j) {
          t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
        }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    { for (c = 1; c <= NF; ++c) row[NR, c] = $c; name = $1 }
    END {
      if (NR == 0) exit
      verdict = "  OVER GOAL"
      if (median(2) <= 200 && median(3) <= 30 * 1024) verdict = "  within goal"
      if (name == "echo") verdict = "  (baseline; start-up polled)"
      printf "%-10s %10.1f %9.1f %9.1f %8d %9.1f %9.1f%s\n", name,
        median(2), median(3) / 1024, median(4) / 1024, median(5),
        median(6) / 1024, median(7) / 1024, verdict
    }'
done
exit "$status"
