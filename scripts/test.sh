#!/usr/bin/env bash
# Runs every test stage (unit tests, the same under ASan+UBSan, CLI tests, fuzzers briefly,
# end-to-end tests of veil serve with the OpenAI SDK)
# and ends with one line "N passed, N failed" summing all stages. Exit status 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

total_pass=0; total_fail=0; total_skip=0
log=$(mktemp); trap 'rm -f "$log"' EXIT

stage() { # stage NAME COMMAND...: runs a command that ends with "N passed, N failed[, N skipped]"
  local name=$1; shift
  echo "== $name"
  local t0=$SECONDS
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  echo "($name: $((SECONDS - t0)) s)"
  local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "$name: no result line (exit $rc)"; total_fail=$((total_fail + 1)); return
  fi
  local p f s
  p=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")
  f=$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$line")
  s=$(sed -nE 's/.*, ([0-9]+) skipped.*/\1/p' <<<"$line"); s=${s:-0}
  [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + s))
}

stage "unit tests" ./build/veil-tests
stage "unit tests (ASan+UBSan)" env ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./build/asan/veil-tests
stage "cli tests" bash tests/cli/run.sh
stage "fuzzers" bash tests/fuzz/run.sh
stage "e2e" bash tests/e2e/run.sh

echo "== total"
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
