#!/usr/bin/env bash
# Placement service benchmarks next to the echo baseline of
# the same run, all on loopback over mutual TLS with a fresh dev PKI:
#   1. echo baseline: lotse_echo_server + lotse_loadgen at CONCURRENCY, and
#      at concurrency 1 (the latency floor of one mTLS round trip);
#   2. lotse_identity and lotse_placement wired like the run command
#      (identity's events -> placement, placement's -> identity; placement
#      checks work permission and access at identity with its service
#      certificate), each on a fresh database with the storage defaults
#      (SQLite: WAL, synchronous=NORMAL; BACKEND=postgres: a throwaway
#      server on loopback, bench_env.sh pg_start, synchronous_commit=on,
#      fsync=off unless PG_FSYNC=on); lotse_seed_demo registers the demo
#      agencies;
#   3. load THROUGH THE RPCs, LOAD_CONCURRENCY calls in flight
#      (lotse_placement_bench --mode=load): N_CANDIDATES persons
#      (identity CreatePerson), a candidate profile each (placement
#      CreateCandidateProfile), a residence status each (identity
#      RecordResidenceStatus; placement learns the work permission from the
#      ResidenceStatusChanged events), N_OFFERS offers (placement
#      CreateOffer); then --mode=wait_facts waits until a sample of
#      candidates shows its work permission in placement;
#   4. MatchOffersForCandidate (one PERMITTED candidate against all open
#      offers, 20 per page) and MatchCandidatesForOffer (one offer against
#      all active candidates) at concurrency 1: p50/p99 (target p99 <= 10 ms
#      for the former), next to the echo c=1 p50/p99;
#   5. placement transitions (Propose -> Applied -> Interview -> Hired or
#      Rejected, every RPC one call) at CONCURRENCY: QPS, the ratio to the
#      echo QPS and placement's CPU per call next to the echo server's;
#      with BACKEND=postgres then pgbench -N at CONCURRENCY clients against
#      the same server (services stopped) and transition QPS / pgbench TPS
#      (goal >= 1.0).
#
# Usage: bench/run_placement_bench.sh [N=100000] [DURATION_S=10]
#                                     [CONCURRENCY=32]
# Environment:
#   BUILD_DIR         build tree (default build/ci; missing binaries are
#                     built there; configure with -DLOTSE_BUILD_BENCH=ON)
#   N_CANDIDATES      candidates (default N); N_OFFERS offers (default N)
#   LOAD_CONCURRENCY  calls in flight while loading (default 64)
#   MATCH_CONCURRENCY matching runs, space-separated (default "1")
#   CHANNELS          connections per client (default 2)
#   KEEP_TMP          set to keep the temp dir (databases, logs, ids)
#   BACKEND           sqlite (default) or postgres; PG_FSYNC off (default)
#                     or on
#
# Exit status is non-zero if any run fails.
set -euo pipefail

N="${1:-100000}"
DURATION="${2:-10}"
CONCURRENCY="${3:-32}"
N_CANDIDATES="${N_CANDIDATES:-$N}"
N_OFFERS="${N_OFFERS:-$N}"
LOAD_CONCURRENCY="${LOAD_CONCURRENCY:-64}"
MATCH_CONCURRENCY="${MATCH_CONCURRENCY:-1}"
CHANNELS="${CHANNELS:-2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/ci}"
# shellcheck source=bench/internal/bench_env.sh
source "$ROOT/bench/internal/bench_env.sh"
IDENTITY="$(bench_binary "$BUILD_DIR" lotse_identity)"
PLACEMENT="$(bench_binary "$BUILD_DIR" lotse_placement)"
SEED="$(bench_binary "$BUILD_DIR" lotse_seed_demo)"
BENCH="$(bench_binary "$BUILD_DIR" lotse_placement_bench)"
ECHO_SERVER="$(bench_binary "$BUILD_DIR" lotse_echo_server)"
LOADGEN="$(bench_binary "$BUILD_DIR" lotse_loadgen)"
bench_ensure_built "$BUILD_DIR" lotse_identity lotse_placement \
  lotse_seed_demo lotse_placement_bench lotse_echo_server lotse_loadgen
backend_check
bench_init
if [[ "$BACKEND" == postgres ]]; then pg_start; fi
LIMIT=$((${DURATION%.*} + 120))
status=0

# ---- 1. echo baseline ------------------------------------------------------
echo_start
echo_run echo kim-koeln "$CONCURRENCY" "$CHANNELS" "$DURATION" "$LIMIT" ||
  status=1
echo_run echo-c1 kim-koeln 1 1 "$DURATION" "$LIMIT" || status=1
echo_stop
echo "echo (mTLS):             $(grep '^{' "$TMP/echo.json")"
echo "echo c=1 (mTLS):         $(grep '^{' "$TMP/echo-c1.json")"

# ---- 2. identity and placement ---------------------------------------------
echo "backend:                 $BACKEND"
ID_DB="$(db_url identity)"
PL_DB="$(db_url placement)"
PL_PORT="$(free_port)"
"$IDENTITY" --listen=127.0.0.1:0 --tls_dir="$TMP/pki" \
  --database="$ID_DB" \
  --access_rules="$ROOT/config/access-rules.conf" \
  --event_destinations="placement=127.0.0.1:$PL_PORT" --log_calls=false \
  >"$TMP/identity.out" 2>"$TMP/identity.err" &
ID_PID=$!
PIDS+=("$ID_PID")
ID_PORT="$(serving_port "$TMP/identity.err" "$ID_PID")"
"$PLACEMENT" --listen="127.0.0.1:$PL_PORT" --tls_dir="$TMP/pki" \
  --database="$PL_DB" \
  --identity_target="127.0.0.1:$ID_PORT" \
  --event_destinations="identity=127.0.0.1:$ID_PORT" --log_calls=false \
  >"$TMP/placement.out" 2>"$TMP/placement.err" &
PL_PID=$!
PIDS+=("$PL_PID")
serving_port "$TMP/placement.err" "$PL_PID" >/dev/null
bounded 60 "$SEED" --identity="127.0.0.1:$ID_PORT" --tls_dir="$TMP/pki" \
  >"$TMP/seed.log" 2>&1 || {
  cat "$TMP/seed.log" >&2
  exit 1
}

rss() {  # VmRSS of a process
  sed -n 's/^VmRSS:[[:space:]]*//p' "/proc/$1/status"
}

# ---- 3. load through the RPCs ----------------------------------------------
mkdir -p "$TMP/ids"
bench() {  # bench LIMIT ARGS...: lotse_placement_bench against the services
  local limit="$1"
  shift
  bounded "$limit" "$BENCH" --target="127.0.0.1:$PL_PORT" \
    --identity_target="127.0.0.1:$ID_PORT" --tls_dir="$TMP/pki" \
    --channels="$CHANNELS" --ids="$TMP/ids" "$@"
}
LOAD_START=$SECONDS
bench $(((N_CANDIDATES + N_OFFERS) / 5 + 600)) --mode=load \
  --candidates="$N_CANDIDATES" --offers="$N_OFFERS" \
  --concurrency="$LOAD_CONCURRENCY" >"$TMP/load.json" || {
  cat "$TMP/load.json"
  echo "load failed; placement log:" >&2
  tail -n 20 "$TMP/placement.err" >&2
  exit 1
}
sed 's/^/load:                    /' "$TMP/load.json"
bench 1000 --mode=wait_facts --wait_s=900 >"$TMP/wait.json" || status=1
echo "events to placement:     $(cat "$TMP/wait.json")"
echo "load total:              $((SECONDS - LOAD_START)) s for" \
  "$N_CANDIDATES candidates, $N_OFFERS offers"
if [[ "$BACKEND" == sqlite ]]; then
  PL_SIZE="$(du -h "${PL_DB#sqlite:}" | cut -f1)"
else
  PL_SIZE="$(psql -At -h 127.0.0.1 -p "$PG_PORT" -U postgres -d placement \
    -c "SELECT pg_size_pretty(pg_database_size('placement'))")"
fi
echo "placement database:      $PL_SIZE, RSS $(rss "$PL_PID"); identity RSS" \
  "$(rss "$ID_PID")"

run() {  # run NAME ARGS...: one measured run
  local name="$1"
  shift
  bench "$LIMIT" --duration_s="$DURATION" "$@" >"$TMP/$name.json" ||
    status=1
  printf '%-29s%s\n' "$name (mTLS):" "$(grep '^{' "$TMP/$name.json" || true)"
  grep '^first error' "$TMP/$name.json" || true
}

# ---- 4. matching latency ---------------------------------------------------
for c in $MATCH_CONCURRENCY; do
  run "match-offers-c$c" --mode=match_offers --concurrency="$c"
  run "match-candidates-c$c" --mode=match_candidates --concurrency="$c"
done

# ---- 5. transitions --------------------------------------------------------
cpu_begin "$PL_PID"
run transition --mode=transition --concurrency="$CONCURRENCY"
cpu_end "$PL_PID" transition
echo "placement RSS after runs: $(rss "$PL_PID")"

# ---- summary ---------------------------------------------------------------
f() { json_field "$1" "$TMP/$2.json"; }
c1="${MATCH_CONCURRENCY%% *}"
echo "---- summary ($N_CANDIDATES candidates, $N_OFFERS offers," \
  "load $(nproc) cores, loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
echo "echo c=1:                    p50 $(f p50_us echo-c1) us," \
  "p99 $(f p99_us echo-c1) us"
echo "MatchOffersForCandidate c=$c1:  p50 $(f p50_us "match-offers-c$c1") us," \
  "p99 $(f p99_us "match-offers-c$c1") us (target p99 <= 10000 us)"
echo "MatchCandidatesForOffer c=$c1:  p50 $(f p50_us "match-candidates-c$c1")" \
  "us, p99 $(f p99_us "match-candidates-c$c1") us"
stop "$PL_PID"
stop "$ID_PID"
if [[ "$BACKEND" == postgres ]]; then
  pgbench_run pgbench "$CONCURRENCY" "$DURATION" || status=1
fi
write_summary "placement transition c=$CONCURRENCY" transition
exit "$status"
