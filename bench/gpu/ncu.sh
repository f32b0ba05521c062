#!/usr/bin/env bash
# Nsight Compute on the decode step's matrix-vector kernels and the prompt's attention kernel
# of a random qwen3-0.6b BF16 model: duration, achieved bandwidth, occupancy and stall
# reasons, for the kernels bench/README.md "GPU" discusses. Run on the GPU machine after
# bench/gpu/pack.sh (binaries in .gpu/bin), with carry [".gpu"]:  bash bench/gpu/ncu.sh "$OUT"
# Firecracker machines let ncu read the counters (see the device notes); --clock-control none
# leaves the clocks as they are. Takes about 20 s.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUTDIR=${1:-${OUT:-/tmp/veil-gpu-out}}
mkdir -p "$OUTDIR"
cublas_dir=$(python3 -c 'import nvidia.cublas as c, os; print(os.path.join(list(c.__path__)[0], "lib"))' 2>/dev/null || true)
export LD_LIBRARY_PATH="$PWD/.gpu/lib:/usr/local/cuda/lib64${cublas_dir:+:$cublas_dir}"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
BIN=.gpu/bin/veil
M=/tmp/veil-ncu-qwen3-0.6b-BF16.gguf
[ -s "$M" ] || "$BIN" bench --make-model qwen3-0.6b BF16 "$M" --threads "$(nproc)" >/dev/null 2>&1
S=(--clock-control none --section SpeedOfLight --section Occupancy --section WarpStateStats
   --section MemoryWorkloadAnalysis --section LaunchStats)
# a decode step's products: skip the warm-up's first layers, then QKV, out, gate/up, down
timeout 120 "$NCU" "${S[@]}" -k regex:mmv_kernel --launch-skip 40 --launch-count 4 \
    "$BIN" bench "$M" --device cuda --pp 16 --tg 8 --batch 2 --reps 1 >"$OUTDIR/ncu_mmv.txt" 2>&1
timeout 90 "$NCU" "${S[@]}" -k regex:flash_kernel --launch-skip 30 --launch-count 1 \
    "$BIN" bench "$M" --device cuda --pp 2048 --pp-batch 2048 --tg 2 --batch 2 --reps 1 >"$OUTDIR/ncu_flash.txt" 2>&1
grep -hE "^  [a-z_]+<|Duration|DRAM Throughput|Memory Throughput .*Gbyte|Achieved Occupancy" \
    "$OUTDIR/ncu_mmv.txt" "$OUTDIR/ncu_flash.txt"
