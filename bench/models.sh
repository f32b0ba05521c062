#!/bin/sh
# The "Model benchmarks" of bench/README.md: makes the random-weight models (once) and runs
# `veil bench` on each, then prints a markdown table. JSON lines go to $OUT/results.jsonl.
#
#   bench/models.sh                      # all shapes and types below
#   SHAPES=d1024-l16 TYPES=Q4_0 bench/models.sh
#
# Environment: VEIL (binary, default build/veil), OUT (models and results, default
# /tmp/veil-bench), THREADS (default 2), BENCH_ARGS (extra veil bench flags), MEMBW (GB/s;
# measured once when unset, so every row divides by the same figure), RUN (a command prefix
# for the measurements, e.g. "chrt -f 10" to keep other processes off the cores), PAUSE
# (seconds to wait between runs, so that a real-time RUN leaves others some time), and
# VEIL_KERNELS (veil's kernel choice: unset = the best the CPU has, "scalar" = portable).
set -eu
VEIL=${VEIL:-build/veil}
OUT=${OUT:-/tmp/veil-bench}
THREADS=${THREADS:-2}
SHAPES=${SHAPES:-"d1024-l16 tinyllama-1.1b"}
TYPES=${TYPES:-"Q4_0 Q8_0 Q4_K F16"}
BENCH_ARGS=${BENCH_ARGS:-"--tg 16 --reps 2 --profile"}
RUN=${RUN:-}
PAUSE=${PAUSE:-0}
mkdir -p "$OUT"

if [ -z "${MEMBW:-}" ]; then
    # shellcheck disable=SC2086
    MEMBW=$($RUN "$VEIL" bench --membw --threads "$THREADS" --json | sed 's/.*"membw_gbs":\([0-9.e+-]*\).*/\1/')
fi
echo "membw $MEMBW GB/s ($THREADS threads)" >&2

: > "$OUT/results.jsonl"
for shape in $SHAPES; do
    for type in $TYPES; do
        model="$OUT/$shape.$type.gguf"
        [ -f "$model" ] || "$VEIL" bench --make-model "$shape" "$type" "$model" --threads "$THREADS" >&2
        # The 1-minute load average before the run says how busy the machine was (other jobs).
        load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo null)
        echo "bench $shape $type (load $load)" >&2
        # shellcheck disable=SC2086
        $RUN "$VEIL" bench "$model" --threads "$THREADS" --membw "$MEMBW" --json $BENCH_ARGS |
            sed "s/}\$/,\"loadavg\":$load}/" >> "$OUT/results.jsonl"
        sleep "$PAUSE"
    done
done

# One row per run; fields pulled from the one-line JSON objects veil bench writes.
awk 'function f(k,   m) { if (match($0, "\"" k "\":[^,}]*")) { m = substr($0, RSTART, RLENGTH); sub(/^[^:]*:/, "", m); gsub(/"/, "", m); return m } return "" }
     BEGIN { print "| model | type | file MB | MB/token | pp t/s | tg t/s | tg x batch t/s | tg GB/s | tg / bandwidth | peak RSS MB | load |";
             print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" }
     { n = f("name"); sub(/^veil random /, "", n);
       printf "| %s | %s | %.0f | %.0f | %.2f | %.2f | %.2f (x%s) | %.2f | %.1f%% | %.0f | %s |\n", n, f("weight_type"),
              f("file_bytes") / 1e6, f("bytes_per_token") / 1e6, f("pp_tps"), f("tg_tps"), f("tg_batch_tps"),
              f("batch"), f("tg_bw_gbs"), 100 * f("tg_bw_fraction"), f("peak_rss_bytes") / 1e6, f("loadavg") }' "$OUT/results.jsonl"
