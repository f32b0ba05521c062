#!/usr/bin/env bash
# Runs each libFuzzer target briefly from its seed corpus (tests/fuzz/seeds/NAME/), with a fixed
# seed so a run is repeatable. A crash leaves its input in build/fuzz/ and fails the stage.
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=${VEIL_FUZZ_SECONDS:-10}
pass=0; fail=0
for bin in build/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  corpus=build/fuzz/corpus-$name
  mkdir -p "$corpus"
  [ -d "tests/fuzz/seeds/${name#fuzz_}" ] && cp -n tests/fuzz/seeds/"${name#fuzz_}"/* "$corpus"/ 2>/dev/null
  if "$bin" -seed=1 -max_total_time="$secs" -max_len=65536 -artifact_prefix=build/fuzz/"$name"- \
       "$corpus" > build/fuzz/"$name".log 2>&1; then
    echo "ok   $name ($(grep -Eo 'Done [0-9]+ runs' build/fuzz/"$name".log | head -1))"
    pass=$((pass + 1))
  else
    echo "FAIL $name: see build/fuzz/$name.log"; tail -n 30 build/fuzz/"$name".log
    fail=$((fail + 1))
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
