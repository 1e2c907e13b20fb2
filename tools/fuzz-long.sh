#!/usr/bin/env bash
# Long fuzzing runs of the libFuzzer targets (fuzz/), outside ctest.
#
#   tools/fuzz-long.sh [--time=SECONDS] [--runs=N] [--jobs=J] [--out=DIR]
#                      [--no-build] [TARGET...]
#
# Builds the fuzz preset (clang, ASan+UBSan; --no-build: use what is built),
# then runs each TARGET (all of them by default) in turn until --runs
# executions or --time seconds, whichever comes first (default: 600 s, no
# run limit), with J parallel libFuzzer workers (-fork=J; default 1). Each
# target grows its own corpus in DIR/<target>/corpus (default
# ${TMPDIR:-/tmp}/lotse-fuzz), started from the checked-in seeds and kept
# across runs, never in the repository; crashing inputs land in
# DIR/<target>/artifacts. Prints, per target, the executions, their rate,
# the coverage reached and whether it crashed; exits 1 if any did.
#
# A crash: reproduce with build/fuzz/fuzz/<target> <input>, fix it, add a
# regression test to the unit tests and the input to fuzz/corpus/<target>/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

time_limit="" runs="" jobs=1 out="${TMPDIR:-/tmp}/lotse-fuzz" build=1
targets=()
for arg in "$@"; do
  case $arg in
    --time=*) time_limit=${arg#*=} ;;
    --runs=*) runs=${arg#*=} ;;
    --jobs=*) jobs=${arg#*=} ;;
    --out=*) out=${arg#*=} ;;
    --no-build) build=0 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) echo "unknown option $arg (see --help)" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done

if [ -z "$runs" ] && [ -z "$time_limit" ]; then time_limit=600; fi
if [ "$build" -eq 1 ]; then
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j "$(nproc)"
fi
bin="$ROOT/build/fuzz/fuzz"
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/*_fuzzer.cc; do targets+=("$(basename "$f" .cc)"); done
fi

export LSAN_OPTIONS="suppressions=$ROOT/tools/sanitizers/lsan.supp"
failed=0
summary=()
for t in "${targets[@]}"; do
  dir="$out/$t"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  limit=()
  [ -n "$time_limit" ] && limit+=(-max_total_time="$time_limit")
  [ -n "$runs" ] && limit+=(-runs="$runs")
  # The seeds as built; the checked-in ones if the build has not made them.
  seeds="$bin/corpus/$t"
  [ -d "$seeds" ] || seeds="$ROOT/fuzz/corpus/$t"
  parallel=()
  [ "$jobs" -gt 1 ] && parallel=(-fork="$jobs" -ignore_crashes=0)
  echo "==> $t (${limit[*]}, $jobs job(s)), corpus $dir/corpus" >&2
  start=$SECONDS
  status=0
  "$bin/$t" "${limit[@]}" "${parallel[@]}" -timeout=60 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
    "$dir/corpus" "$seeds" >"$dir/log" 2>&1 || status=$?
  elapsed=$((SECONDS - start))
  # Single process: stat::number_of_executed_units; -fork: the last
  # "#N ... exec/s" status line of the supervisor.
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$dir/log" |
    awk '{s += $2} END {print s + 0}')
  if [ "$execs" -eq 0 ]; then
    execs=$(grep -o '^#[0-9]*' "$dir/log" | tail -n 1 | tr -d '#')
  fi
  cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -n 1 | awk '{print $2}')
  verdict=ok
  if [ "$status" -ne 0 ]; then verdict="FAILED (exit $status, see $dir/log)"; failed=1; fi
  summary+=("$(printf '%-28s %12s execs %8s exec/s  cov %6s  %s' "$t" \
    "${execs:-0}" "$(( ${execs:-0} / (elapsed > 0 ? elapsed : 1) ))" \
    "${cov:-?}" "$verdict")")
  echo "${summary[-1]}" >&2
done
echo
printf '%s\n' "${summary[@]}"
exit "$failed"
