#!/usr/bin/env bash
# Peak memory of a 256-image batch at 224×224 against a bound computed from the static shapes
# (issue 7): the process's peak RSS (GNU time's "Maximum resident set size") must not exceed
#
#   input + workspace + 2 × 4 bytes × params + 64 MiB
#
# input: the batch as f32 (256·3·224·224·4 bytes); workspace: every buffer of the workspace for
# 256 images (WorkspaceLayout, printed by `regnet bench --json`); weights twice, because the
# unpacked f32 weights are alive while they are folded and packed; 64 MiB for the binary, thread
# stacks and the allocator. Not a timed test: run it by hand or from tools/harden.sh.
#
#   bash tools/memory_bound.sh [MODEL...]     (default: regnety_1.6gf regnetx_3.2gf)
set -euo pipefail
cd "$(dirname "$0")/.."
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(regnety_1.6gf regnetx_3.2gf)
cargo build --release -q -p regnet-cli
batch=256
status=0
for model in "${models[@]}"; do
  report=$(mktemp)
  json=$(/usr/bin/time -v -o "$report" target/release/regnet bench "$model" --batch $batch --iters 1 --json)
  peak_kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$report")
  rm -f "$report"
  python3 - "$model" "$peak_kib" "$json" <<'PY' || status=1
import json, sys
model, peak_kib, result = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
batch = result["batch"]
input_bytes = batch * 3 * 224 * 224 * 4
bound = input_bytes + result["workspace_bytes"] + 2 * 4 * result["params"] + 64 * 2**20
peak = peak_kib * 1024
mib = lambda b: f"{b / 2**20:,.1f} MiB"
print(f"{model} batch {batch}: peak RSS {mib(peak)}; bound {mib(bound)} = input {mib(input_bytes)}"
      f" + workspace {mib(result['workspace_bytes'])} + 2 × weights {mib(4 * result['params'])}"
      f" + 64 MiB; {peak / bound:.0%} of the bound; {result['median_ms']} ms")
sys.exit(0 if peak <= bound else 1)
PY
done
exit $status
