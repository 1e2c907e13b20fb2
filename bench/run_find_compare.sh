#!/usr/bin/env bash
# FindDuplicates latency of two builds of lotse_identity in one run, on
# loopback over mutual TLS: a baseline build (BASE_BUILD, e.g. the binaries
# of the last release copied aside) and this tree's build (BUILD_DIR), each
# on a SQLite file its own lotse_identity_bench --mode=load wrote with
# N_PERSONS synthetic persons (the two builds' blocking keys and stored
# match forms may differ, so each needs its own file). Both services run
# side by side once their key index is built and their match-form cache is
# filled; the query runs then alternate between them (base, new, base,
# new, ... ROUNDS times at concurrency 1, then once each at CONCURRENCY), so
# the machine's noise falls on both alike. Prints per round p50/p99 and the
# mean number of candidates returned, then the medians and the new ÷ base
# ratios, and each process's RSS.
#
# Usage: bench/run_find_compare.sh BASE_DB NEW_DB [N_PERSONS=1000000]
#                                  [DURATION_S=10] [CONCURRENCY=32]
# Environment:
#   BASE_BUILD  build tree of the baseline (lotse_identity, lotse_seed_demo,
#               lotse_identity_bench at the bench_binary paths); required
#   BUILD_DIR   this tree's build (default build/ci)
#   ROUNDS      alternating c=1 rounds per build (default 3)
#   CHANNELS    connections per load generator (default 1)
#   KEEP_TMP    keep the temp dir (copies of the databases, logs)
# The databases are copied, never changed. Exit status is non-zero if any
# run fails.
set -euo pipefail

BASE_DB="${1:?usage: run_find_compare.sh BASE_DB NEW_DB [N] [S] [C]}"
NEW_DB="${2:?usage: run_find_compare.sh BASE_DB NEW_DB [N] [S] [C]}"
N_PERSONS="${3:-1000000}"
DURATION="${4:-10}"
CONCURRENCY="${5:-32}"
ROUNDS="${ROUNDS:-3}"
CHANNELS="${CHANNELS:-1}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/ci}"
BASE_BUILD="${BASE_BUILD:?set BASE_BUILD to the baseline build tree}"
# shellcheck source=bench/internal/bench_env.sh
source "$ROOT/bench/internal/bench_env.sh"
bench_ensure_built "$BUILD_DIR" lotse_identity lotse_seed_demo \
  lotse_identity_bench
bench_init
LIMIT=$((${DURATION%.*} + 60))

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# start NAME BUILD DB: sets PID_<NAME> and PORT_<NAME> once the service
# serves, its match-form cache is filled and the demo agencies exist.
start() {
  local name="$1" build="$2" db="$3" pid port=""
  cp "$db" "$TMP/$name.db"
  "$(bench_binary "$build" lotse_identity)" --listen=127.0.0.1:0 \
    --tls_dir="$TMP/pki" --database="sqlite:$TMP/$name.db" \
    --access_rules="$ROOT/config/access-rules.conf" --log_calls=false \
    >"$TMP/$name.out" 2>"$TMP/$name.err" &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 12000); do
    port="$(sed -n 's/.*"msg":"serving".*"port":\([0-9]*\).*/\1/p' \
      "$TMP/$name.err" | head -n 1)"
    [[ -n "$port" ]] && grep -q '"msg":"match-form cache filled"' \
      "$TMP/$name.err" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n "$port" ]] || {
    echo "$name did not start:" >&2
    cat "$TMP/$name.err" >&2
    return 1
  }
  bounded 60 "$(bench_binary "$build" lotse_seed_demo)" \
    --identity="127.0.0.1:$port" --tls_dir="$TMP/pki" \
    >"$TMP/$name.seed" 2>&1 || {
    cat "$TMP/$name.seed" >&2
    return 1
  }
  printf -v "PID_$name" '%s' "$pid"
  printf -v "PORT_$name" '%s' "$port"
  echo "$name: serving on $port, $(grep -o '"msg":"key index built"[^}]*' \
    "$TMP/$name.err" || true)"
}

start base "$BASE_BUILD" "$BASE_DB"
start new "$BUILD_DIR" "$NEW_DB"

status=0
# run NAME BUILD C ROUND
run() {
  local name="$1" build="$2" c="$3" round="$4" port_var="PORT_$1"
  bounded "$LIMIT" "$(bench_binary "$build" lotse_identity_bench)" \
    --mode=find --target="127.0.0.1:${!port_var}" --tls_dir="$TMP/pki" \
    --client=kim-koeln --concurrency="$c" --channels="$CHANNELS" \
    --duration_s="$DURATION" --persons="$N_PERSONS" \
    >"$TMP/$name-c$c-r$round.json" || status=1
  printf '%-4s c=%-3s round %s: p50 %8.0f us  p99 %8.0f us  qps %7.1f  mean candidates %5.2f  hit rate %.3f\n' \
    "$name" "$c" "$round" \
    "$(json_field p50_us "$TMP/$name-c$c-r$round.json")" \
    "$(json_field p99_us "$TMP/$name-c$c-r$round.json")" \
    "$(json_field qps "$TMP/$name-c$c-r$round.json")" \
    "$(json_field mean_candidates "$TMP/$name-c$c-r$round.json")" \
    "$(json_field hit_rate "$TMP/$name-c$c-r$round.json")"
}

for round in $(seq "$ROUNDS"); do
  run base "$BASE_BUILD" 1 "$round"
  run new "$BUILD_DIR" 1 "$round"
done
run base "$BASE_BUILD" "$CONCURRENCY" 1
run new "$BUILD_DIR" "$CONCURRENCY" 1

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for field in p50_us p99_us; do
  b="$(for r in $(seq "$ROUNDS"); do json_field "$field" "$TMP/base-c1-r$r.json"; done | median)"
  n="$(for r in $(seq "$ROUNDS"); do json_field "$field" "$TMP/new-c1-r$r.json"; done | median)"
  awk -v b="$b" -v n="$n" -v f="$field" 'BEGIN {
    printf "c=1 median %s: base %.0f us, new %.0f us, new / base = %.2f\n",
      f, b, n, (b > 0 ? n / b : 0) }'
done
awk -v b="$(json_field p99_us "$TMP/base-c$CONCURRENCY-r1.json")" \
  -v n="$(json_field p99_us "$TMP/new-c$CONCURRENCY-r1.json")" \
  -v qb="$(json_field qps "$TMP/base-c$CONCURRENCY-r1.json")" \
  -v qn="$(json_field qps "$TMP/new-c$CONCURRENCY-r1.json")" -v c="$CONCURRENCY" \
  'BEGIN { printf "c=%s: p99 new / base = %.2f, QPS new / base = %.2f\n",
    c, (b > 0 ? n / b : 0), (qb > 0 ? qn / qb : 0) }'
echo "VmRSS after the runs: base $(rss_kib "$PID_base") KiB, new $(rss_kib "$PID_new") KiB"
exit "$status"
