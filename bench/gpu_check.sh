#!/usr/bin/env bash
# The CUDA checks, as one run on a GPU machine (the `device` tool), after bench/gpu_build.sh:
#   run: bash bench/gpu_check.sh   carry: gpu-carry
# 1. tests/cuda.rs: fixture parity in fp32 (stages ≤ 1e-4) and TF32's drift;
# 2. the timing table: ours against PyTorch eager, regnety_1.6gf and regnetx_3.2gf at batch 1, 64
#    and 256, fp32 (TF32 off on both sides) and TF32, alternating ours and PyTorch per row.
# Logs go to $OUT (or /tmp/gpu-check without the tool).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
# NVRTC: the image ships the CUDA 13 wheel (libnvrtc.so.13); cudarc looks for libnvrtc.so too.
nvrtc=$(python3 -c 'import glob, os, nvidia
print(sorted(glob.glob(os.path.join(list(nvidia.__path__)[0], "**", "libnvrtc.so.*[0-9]"), recursive=True))[0])')
mkdir -p /tmp/nvrtc && ln -sf "$nvrtc" /tmp/nvrtc/libnvrtc.so
export LD_LIBRARY_PATH="/tmp/nvrtc:$(dirname "$nvrtc")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export REGNET_CUDA_CACHE=/tmp/regnet-cubin
export REGNET_FIXTURES=gpu-carry/fixtures
echo "NVRTC: $nvrtc"
timeout 240 gpu-carry/cuda-tests --nocapture --test-threads 1 2>&1 | tee "$out/parity.log"
{
  printf '%-16s %5s %5s %12s %12s %12s\n' model batch mode "ours ms" "torch ms" "ours/torch"
  for pair in regnety_1.6gf:regnet_y_1_6gf regnetx_3.2gf:regnet_x_3_2gf; do
    for batch in 1 64 256; do
      for mode in fp32 tf32; do
        flag=(); [ "$mode" = tf32 ] && flag=(--tf32)
        iters=$(( batch == 256 ? 10 : 30 ))
        ours=$(gpu-carry/regnet bench "${pair%%:*}" --device cuda --batch "$batch" --iters "$iters" "${flag[@]}" --json |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')
        torch=$(python3 bench/torch_eager.py "${pair##*:}" --batch "$batch" --iters "$iters" "${flag[@]}" |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')
        python3 -c "import sys; a, b = float('$ours'), float('$torch'); print(f'%-16s %5s %5s %12.3f %12.3f %12.2f' % ('${pair%%:*}', $batch, '$mode', a, b, a / b))"
      done
    done
  done
} 2>&1 | tee "$out/timing.txt"
