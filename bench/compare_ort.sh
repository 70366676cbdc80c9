#!/usr/bin/env bash
# Our latency against ONNX Runtime's, measured alternately in one run (shared machines drift).
#
#   bench/compare_ort.sh [ROUNDS] [THREADS] [ISA]      e.g. bench/compare_ort.sh 3 2
#
# ISA (scalar, avx2, avx512) limits our kernels' instruction set; by default both sides use the
# best the CPU has.
# Installs onnxruntime 1.32.0 into bench/.venv on first use. Needs ../shared/bench beside the
# repository (the ONNX files of torchvision's RegNets and ort_bench.py). Prints one table row per
# (model, batch): the median of each side's per-round medians, and ours / ORT; then each side's
# fastest pass over all rounds, and ours / ORT of those (see bench/median_row.py).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
threads=${2:-2}
isa=(${3:+--isa "$3"})
shared=../shared/bench
venv=bench/.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q onnxruntime==1.32.0 numpy
fi
cargo build -q --release -p regnet-cli
# ours (spec stem) and ORT's (ONNX file) names of the same network.
pairs="regnety_400mf:regnet_y_400mf regnetx_400mf_tv:regnet_x_400mf regnety_1.6gf:regnet_y_1_6gf"
printf '%-18s %5s %12s %12s %8s %12s %12s %8s\n' model batch "ours ms" "ORT ms" ratio \
  "ours best" "ORT best" "best ratio"
for pair in $pairs; do
  ours=${pair%%:*}
  onnx=${pair##*:}
  for batch in 1 8; do
    iters=$(( batch == 1 ? 30 : 8 ))
    ours_ms=()
    ort_ms=()
    ours_best=()
    ort_best=()
    for _ in $(seq "$rounds"); do
      read -r median best < <(target/release/regnet bench "$ours" --batch "$batch" --threads "$threads" --iters "$iters" "${isa[@]}" --json |
        python3 bench/median_best.py)
      ours_ms+=("$median")
      ours_best+=("$best")
      read -r median best < <("$venv/bin/python" "$shared/ort_bench.py" "$shared/onnx/$onnx.onnx" --batch "$batch" --threads "$threads" --iters "$iters" |
        python3 bench/median_best.py)
      ort_ms+=("$median")
      ort_best+=("$best")
    done
    python3 bench/median_row.py "$ours" "$batch" "${ours_ms[*]}" "${ort_ms[*]}" "${ours_best[*]}" "${ort_best[*]}"
  done
done
