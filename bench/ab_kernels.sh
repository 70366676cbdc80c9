#!/usr/bin/env bash
# A/B a kernel change on this noisy shared machine: build the kernel benchmark of a base commit
# and of the working tree, then run them alternately so that both see the same load.
#
#   bench/ab_kernels.sh BASE [ROUNDS] [BENCH]      e.g. bench/ab_kernels.sh HEAD 3 pointwise
#
# Prints each round's divan rows for A (BASE) and B (the working tree); compare the fastest and
# median columns of the same shape.
set -euo pipefail
cd "$(dirname "$0")/.."
base=$1
rounds=${2:-3}
bench=${3:-}
scratch=$(mktemp -d)
trap 'git worktree remove --force "$scratch/tree" >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT

# Builds the kernel benchmark in $1 with target dir $2 and prints the binary's path.
build() {
  (cd "$1" && CARGO_TARGET_DIR="$2" cargo bench -q -p regnet-runtime --bench kernels --no-run >&2)
  ls -t "$2"/release/deps/kernels-* | grep -v '\.d$' | head -1
}

git worktree add -q --detach "$scratch/tree" "$base"
a=$(build "$scratch/tree" "$scratch/target")
b=$(build "$PWD" "$PWD/target")
for round in $(seq "$rounds"); do
  for side in A B; do
    binary=$([ "$side" = A ] && echo "$a" || echo "$b")
    echo "== round $round, $side"
    "$binary" ${bench:+--bench "$bench"} --sample-count 30 2>&1 | grep -E "^\s*[│ ]*[├╰]─ \(" || true
  done
done
