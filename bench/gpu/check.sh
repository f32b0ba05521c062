#!/usr/bin/env bash
# The CUDA backend's one-shot GPU check (bench/README.md, "GPU"): everything a short lease of a
# GPU machine should measure, in one run of under 8 minutes on an H200.
#   1. binaries: .gpu/bin from bench/gpu/pack.sh when present, else builds with CUDA here
#   2. the GPU tests (reference logits of every model and type, greedy and batched output
#      equal to the CPU engine's, the host-side plans)
#   3. the GPU's device-to-device copy bandwidth
#   4. veil bench --device cuda on random qwen3-0.6b models in BF16 and Q8_0 (prefill of
#      2048 tokens, decode, 64 sequences batched), BF16 decode without CUDA graphs and without
#      programmatic dependent launch, and one
#      profiled run of each type (where the time goes, op by op, on the GPU's clock)
#   5. veil serve --device cuda answering one completion
#   6. PyTorch + transformers decode on the same GPU (skipped when absent, or when
#      VEIL_GPU_TORCH=0: its figure changes only with PyTorch, and it takes 40 s)
# and writes OUT/summary.json (targets computed), OUT/check.log (every part's output),
# OUT/bench.jsonl (the bench lines). A part that fails or runs out of time is recorded and the
# others still run; the summary is written after every part, so even a killed run leaves one.
# Usage: bash bench/gpu/check.sh [OUT]   (OUT defaults to $OUT, else /tmp/veil-gpu-out)
# Environment: VEIL_GPU_BUDGET seconds for everything (default 450), VEIL_SHARED reference
# data (default .gpu/shared, ./shared or ../shared), VEIL_GPU_WORK scratch (default /tmp/veil-gpu).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUTDIR=${1:-${OUT:-/tmp/veil-gpu-out}}
WORK=${VEIL_GPU_WORK:-/tmp/veil-gpu}
BUDGET=${VEIL_GPU_BUDGET:-450}
mkdir -p "$OUTDIR" "$WORK/parts"
LOG=$OUTDIR/check.log
SUMMARY=$OUTDIR/summary.json
: >"$LOG"
: >"$OUTDIR/bench.jsonl"
rm -f "$WORK"/parts/*
NPROC=$(nproc 2>/dev/null || echo 4)

say() { echo "check: $*" | tee -a "$LOG" >&2; }
left() { echo $((BUDGET - SECONDS)); }

# A JSON string from any text (quotes, backslashes and control characters escaped).
jstr() {
    local s
    s=$(printf '%s' "$1" | tr -d '\001-\010\013\014\016-\037')
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\t'/ }
    s=${s//$'\r'/}
    s=${s//$'\n'/\\n}
    printf '"%s"' "$s"
}
# The value of a flat JSON object's key (number, true/false/null or "string"); empty if absent.
jget() { grep -o "\"$2\":[^,}]*" "$1" 2>/dev/null | head -1 | cut -d: -f2- | tr -d '"'; }

# part NAME LIMIT CMD...: runs CMD with at most LIMIT seconds (less when the budget is
# nearly spent), output to the log and to parts/NAME.out; records ok / failed / timeout.
part() {
    local name=$1 want=$2 t rc=0
    shift 2
    t=$(left)
    ((t > want)) && t=$want
    if ((t < 5)); then
        say "$name: skipped, the time budget is spent"
        echo "skipped: time budget spent" >"$WORK/parts/$name.status"
        write_summary
        return 1
    fi
    say "$name: running (limit ${t}s): $*"
    local t0=$SECONDS
    timeout --kill-after=5 "$t" "$@" >"$WORK/parts/$name.out" 2>"$WORK/parts/$name.err" || rc=$?
    { echo "---- $name (rc $rc, $((SECONDS - t0)) s)"; cat "$WORK/parts/$name.out" "$WORK/parts/$name.err"; } >>"$LOG"
    if ((rc == 0)); then
        echo "ok" >"$WORK/parts/$name.status"
    elif ((rc == 124 || rc == 137)); then
        echo "timeout after ${t}s" >"$WORK/parts/$name.status"
    else
        echo "failed (exit $rc): $(tail -n 3 "$WORK/parts/$name.err" | tr '\n' ' ')" >"$WORK/parts/$name.status"
    fi
    echo "$((SECONDS - t0))" >"$WORK/parts/$name.seconds"
    say "$name: $(cat "$WORK/parts/$name.status") ($((SECONDS - t0)) s)"
    write_summary
    [ "$rc" = 0 ]
}

status_of() { cat "$WORK/parts/$1.status" 2>/dev/null || echo "not run"; }

# ratio A B: A / B with 4 significant digits, or null.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "null" || b == "null" || b + 0 == 0) print "null"; else printf "%.4g", a / b }'; }
num() { [ -n "$1" ] && [ "$1" != "null" ] && echo "$1" || echo null; }

# In a subshell without -e: a missing piece must never stop the summary from being written.
write_summary() (
    set +e
    local bf=$WORK/parts/bench_bf16.out q8=$WORK/parts/bench_q8_0.out ng=$WORK/parts/bench_bf16_nographs.out
    local np=$WORK/parts/bench_bf16_nopdl.out
    local tq=$WORK/parts/torch.out bw=$WORK/parts/copy_bw.out
    local bf_tg bf_batch bf_pp bf_bytes q8_tg q8_batch tflops torch_tps
    bf_tg=$(jget "$bf" tg_tps); bf_batch=$(jget "$bf" tg_batch_tps); bf_pp=$(jget "$bf" pp_tps)
    bf_bytes=$(jget "$bf" bytes_per_token); q8_tg=$(jget "$q8" tg_tps); q8_batch=$(jget "$q8" tg_batch_tps)
    torch_tps=$(jget "$tq" decode_tps)
    # prefill FLOPs per token: 2 per BF16 weight (bytes / 2); attention left out (conservative)
    tflops=$(awk -v t="$bf_pp" -v b="$bf_bytes" 'BEGIN { if (t == "" || b == "") print "null"; else printf "%.4g", t * b / 1e12 }')
    {
        echo "{"
        echo "  \"seconds\": $SECONDS,"
        echo "  \"gpu\": $(jstr "$(cat "$WORK/parts/info.out" 2>/dev/null | head -1)"),"
        echo "  \"binaries\": $(jstr "${BIN:-none}"),"
        echo "  \"parts\": {"
        local first=1 p
        for p in info build tests copy_bw models bench_bf16 bench_q8_0 bench_bf16_nographs bench_bf16_nopdl profile_bf16 \
            profile_q8_0 serve torch; do
            [ -f "$WORK/parts/$p.status" ] || continue
            ((first)) || echo ","
            first=0
            printf '    "%s": {"status": %s, "seconds": %s}' "$p" "$(jstr "$(status_of $p)")" "$(cat "$WORK/parts/$p.seconds" 2>/dev/null || echo null)"
        done
        echo ""
        echo "  },"
        echo "  \"tests\": $(jstr "$(grep -E '^[0-9]+ passed' "$WORK/parts/tests.out" 2>/dev/null | tail -1)"),"
        echo "  \"tests_failed\": $(jstr "$(grep -E '^FAIL' "$WORK/parts/tests.out" 2>/dev/null | head -40)"),"
        echo "  \"tests_skipped\": $(jstr "$(grep -E '^SKIP' "$WORK/parts/tests.out" 2>/dev/null | head -10)"),"
        echo "  \"copy_gbs\": $(num "$(jget "$bw" copy_gbs)"),"
        echo "  \"bench_bf16\": $(head -1 "$bf" 2>/dev/null | grep '^{' || echo null),"
        echo "  \"bench_q8_0\": $(head -1 "$q8" 2>/dev/null | grep '^{' || echo null),"
        echo "  \"bench_bf16_nographs\": $(head -1 "$ng" 2>/dev/null | grep '^{' || echo null),"
        echo "  \"bench_bf16_nopdl\": $(head -1 "$np" 2>/dev/null | grep '^{' || echo null),"
        echo "  \"profile_bf16\": $(head -1 "$WORK/parts/profile_bf16.out" 2>/dev/null | grep '^{' || echo null),"
        echo "  \"profile_q8_0\": $(head -1 "$WORK/parts/profile_q8_0.out" 2>/dev/null | grep '^{' || echo null),"
        echo "  \"torch\": $(head -1 "$tq" 2>/dev/null | grep '^{' || echo null),"
        echo "  \"targets\": {"
        echo "    \"decode_bw_fraction_bf16\": {\"value\": $(num "$(jget "$bf" tg_bw_fraction)"), \"target\": 0.5},"
        echo "    \"decode_bw_fraction_q8_0\": {\"value\": $(num "$(jget "$q8" tg_bw_fraction)"), \"target\": 0.5},"
        echo "    \"batch64_speedup_bf16\": {\"value\": $(ratio "$bf_batch" "$bf_tg"), \"target\": 20},"
        echo "    \"batch64_speedup_q8_0\": {\"value\": $(ratio "$q8_batch" "$q8_tg"), \"target\": 20},"
        echo "    \"prefill_tflops_bf16\": {\"value\": $tflops, \"target\": 100},"
        echo "    \"vs_torch_decode_bf16\": {\"value\": $(ratio "$bf_tg" "$torch_tps"), \"target\": 3}"
        echo "  }"
        echo "}"
    } >"$SUMMARY.tmp" && mv "$SUMMARY.tmp" "$SUMMARY"
)
trap write_summary EXIT

# ---- 1. binaries and data ----------------------------------------------------------------
part info 20 bash -c 'nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader; nvcc --version | tail -1; uname -a' || true
cublas_dir=$(python3 -c 'import nvidia.cublas as c, os; print(os.path.join(list(c.__path__)[0], "lib"))' 2>/dev/null || true)
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/usr/local/cuda/lib64${cublas_dir:+:$cublas_dir}"
if [ -x .gpu/bin/veil ] && [ -x .gpu/bin/veil-tests ]; then
    BIN=$ROOT/.gpu/bin
    export LD_LIBRARY_PATH="$ROOT/.gpu/lib:$LD_LIBRARY_PATH"
    say "using the packed binaries in .gpu/bin"
elif part build 240 make -j"$NPROC" CUDA=1 build/veil build/veil-tests; then
    BIN=$ROOT/build
else
    say "no binaries: build failed and there is no .gpu/bin (run bench/gpu/pack.sh where veil builds)"
    exit 1
fi
if [ -z "${VEIL_SHARED:-}" ]; then
    for d in .gpu/shared shared ../shared; do
        [ -d "$d/reference/llamacpp" ] && { VEIL_SHARED=$(cd "$d" && pwd); break; }
    done
fi
export VEIL_SHARED=${VEIL_SHARED:-$ROOT/shared}
say "reference data: $VEIL_SHARED"

# ---- 2. tests ------------------------------------------------------------------------------
# every GPU test whose reference files are here (pack.sh leaves two F32 models behind)
filter=(cuda_plan cuda_step cuda_att cuda_device cuda_cpu cuda_generate cuda_sched forward_cuda_stories
        forward_cuda_batch forward_cuda_multi)
[ -f "$VEIL_SHARED/reference/llamacpp/tiny-qwen3-F32.gguf" ] && filter+=(forward_cuda_bf16 forward_cuda_attention)
for arch in llama qwen2 qwen3; do
    for type in F32 F16 Q8_0 Q4_0 Q4_K_M Q6_K; do
        [ -f "$VEIL_SHARED/reference/llamacpp/tiny-$arch-$type.gguf" ] &&
            filter+=("forward_cuda_${arch}_$(echo "$type" | tr 'A-Z' 'a-z')")
    done
done
part tests 150 "$BIN/veil-tests" "${filter[@]}" || true
# a GPU test skips when the runtime finds no usable GPU (e.g. a driver older than the CUDA 13
# runtime needs, r580): the run then looks green while nothing ran on the device
if grep -q '^SKIP .*needs a GPU' "$WORK/parts/tests.out" 2>/dev/null; then
    echo "failed: GPU tests skipped: $(grep -m1 '^SKIP .*needs a GPU' "$WORK/parts/tests.out" | sed 's/^SKIP [^:]*: //')" \
        >"$WORK/parts/tests.status"
    say "tests: $(cat "$WORK/parts/tests.status") (driver: see the info part)"
    write_summary
fi

# ---- 3. bandwidth --------------------------------------------------------------------------
part copy_bw 30 "$BIN/veil" bench --membw --device cuda --json || true

# ---- 4. bench ------------------------------------------------------------------------------
make_models() {
    for t in BF16 Q8_0; do
        [ -s "$WORK/qwen3-0.6b-$t.gguf" ] || "$BIN/veil" bench --make-model qwen3-0.6b "$t" "$WORK/qwen3-0.6b-$t.gguf" --threads "$NPROC"
    done
}
export -f make_models
export BIN WORK NPROC
part models 120 bash -c make_models || true
bench_args=(--device cuda --json --pp 2048 --pp-batch 2048 --tg 128 --batch 64 --reps 3)
part bench_bf16 120 "$BIN/veil" bench "$WORK/qwen3-0.6b-BF16.gguf" "${bench_args[@]}" || true
part bench_q8_0 120 "$BIN/veil" bench "$WORK/qwen3-0.6b-Q8_0.gguf" "${bench_args[@]}" || true
part bench_bf16_nographs 60 env VEIL_CUDA_GRAPHS=0 "$BIN/veil" bench "$WORK/qwen3-0.6b-BF16.gguf" \
    --device cuda --json --pp 16 --tg 128 --batch 64 --reps 2 || true
part bench_bf16_nopdl 60 env VEIL_CUDA_PDL=0 "$BIN/veil" bench "$WORK/qwen3-0.6b-BF16.gguf" \
    --device cuda --json --pp 16 --tg 128 --batch 64 --reps 2 || true
for t in BF16 Q8_0; do
    part "profile_$(echo $t | tr 'A-Z' 'a-z')" 60 "$BIN/veil" bench "$WORK/qwen3-0.6b-$t.gguf" --device cuda --json \
        --profile --pp 2048 --pp-batch 2048 --tg 64 --batch 64 --reps 1 || true
done
cat "$WORK"/parts/bench_*.out "$WORK"/parts/profile_*.out >"$OUTDIR/bench.jsonl" 2>/dev/null || true

# ---- 5. serve ------------------------------------------------------------------------------
serve_once() {
    local url="" pid i
    "$BIN/veil" serve models/stories260K.gguf --device cuda --listen 127.0.0.1:0 >"$WORK/serve.out" &
    pid=$!
    for i in $(seq 300); do # up to 30 s for the 'ready:' line, or until serve exits
        url=$(grep -m1 '^ready: ' "$WORK/serve.out" | cut -d' ' -f2 || true)
        [ -n "$url" ] || ! kill -0 "$pid" 2>/dev/null && break
        sleep 0.1
    done
    if [ -z "$url" ]; then kill "$pid" 2>/dev/null; echo "serve did not print ready:"; return 1; fi
    local body rc=0
    body=$(curl -sS --max-time 20 "$url/v1/completions" -H 'content-type: application/json' \
        -d '{"model":"stories260K","prompt":"Once upon a time","max_tokens":24,"temperature":0}') || rc=$?
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
    echo "$body"
    [ "$rc" = 0 ] && echo "$body" | grep -q '"text"'
}
export -f serve_once
if command -v curl >/dev/null; then part serve 40 bash -c serve_once || true; fi

# ---- 6. PyTorch ----------------------------------------------------------------------------
if command -v python3 >/dev/null && [ "${VEIL_GPU_TORCH:-1}" != 0 ]; then part torch 180 env PYTHONUNBUFFERED=1 python3 bench/gpu/torch_decode.py 128 || true; fi

write_summary
say "done in $SECONDS s: $SUMMARY"
cat "$SUMMARY"
