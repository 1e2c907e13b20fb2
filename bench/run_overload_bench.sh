#!/usr/bin/env bash
# Overload protection (per-agency limits, common/server/agency_limits.h),
# measured in one run on loopback over mutual TLS with a fresh dev PKI and
# fresh SQLite databases, against lotse_identity's CreatePerson (a write
# with duplicate search, audit and group commit):
#   1. capacity C: closed loop, CONCURRENCY calls in flight as kim-bonn,
#      limits off (lotse_identity_bench --mode=create);
#   2. without limits: the well-behaved agency (kim-koeln) alone at
#      PROBE_SHARE x C calls per second, open loop: its unloaded p50/p99;
#      then the same again while a flooding agency (kim-bonn) sends
#      FLOOD_X x C calls per second, open loop, ignoring every refusal;
#   3. the same two runs against a fresh service started with limits:
#      --agency_rate = RATE_SHARE x C, --agency_burst = a tenth of a
#      second's worth, --agency_max_in_flight = IN_FLIGHT (the
#      administering agency lotse-admin, which seeds, exempted with
#      --agency_limits). The service's RSS is sampled every 0.5 s
#      throughout.
# Prints each run's JSON, then the figures: the well-behaved p99 flooded /
# unloaded in both set-ups (goal with limits: <= 2), the flooder's answered
# and refused calls by reason, and the RSS before, at most during, and
# after the flood.
#
# Usage: bench/run_overload_bench.sh [DURATION_S=15] [FLOOD_X=3]
#                                    [PROBE_SHARE=0.1]
# Environment:
#   BUILD_DIR    build tree (default build/ci) holding lotse_identity,
#                lotse_seed_demo, lotse_identity_bench, lotse_overload_bench;
#                missing ones are built there
#   CONCURRENCY  closed-loop calls for the capacity (default 32)
#   RATE_SHARE   the per-agency rate limit as a share of C (default 0.1)
#   IN_FLIGHT    the per-agency limit of calls in flight (default 8, half
#                of the 16 worker threads)
#   KEEP_TMP     keep the temp dir (databases, logs)
#
# Exit status: non-zero when set-up fails, the service dies, or the
# well-behaved agency sees a failed call while the limits are on.
set -euo pipefail

DURATION="${1:-15}"
FLOOD_X="${2:-3}"
PROBE_SHARE="${3:-0.1}"
CONCURRENCY="${CONCURRENCY:-32}"
RATE_SHARE="${RATE_SHARE:-0.1}"
IN_FLIGHT="${IN_FLIGHT:-8}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/ci}"
# shellcheck source=bench/internal/bench_env.sh
source "$ROOT/bench/internal/bench_env.sh"
IDENTITY="$(bench_binary "$BUILD_DIR" lotse_identity)"
SEED="$(bench_binary "$BUILD_DIR" lotse_seed_demo)"
IDBENCH="$(bench_binary "$BUILD_DIR" lotse_identity_bench)"
OVERLOAD="$(bench_binary "$BUILD_DIR" lotse_overload_bench)"
bench_ensure_built "$BUILD_DIR" lotse_identity lotse_seed_demo \
  lotse_identity_bench lotse_overload_bench
bench_init
LIMIT=$((${DURATION%.*} + 60)) # bound on every timed run
status=0

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# start_identity NAME FLAG...: lotse_identity on a fresh SQLite file with
# the flags, the demo agencies registered (as lotse-admin); sets ID_PID and
# ID_PORT.
start_identity() {
  local name="$1"
  shift
  "$IDENTITY" --listen=127.0.0.1:0 --tls_dir="$TMP/pki" \
    --database="sqlite:$TMP/$name.db" \
    --access_rules="$ROOT/config/access-rules.conf" --log_calls=false "$@" \
    >"$TMP/$name.out" 2>"$TMP/$name.err" &
  ID_PID=$!
  PIDS+=("$ID_PID")
  ID_PORT="$(serving_port "$TMP/$name.err" "$ID_PID")"
  bounded 60 "$SEED" --identity="127.0.0.1:$ID_PORT" --tls_dir="$TMP/pki" \
    >"$TMP/$name.seed" 2>&1 || {
    cat "$TMP/$name.seed" >&2
    return 1
  }
}

# sample_rss PID FILE: appends the RSS (KiB) of PID to FILE every 0.5 s
# until stopped; sets RSS_PID.
sample_rss() {
  (while kill -0 "$1" 2>/dev/null; do
    rss_kib "$1" >>"$2"
    sleep 0.5
  done) &
  RSS_PID=$!
  PIDS+=("$RSS_PID")
}

# probe NAME RATE: the well-behaved agency alone.
probe() {
  bounded "$LIMIT" "$OVERLOAD" --mode=probe --client=kim-koeln --seed=1 \
    --target="127.0.0.1:$ID_PORT" --tls_dir="$TMP/pki" --rate="$2" \
    --duration_s="$DURATION" >"$TMP/$1.json"
}

# flooded NAME: the flooder and the well-behaved agency at the same time.
flooded() {
  local rc=0
  bounded "$LIMIT" "$OVERLOAD" --mode=flood --client=kim-bonn --seed=2 \
    --channels=2 --target="127.0.0.1:$ID_PORT" --tls_dir="$TMP/pki" \
    --rate="$FLOOD_RATE" --duration_s="$DURATION" \
    >"$TMP/$1-flood.json" &
  local flood_pid=$!
  # The flood first, so the well-behaved calls meet it from their start.
  sleep 1
  probe "$1-probe" "$PROBE_RATE" || rc=$?
  wait "$flood_pid" || rc=$?
  return "$rc"
}

# ---- 1. capacity -----------------------------------------------------------
start_identity capacity
bounded "$LIMIT" "$IDBENCH" --mode=create --target="127.0.0.1:$ID_PORT" \
  --tls_dir="$TMP/pki" --client=kim-bonn --concurrency="$CONCURRENCY" \
  --channels=2 --duration_s="$DURATION" >"$TMP/capacity.json" || status=1
stop "$ID_PID"
echo "capacity:           $(grep '^{' "$TMP/capacity.json")"
CAPACITY="$(json_field qps "$TMP/capacity.json")"
read -r PROBE_RATE FLOOD_RATE AGENCY_RATE AGENCY_BURST < <(awk \
  -v c="$CAPACITY" -v p="$PROBE_SHARE" -v f="$FLOOD_X" -v r="$RATE_SHARE" \
  'BEGIN { rate = c * r; burst = int(rate / 10); if (burst < 1) burst = 1
           printf "%.1f %.1f %.1f %d\n", c * p, c * f, rate, burst }')
echo "rates:              probe $PROBE_RATE/s, flood $FLOOD_RATE/s;" \
  "limits: --agency_rate=$AGENCY_RATE --agency_burst=$AGENCY_BURST" \
  "--agency_max_in_flight=$IN_FLIGHT"

# ---- 2. without limits -----------------------------------------------------
start_identity nolimits
probe nolimits-unloaded "$PROBE_RATE" || status=1
echo "no limits, alone:   $(cat "$TMP/nolimits-unloaded.json")"
sample_rss "$ID_PID" "$TMP/nolimits.rss"
# Failed well-behaved calls are the expected outcome here, not a failure of
# the run.
flooded nolimits || true
kill "$RSS_PID" 2>/dev/null || true
echo "no limits, flood:   $(cat "$TMP/nolimits-flood.json")"
echo "no limits, probe:   $(cat "$TMP/nolimits-probe.json")"
kill -0 "$ID_PID" || {
  echo "lotse_identity died under the flood without limits" >&2
  status=1
}
stop "$ID_PID"

# ---- 3. with limits --------------------------------------------------------
start_identity limits --agency_rate="$AGENCY_RATE" \
  --agency_burst="$AGENCY_BURST" --agency_max_in_flight="$IN_FLIGHT" \
  --agency_limits=lotse-admin:0:0
sample_rss "$ID_PID" "$TMP/limits.rss"
probe limits-unloaded "$PROBE_RATE" || status=1
echo "limits, alone:      $(cat "$TMP/limits-unloaded.json")"
RSS_BEFORE="$(rss_kib "$ID_PID")"
LINES_BEFORE="$(wc -l <"$TMP/limits.rss")"
flooded limits || status=1
kill "$RSS_PID" 2>/dev/null || true
RSS_AFTER="$(rss_kib "$ID_PID")"
echo "limits, flood:      $(cat "$TMP/limits-flood.json")"
echo "limits, probe:      $(cat "$TMP/limits-probe.json")"
kill -0 "$ID_PID" || {
  echo "lotse_identity died under the flood with limits" >&2
  status=1
}
RSS_MAX="$(tail -n +"$((LINES_BEFORE + 1))" "$TMP/limits.rss" | sort -n |
  tail -n 1)"
stop "$ID_PID"

# ---- figures ---------------------------------------------------------------
field() { json_field "$1" "$TMP/$2.json"; }
awk -v nu="$(field p99_us nolimits-unloaded)" \
  -v nf="$(field p99_us nolimits-probe)" \
  -v lu="$(field p99_us limits-unloaded)" \
  -v lf="$(field p99_us limits-probe)" \
  -v nsent="$(field sent nolimits-probe)" -v nok="$(field ok nolimits-probe)" \
  'BEGIN {
     printf "well-behaved p99, no limits: %.1f ms alone, %.1f ms flooded" \
            " (x%.2f), %d of %d calls answered OK\n",
            nu / 1000, nf / 1000, (nu > 0 ? nf / nu : 0), nok, nsent
     printf "well-behaved p99, limits:    %.1f ms alone, %.1f ms flooded" \
            " (x%.2f, goal <= 2)\n", lu / 1000, lf / 1000, (lu > 0 ? lf / lu : 0)
   }'
echo "flooder with limits: sent $(field sent limits-flood)," \
  "OK $(field ok limits-flood)," \
  "AGENCY_RATE_LIMITED $(field rate_limited limits-flood)," \
  "AGENCY_TOO_MANY_IN_FLIGHT $(field in_flight_limited limits-flood)," \
  "SERVER_OVERLOADED $(field overloaded limits-flood)," \
  "other errors $(field other_errors limits-flood)," \
  "not sent (client cap) $(field skipped limits-flood)"
echo "RSS with limits: ${RSS_BEFORE} KiB before the flood, ${RSS_MAX} KiB at" \
  "most during it, ${RSS_AFTER} KiB after"
exit "$status"
