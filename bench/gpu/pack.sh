#!/usr/bin/env bash
# Prepares .gpu/ (ignored by git) for bench/gpu/check.sh on a GPU machine that cannot build
# veil (its image has nvcc and PyTorch but maybe not our C libraries, and nothing can be
# installed there): the CUDA-enabled binaries, stripped; the shared libraries they need beyond
# the C and C++ runtimes; and the reference data the GPU tests read. Run it here, then on the
# GPU machine:  bash bench/gpu/check.sh "$OUT"   with .gpu carried (bench/README.md, "GPU").
# The whole working tree that travels must stay under 64 MiB, so two of the 18 reference
# models (the F32 llama and qwen2 files, 14.6 MB) stay behind; check.sh runs only the GPU
# tests whose files are there.
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${VEIL_SHARED:-../shared}
[ -d "$shared/reference/llamacpp" ] || { echo "pack: no reference data in $shared (set VEIL_SHARED)" >&2; exit 1; }
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "pack: nvcc not found: cannot build the CUDA backend" >&2; exit 1; }

echo "pack: building build/veil and build/veil-tests with CUDA"
make -j"$(nproc)" CUDA=1 build/veil build/veil-tests
rm -rf .gpu
mkdir -p .gpu/bin .gpu/lib .gpu/shared/reference/llamacpp .gpu/shared/reference/stories260K .gpu/shared/models
strip -o .gpu/bin/veil build/veil
strip -o .gpu/bin/veil-tests build/veil-tests
# everything the binaries link except the C/C++ runtime, which the GPU machine has (newer)
ldd build/veil-tests build/veil | awk '$3 ~ /^\// { print $3 }' | sort -u |
    grep -vE '/(libc|libm|libgcc_s|libstdc\+\+|libpthread|libdl|librt|ld-linux[^/]*)\.so' |
    while read -r lib; do cp -L "$lib" .gpu/lib/; done
for f in "$shared"/reference/llamacpp/*; do
    case "$(basename "$f")" in
        tiny-llama-F32.gguf | tiny-qwen2-F32.gguf | summary.json | README.md) ;;
        *) cp "$f" .gpu/shared/reference/llamacpp/ ;;
    esac
done
cp "$shared"/reference/stories260K/* .gpu/shared/reference/stories260K/
cp "$shared"/models/stories260K.gguf .gpu/shared/models/
tracked=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
packed=$(du -sb .gpu | cut -f1)
echo "pack: .gpu holds $((packed / 1000000)) MB; with the tracked files $(((packed + tracked) / 1000000)) MB of the 64 MiB that travel"
echo "pack: now run on the GPU machine, with carry [\".gpu\"]:  bash bench/gpu/check.sh \"\$OUT\""
