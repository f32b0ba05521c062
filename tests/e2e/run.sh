#!/usr/bin/env bash
# End-to-end stage: the official OpenAI SDK and raw HTTP against `build/veil serve` and
# `build/veil devnet` (and the network roles one by one) on the
# bundled model (serve.test.mjs, node's built-in test runner). Installs the pinned SDK from
# package-lock.json when node_modules is missing. Ends with "N passed, N failed[, N skipped]".
set -uo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null 2>&1; then
  echo "e2e: node is not installed; skipping the end-to-end tests"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi
if [ ! -x ../../build/veil ]; then
  echo "e2e: build/veil is missing (make build/veil)"
  echo "0 passed, 1 failed"
  exit 1
fi
if [ ! -d node_modules/openai ]; then
  npm ci --no-audit --no-fund >/dev/null 2>&1 || { echo "e2e: npm ci failed"; echo "0 passed, 1 failed"; exit 1; }
fi
log=$(mktemp); trap 'rm -f "$log"' EXIT
node --test --test-reporter=tap *.test.mjs 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
pass=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$log" | tail -n 1)
fail=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$log" | tail -n 1)
skip=$(sed -nE 's/^# skipped ([0-9]+)$/\1/p' "$log" | tail -n 1)
pass=${pass:-0}; fail=${fail:-0}; skip=${skip:-0}
[ "$rc" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
