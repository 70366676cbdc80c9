#!/usr/bin/env bash
# `regnet serve` under load from Triton's perf_analyzer, against `regnet bench` on the same
# machine, measured alternately in one run (shared machines drift).
#
#   bench/serve_load.sh [ROUNDS] [MODEL]        e.g. bench/serve_load.sh 2 regnety_400mf
#
# Against `regnet serve MODEL` with its defaults (--max-batch 8, --max-delay 2ms, every core),
# each round runs perf_analyzer at concurrency 1, 2, 4, 8 and 16 over HTTP and over gRPC
# (batch-1 requests, binary tensors; 3 s windows, stable within 50%: these machines are noisy).
# Right before concurrency 1 it runs `regnet bench MODEL --batch 1`, right before concurrency 8
# `--batch 8`, so that each goal's two numbers come from the same minute. Prints one row per
# protocol and concurrency (medians over rounds), then the two goals' ratios (median over
# rounds of each round's ratio). The client runs on the same cores as the server.
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
  for protocol in http grpc; do
    url=$([ "$protocol" = http ] && echo "$http" || echo "$grpc")
    for concurrency in 1 2 4 8 16; do
      if [ "$concurrency" = 1 ] || [ "$concurrency" = 8 ]; then
        target/release/regnet bench "$model" --batch "$concurrency" --iters $(( concurrency == 1 ? 300 : 10 )) \
          --json >"$out/bench_${protocol}_${concurrency}_$round.json"
      fi
      # Over gRPC there is no model configuration (a Triton extension outside the protocol's
      # .proto): the shape is given, a batch of one, as over HTTP.
      LD_LIBRARY_PATH="$cudart" "$venv/bin/perf_analyzer" -m "$model" -u "$url" -i "$protocol" \
        --shape input:1,3,224,224 --concurrency-range "$concurrency" \
        --measurement-interval 3000 --max-trials 10 --stability-percentage 50 \
        -f "$out/perf_${protocol}_${concurrency}_$round.csv" >"$out/perf.log" 2>&1 ||
        { cat "$out/perf.log"; exit 1; }
    done
  done
done
curl -s "http://$http/metrics" | grep -E '^regnet_batch_size_(sum|count)' >"$out/metrics.txt"
python3 - "$out" "$rounds" "$model" <<'PY'
import csv, json, statistics, sys
out, rounds, model = sys.argv[1], int(sys.argv[2]), sys.argv[3]
median = statistics.median
def perf(protocol, concurrency, r):
    return next(csv.DictReader(open(f"{out}/perf_{protocol}_{concurrency}_{r}.csv")))
def bench(protocol, batch, r):
    return json.load(open(f"{out}/bench_{protocol}_{batch}_{r}.json"))
print("| protocol | concurrency | images/s | p50 ms | p99 ms |")
print("|---|---|---|---|---|")
for protocol in ("http", "grpc"):
    for concurrency in (1, 2, 4, 8, 16):
        runs = [perf(protocol, concurrency, r) for r in range(1, rounds + 1)]
        print(f"| {'HTTP' if protocol == 'http' else 'gRPC'} | {concurrency} "
              f"| {median(float(x['Inferences/Second']) for x in runs):.1f} "
              f"| {median(float(x['p50 latency']) for x in runs) / 1000:.2f} "
              f"| {median(float(x['p99 latency']) for x in runs) / 1000:.2f} |")
for protocol in ("http", "grpc"):
    throughput, latency = [], []
    for r in range(1, rounds + 1):
        b8, b1 = bench(protocol, 8, r), bench(protocol, 1, r)
        throughput.append((float(perf(protocol, 8, r)["Inferences/Second"]), b8["images_per_s"]))
        latency.append((float(perf(protocol, 1, r)["p99 latency"]) / 1000, b1["median_ms"], b1["p99_ms"]))
    print(f"{protocol}: concurrency 8 at {median(s / b for s, b in throughput):.0%} of the adjacent "
          f"`regnet bench --batch 8` images/s (goal >= 90%; per round "
          + ", ".join(f"{s:.1f} vs {b:.1f}" for s, b in throughput) + "); concurrency 1 p99 "
          f"{median(s / b for s, b, _ in latency):.2f}x the adjacent `--batch 1` median (goal <= 1.3x; "
          + ", ".join(f"{s:.2f} vs {b:.2f} ms" for s, b, _ in latency) + "); the bench's own p99 "
          f"{median(p / b for _, b, p in latency):.2f}x its median, the server's p99 "
          f"{median(s / p for s, _, p in latency):.2f}x the bench's p99")
print(open(f"{out}/metrics.txt").read().strip())
PY
