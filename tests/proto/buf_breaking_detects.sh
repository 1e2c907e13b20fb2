#!/usr/bin/env bash
# Proves that `buf breaking` against the released contract
# (proto/released-v1.txtpb, the lint.buf_breaking test) refuses the changes
# that break released clients. Each case edits one line of a copy of proto/
# and expects buf to fail with the named rule; an unchanged copy must pass,
# so that the failures come from the edits and not from the set-up.
# Usage: buf_breaking_detects.sh <source root>
set -euo pipefail

ROOT=$(cd "$1" && pwd)
BUF=$ROOT/node_modules/.bin/buf
BASELINE=$ROOT/proto/released-v1.txtpb
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

failures=0

fresh_copy() {
  rm -rf "$WORK/tree"
  mkdir -p "$WORK/tree"
  cp -r "$ROOT/proto" "$ROOT/buf.yaml" "$WORK/tree/"
}

run_buf() {
  (cd "$WORK/tree" && "$BUF" breaking --against "$BASELINE" --error-format=json)
}

# expect_break <rule> <what> <file under proto/> <sed expression>
expect_break() {
  local rule=$1 what=$2 file=$WORK/tree/proto/$3 edit=$4
  fresh_copy
  cp "$file" "$WORK/before"
  sed -i -e "$edit" "$file"
  if cmp -s "$file" "$WORK/before"; then
    echo "FAIL: $what: the edit '$edit' no longer applies to proto/$3; update this test"
    failures=$((failures + 1))
    return
  fi
  local out status=0
  out=$(run_buf 2>&1) || status=$?
  if [ "$status" -eq 0 ]; then
    echo "FAIL: $what: buf breaking accepted it"
    failures=$((failures + 1))
  elif ! grep -q "\"type\":\"$rule\"" <<<"$out"; then
    echo "FAIL: $what: buf breaking failed (exit $status) but not with $rule:"
    echo "$out"
    failures=$((failures + 1))
  else
    echo "ok: $what: refused ($rule)"
  fi
}

fresh_copy
if out=$(run_buf 2>&1); then
  echo "ok: the unchanged contract passes"
else
  echo "FAIL: the unchanged contract does not pass buf breaking:"
  echo "$out"
  failures=$((failures + 1))
fi

expect_break FIELD_NO_DELETE "a released field removed" \
  lotse/identity/v1/agency.proto '/^  string display_name = 2;$/d'
expect_break FIELD_NO_DELETE "a released field renumbered" \
  lotse/identity/v1/agency.proto 's/^  string display_name = 2;$/  string display_name = 20;/'
expect_break FIELD_SAME_TYPE "a released field's type changed" \
  lotse/identity/v1/agency.proto 's/^  string municipality_code = 4;$/  int64 municipality_code = 4;/'
expect_break FIELD_SAME_NAME "a released field renamed" \
  lotse/audit/v1/audit_service.proto '0,/^  int64 seq = 3;$/s//  int64 sequence = 3;/'
expect_break ENUM_VALUE_NO_DELETE "a released enum value removed" \
  lotse/identity/v1/agency.proto '/^  AGENCY_STATE_SUSPENDED = 2;$/d'
expect_break RPC_NO_DELETE "a released RPC removed" \
  lotse/identity/v1/identity_service.proto '/^  rpc GetAgency(GetAgencyRequest) returns (Agency);$/d'
expect_break FIELD_NO_DELETE "a field of google.rpc.ErrorInfo removed" \
  google/rpc/error_details.proto '/^  string reason = 1;$/d'

if [ "$failures" -ne 0 ]; then
  echo "$failures case(s) failed"
  exit 1
fi
