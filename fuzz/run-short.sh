#!/usr/bin/env bash
# Runs one fuzz target briefly, as ctest does (fuzz/CMakeLists.txt):
#   run-short.sh TARGET_BINARY SEED_DIR SECONDS
# on a copy of SEED_DIR in a temporary directory (libFuzzer adds what it
# finds to its first corpus directory; the seeds stay as they are). Fails
# when the target crashes, leaks or breaks an invariant; the crashing input
# is then kept in the temporary directory, whose path is printed.
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "usage: $0 TARGET_BINARY SEED_DIR SECONDS" >&2
  exit 2
fi
target=$1 seeds=$2 seconds=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/lotse-fuzz-short.XXXXXX")
mkdir "$work/corpus" "$work/artifacts"
cp -R "$seeds/." "$work/corpus/"
status=0
"$target" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
  "$work/corpus" || status=$?
if [ "$status" -ne 0 ]; then
  echo "fuzz target failed (exit $status); inputs kept in $work/artifacts" >&2
  ls -l "$work/artifacts" >&2 || true
  exit 1
fi
rm -rf "$work"
