#!/usr/bin/env bash
# Runs one fuzz target briefly, as ctest does (fuzz/CMakeLists.txt):
#   run-short.sh TARGET_BINARY SEED_DIR RUNS SEED
# on a copy of SEED_DIR in a temporary directory (libFuzzer adds what it
# finds to its first corpus directory; the seeds stay as they are).
#
# A fixed libFuzzer seed and a fixed number of executions make the run
# repeatable: the same inputs on every machine, so a test run fails only
# for a change in the code or the seeds, never for the luck of the draw.
# Finding new inputs is the long runs' work (tools/fuzz-long.sh). A slow
# machine stops after five minutes, with the inputs tried so far.
#
# Fails when the target crashes, leaks or breaks an invariant; the crashing
# input is then kept in the temporary directory, whose path is printed.
set -euo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 TARGET_BINARY SEED_DIR RUNS SEED" >&2
  exit 2
fi
target=$1 seeds=$2 runs=$3 seed=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/lotse-fuzz-short.XXXXXX")
mkdir "$work/corpus" "$work/artifacts"
cp -R "$seeds/." "$work/corpus/"
status=0
"$target" -seed="$seed" -runs="$runs" -max_total_time=300 -timeout=60 \
  -rss_limit_mb=4096 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" || status=$?
if [ "$status" -ne 0 ]; then
  echo "fuzz target failed (exit $status); inputs kept in $work/artifacts" >&2
  ls -l "$work/artifacts" >&2 || true
  exit 1
fi
rm -rf "$work"
