#!/usr/bin/env bash
# The two entry points of the README:
#   tools/lotse.sh run    install what is missing, build, make dev certificates,
#                         run every service (mutual TLS, embedded SQLite) with
#                         the demo municipality loaded, until Ctrl-C
#                         (--no-demo, or LOTSE_DEMO=0, skips the demo data)
#   tools/lotse.sh test   install what is missing, build, run every test (ctest),
#                         then build the fuzz targets and run each briefly
# Both work as root on a fresh Debian 12; as another user they need sudo for
# the package installation step only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# Debian 12 packages the build, the tests and the run need.
PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev libssl-dev openssl libsqlite3-dev libpq-dev libicu-dev
  prometheus-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev
  postgresql clang-format iproute2 procps
  # The Python client example (examples/python) and its test.
  python3-grpcio python3-grpc-tools python3-protobuf
  # The steering report's check in a headless browser.
  chromium
  # The fuzz targets (fuzz/): clang with libFuzzer and the sanitizers.
  clang libclang-rt-14-dev
)

SERVICES=(identity cases courses placement)
# Default gRPC and metrics ports of the services, in the order above.
GRPC_PORTS=(50051 50052 50053 50054)
METRICS_PORTS=(9461 9462 9463 9464)
# Where each service's events go (--event_destinations): every other
# service, since each witnesses the others' signed audit checkpoints
# (common/audit/checkpoint_exchange.h) besides consuming what concerns it
# (DESIGN.md section 3); a receiver ignores the events it does not consume.
declare -A EVENT_DESTINATIONS=(
  [identity]="courses=127.0.0.1:50053,cases=127.0.0.1:50052,placement=127.0.0.1:50054"
  [courses]="identity=127.0.0.1:50051,cases=127.0.0.1:50052,placement=127.0.0.1:50054"
  [cases]="identity=127.0.0.1:50051,courses=127.0.0.1:50053,placement=127.0.0.1:50054"
  [placement]="identity=127.0.0.1:50051,cases=127.0.0.1:50052,courses=127.0.0.1:50053"
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # Node.js and npm bring buf (protobuf lint); any node >= 18 will do.
  if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

install_npm_tools() {
  if [ ! -x node_modules/.bin/buf ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing npm dev tools (buf)"
    # Not `npm ci`: npm 9 (Debian) and npm 11 write and demand different sets
    # of buf's per-platform optional packages in the lock file, so a lock from
    # one is refused by the other. `install --no-save` still takes the pinned
    # versions from the lock and never rewrites it.
    npm install --no-save --no-audit --no-fund --loglevel=error
  fi
}

jobs_for_build() {
  # Two compile jobs per core is too many for gRPC code in 2 cores' memory
  # budget; one per core keeps builds predictable.
  nproc
}

build() {
  local preset=$1; shift
  log "configuring ($preset)"
  cmake --preset "$preset" "$@" >/dev/null
  log "building ($preset) with $(jobs_for_build) jobs"
  local start=$SECONDS
  cmake --build --preset "$preset" -j "$(jobs_for_build)"
  log "build took $((SECONDS - start)) s"
}

cmd_test() {
  install_packages
  install_npm_tools
  build ci
  log "running tests"
  local start=$SECONDS
  ctest --preset ci -j "$(nproc)" --timeout 600
  log "tests took $((SECONDS - start)) s"
  # The libFuzzer targets (fuzz/), each run for a few seconds on its seeds.
  build fuzz
  log "running the fuzz targets briefly"
  start=$SECONDS
  ctest --preset fuzz -j "$(nproc)" --timeout 600
  log "fuzz runs took $((SECONDS - start)) s"
}

cmd_run() {
  local demo=${LOTSE_DEMO:-1}
  for arg in "$@"; do
    case $arg in
      --no-demo) demo=0 ;;
      *) echo "usage: $0 run [--no-demo]" >&2; exit 2 ;;
    esac
  done
  install_packages
  build release -DLOTSE_BUILD_TESTS=OFF -DLOTSE_BUILD_BENCH=OFF
  local bin="$ROOT/build/release"
  local dev="$ROOT/.dev"
  mkdir -p "$dev/data" "$dev/logs"
  log "dev certificates in $dev/pki"
  "$ROOT/tools/dev-pki.sh" "$dev/pki" >/dev/null

  local pids=()
  stop_all() {
    trap - INT TERM EXIT
    log "stopping services (SIGTERM, graceful drain)"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait || true
  }
  trap stop_all INT TERM EXIT

  for i in "${!SERVICES[@]}"; do
    local s=${SERVICES[$i]}
    local extra=()
    case $s in
      identity)
        # Where a person's transparency report asks for audit records.
        extra+=("--audit_peers=cases=127.0.0.1:${GRPC_PORTS[1]},courses=127.0.0.1:${GRPC_PORTS[2]},placement=127.0.0.1:${GRPC_PORTS[3]}") ;;
      cases | courses | placement)
        extra+=("--identity_target=127.0.0.1:${GRPC_PORTS[0]}") ;;
    esac
    "$bin/services/$s/lotse_$s" \
      --listen="127.0.0.1:${GRPC_PORTS[$i]}" \
      --metrics_listen="127.0.0.1:${METRICS_PORTS[$i]}" \
      --tls_dir="$dev/pki" \
      --tls_crl="$dev/pki/crl/ca.crl" \
      --database="sqlite:$dev/data/$s.db" \
      --retention_rules="$ROOT/config/retention.conf" \
      --drain_grace=1s \
      --dev_clock \
      --event_destinations="${EVENT_DESTINATIONS[$s]}" \
      "${extra[@]}" \
      2>>"$dev/logs/$s.log" &
    pids+=($!)
  done

  for i in "${!SERVICES[@]}"; do
    local s=${SERVICES[$i]}
    if ! "$bin/tools/lotse_health_probe" --target="127.0.0.1:${GRPC_PORTS[$i]}" \
        --tls_dir="$dev/pki" --client=kim-koeln --wait=30s >/dev/null; then
      log "$s did not become healthy; see $dev/logs/$s.log"
      tail -n 20 "$dev/logs/$s.log" >&2 || true
      exit 1
    fi
  done

  local seed_args=(--identity="127.0.0.1:${GRPC_PORTS[0]}"
    --cases="127.0.0.1:${GRPC_PORTS[1]}" --courses="127.0.0.1:${GRPC_PORTS[2]}"
    --placement="127.0.0.1:${GRPC_PORTS[3]}" --tls_dir="$dev/pki")
  if [ "$demo" != 0 ]; then
    log "registering the demo agencies and loading the demo municipality Lindenbrück"
    seed_args+=(--municipality)
  else
    log "registering the demo agencies (as lotse-admin) and placement demo data"
  fi
  local seeded=0 seed_start=$SECONDS
  "$bin/tools/lotse_seed_demo" "${seed_args[@]}" >"$dev/logs/seed.log" 2>&1 || seeded=$?
  if [ "$seeded" -eq 3 ]; then
    # The agencies are registered; only the placement demo records failed.
    log "placement demo data not created; see $dev/logs/seed.log"
  elif [ "$seeded" -eq 4 ]; then
    log "demo municipality incomplete; see $dev/logs/seed.log"
  elif [ "$seeded" -ne 0 ]; then
    log "demo seed failed; see $dev/logs/seed.log"; tail -n 20 "$dev/logs/seed.log" >&2; exit 1
  fi
  grep -h "^demo municipality\|^guided tour" "$dev/logs/seed.log" >&2 || true
  log "demo data took $((SECONDS - seed_start)) s"

  log "Lotse is running (mutual TLS, embedded SQLite in $dev/data, logs in $dev/logs):"
  for i in "${!SERVICES[@]}"; do
    printf '    %-10s grpc 127.0.0.1:%s   metrics http://127.0.0.1:%s/metrics\n' \
      "${SERVICES[$i]}" "${GRPC_PORTS[$i]}" "${METRICS_PORTS[$i]}" >&2
  done
  printf '    client certificates: %s/pki/clients/<agency>.crt, CA %s/pki/ca.crt\n' "$dev" "$dev" >&2
  printf '    lotsectl: export LOTSE_TLS_DIR=%s/pki LOTSE_CLIENT=kim-lindenbrueck; %s/tools/lotsectl/lotsectl help\n' "$dev" "$bin" >&2
  log "press Ctrl-C to stop"
  # Returns when any service exits (or on Ctrl-C via the trap).
  wait -n "${pids[@]}" || true
  log "a service exited; stopping the rest"
}

case "${1:-}" in
  run) shift; cmd_run "$@" ;;
  test) cmd_test ;;
  deps) install_packages; install_npm_tools ;;
  *) echo "usage: $0 run|test|deps" >&2; exit 2 ;;
esac
