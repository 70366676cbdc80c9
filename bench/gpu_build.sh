#!/usr/bin/env bash
# Builds what bench/gpu_check.sh runs on a GPU machine (which has no Rust) into gpu-carry/:
# the `regnet` binary and the GPU test binary (tests/cuda.rs), both with `--features cuda`,
# the repository's tiny fixtures it uses, and the shared 400MF fixtures when ../shared is there. Carry `gpu-carry` with the `device`
# tool (64 MiB at most, checked below).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/gpu-carry/' .git/info/exclude 2>/dev/null || echo '/gpu-carry/' >> .git/info/exclude
rm -rf gpu-carry && mkdir -p gpu-carry/fixtures
cargo build -q --release --features cuda -p regnet-cli
cp target/release/regnet gpu-carry/
test_binary=$(cargo test -q --release --features cuda --test cuda --no-run --message-format json |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "cuda":
        print(m["executable"])')
cp "$test_binary" gpu-carry/cuda-tests
strip gpu-carry/regnet gpu-carry/cuda-tests
cp -r tests/fixtures/tv_x tests/fixtures/pycls_y gpu-carry/fixtures/
for fixture in regnet_y_400mf regnet_x_400mf; do
  [ -d "../shared/fixtures/$fixture" ] || continue
  mkdir -p "gpu-carry/fixtures/$fixture"
  cp ../shared/fixtures/$fixture/{model,input,expected}.safetensors "gpu-carry/fixtures/$fixture/"
done
du -sh gpu-carry
[ "$(du -sm gpu-carry | cut -f1)" -lt 60 ] || { echo "gpu-carry is over the device tool's 64 MiB" >&2; exit 1; }
