#!/usr/bin/env bash
# `regnet serve` under load from Triton's perf_analyzer, against `regnet bench` on the same
# machine, measured alternately in one run (shared machines drift).
#
#   bench/serve_load.sh [ROUNDS] [MODEL]        e.g. bench/serve_load.sh 2 regnety_400mf
#
# Each round: `regnet bench MODEL` at batch 1 and 8, then perf_analyzer at concurrency 1, 2, 4,
# 8 and 16 over HTTP and over gRPC (batch-1 requests, binary tensors; 3 s windows, stable
# within 50%: this machine is noisy) against `regnet serve
# MODEL` (default settings: --max-batch 8, --max-delay 1ms, every core). Prints one row per
# protocol and concurrency (the median over rounds of throughput, p50 and p99), then the
# issue's two ratios. The client runs on the same cores as the server, as on a one-machine test.
#
# perf_analyzer: PyPI's `perf-analyzer` is an empty placeholder; tritonclient 2.41.0's wheel is
# the last to carry the binary. It is installed into bench/.serve-venv with the CUDA runtime
# library it links (nvidia-cuda-runtime-cu12; no GPU is used) and Debian's libb64-0d.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
model=${2:-regnety_400mf}
venv=bench/.serve-venv
http=127.0.0.1:18600
grpc=127.0.0.1:18601
if [ ! -x "$venv/bin/perf_analyzer" ]; then
  python3 -m venv "$venv"
  # Only for the binary: none of the client's Python dependencies.
  "$venv/bin/pip" install -q --no-deps tritonclient==2.41.0 nvidia-cuda-runtime-cu12==12.9.79
fi
if ! ldconfig -p | grep -q libb64.so.0d; then
  apt-get install -y -q libb64-0d >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q libb64-0d >/dev/null; }
fi
cudart=$("$venv/bin/python" -c 'import os, nvidia.cuda_runtime as m; print(os.path.join(list(m.__path__)[0], "lib"))')
perf() { LD_LIBRARY_PATH="$cudart" "$venv/bin/perf_analyzer" "$@"; }
cargo build -q --release -p regnet-cli
out=$(mktemp -d)
target/release/regnet serve "$model" --http "$http" --grpc "$grpc" 2>"$out/serve.log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 100); do
  curl -sf "http://$http/v2/health/ready" >/dev/null && break
  sleep 0.2
done
curl -sf "http://$http/v2/health/ready" >/dev/null || { cat "$out/serve.log"; exit 1; }
for round in $(seq "$rounds"); do
  for batch in 1 8; do
    target/release/regnet bench "$model" --batch "$batch" --iters $(( batch == 1 ? 40 : 10 )) --json \
      >"$out/bench_${batch}_$round.json"
  done
  for protocol in http grpc; do
    url=$([ "$protocol" = http ] && echo "$http" || echo "$grpc")
    # Over gRPC there is no model configuration (a Triton extension outside the protocol's
    # .proto): the shape is given, a batch of one, as over HTTP.
    for concurrency in 1 2 4 8 16; do
      perf -m "$model" -u "$url" -i "$protocol" --shape input:1,3,224,224 \
        --concurrency-range "$concurrency" --measurement-interval 3000 --max-trials 10 --stability-percentage 50 \
        -f "$out/perf_${protocol}_${concurrency}_$round.csv" >"$out/perf.log" 2>&1 ||
        { cat "$out/perf.log"; exit 1; }
    done
  done
done
python3 - "$out" "$rounds" "$model" <<'PY'
import csv, json, statistics, sys
out, rounds, model = sys.argv[1], int(sys.argv[2]), sys.argv[3]
bench = {b: [json.load(open(f"{out}/bench_{b}_{r}.json")) for r in range(1, rounds + 1)] for b in (1, 8)}
median_ms_1 = statistics.median(x["median_ms"] for x in bench[1])
images_per_s_8 = statistics.median(x["images_per_s"] for x in bench[8])
print(f"{model}: regnet bench batch 1 median {median_ms_1:.2f} ms; batch 8 {images_per_s_8:.1f} images/s "
      f"(medians of {rounds} rounds; per round: "
      + ", ".join(f"{a['median_ms']:.2f} ms / {b['images_per_s']:.1f} img/s" for a, b in zip(bench[1], bench[8])) + ")")
print("| protocol | concurrency | images/s | p50 ms | p99 ms |")
print("|---|---|---|---|---|")
rows = {}
for protocol in ("http", "grpc"):
    for concurrency in (1, 2, 4, 8, 16):
        runs = [next(csv.DictReader(open(f"{out}/perf_{protocol}_{concurrency}_{r}.csv"))) for r in range(1, rounds + 1)]
        throughput = statistics.median(float(run["Inferences/Second"]) for run in runs)
        p50 = statistics.median(float(run["p50 latency"]) for run in runs) / 1000
        p99 = statistics.median(float(run["p99 latency"]) for run in runs) / 1000
        rows[(protocol, concurrency)] = (throughput, p99)
        print(f"| {protocol.upper() if protocol == 'http' else 'gRPC'} | {concurrency} | {throughput:.1f} | {p50:.2f} | {p99:.2f} |")
for protocol in ("http", "grpc"):
    throughput_8 = rows[(protocol, 8)][0]
    p99_1 = rows[(protocol, 1)][1]
    print(f"{protocol}: concurrency 8 at {throughput_8 / images_per_s_8:.0%} of bench batch 8's images/s "
          f"(goal >= 90%); concurrency 1 p99 {p99_1 / median_ms_1:.2f}x bench batch 1's median (goal <= 1.3x)")
PY
