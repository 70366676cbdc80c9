#!/usr/bin/env bash
# A/B a change of the whole forward pass on this noisy shared machine: build the `regnet` binary
# of a base commit and of the working tree, then time them alternately (`regnet bench`, synthetic
# input, random weights) so that both see the same load.
#
#   bench/ab_network.sh BASE [ROUNDS] [THREADS]      e.g. bench/ab_network.sh HEAD~1 5 1
#
# Prints one row per (model, batch): the median over rounds of B's (the working tree's) and A's
# (BASE's) median latency, and B / A (below 1: the working tree is faster); then each side's
# fastest pass over all rounds, and B / A of those.
set -euo pipefail
cd "$(dirname "$0")/.."
base=$1
rounds=${2:-5}
threads=${3:-1}
scratch=$(mktemp -d)
trap 'git worktree remove --force "$scratch/tree" >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT

git worktree add -q --detach "$scratch/tree" "$base"
(cd "$scratch/tree" && CARGO_TARGET_DIR="$scratch/target" cargo build -q --release -p regnet-cli)
cargo build -q --release -p regnet-cli
a="$scratch/target/release/regnet"
b="$PWD/target/release/regnet"
# Prints a run's median and fastest pass, in ms.
times_ms() {
  "$1" bench "$2" --batch "$3" --threads "$threads" --iters "$4" --json |
    python3 bench/median_best.py
}
printf '%-18s %5s %12s %12s %8s %12s %12s %8s\n' model batch "B ms" "A ms" "B/A" "B best" "A best" "best B/A"
for model in regnety_400mf regnetx_400mf_tv regnety_1.6gf; do
  for batch in 1 8; do
    iters=$(( batch == 1 ? 30 : 8 ))
    a_ms=()
    b_ms=()
    a_best=()
    b_best=()
    for _ in $(seq "$rounds"); do
      read -r median best < <(times_ms "$a" "$model" "$batch" "$iters")
      a_ms+=("$median")
      a_best+=("$best")
      read -r median best < <(times_ms "$b" "$model" "$batch" "$iters")
      b_ms+=("$median")
      b_best+=("$best")
    done
    python3 bench/median_row.py "$model" "$batch" "${b_ms[*]}" "${a_ms[*]}" "${b_best[*]}" "${a_best[*]}"
  done
done
