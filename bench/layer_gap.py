#!/usr/bin/env python3
"""Where the time goes, layer by layer, in our pass and in ONNX Runtime's, measured alternately.

  bench/.venv/bin/python bench/layer_gap.py regnety_1.6gf --threads 1 --rounds 3 [--isa avx2] [--batch 8]

Needs bench/.venv (bench/compare_ort.sh installs it) and ../shared/bench/onnx. Each round runs
`regnet bench MODEL --profile` (median step times of its passes) and then ONNX Runtime's own
profiler over as many passes, and groups both by (stage, part) as our plan names them: stem, s1..,
head; Projection, Reduce, Grouped, SqueezeExcite, Expand. ORT's layout conversions
(ReorderInput/Output, unnamed) count for the layer that follows them, and a block's residual add
and ReLU for its Expand, where ours are fused. Prints the median over rounds of each side's
milliseconds per pass and ours / ORT.

ORT's profiler costs ORT time of its own, more with threads: on a 2-core AMD EPYC its layers
summed to 40.1–42.6 ms a pass on one thread (39–41 ms unprofiled, bench/compare_ort.sh) and to
25.7–31.5 ms on two (21.8–22.2 unprofiled). Compare layers with each other, not the sums with
compare_ort.sh's. With --batch, our profiled pass runs the batch layer by layer (an unprofiled
pass runs each thread's images alone through the early stages), so our early stages read here
as they would without that.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(ROOT, "..", "shared", "bench")
# Our spec stems and torchvision's ONNX file names of the same networks.
ONNX = {"regnety_400mf": "regnet_y_400mf", "regnetx_400mf_tv": "regnet_x_400mf",
        "regnety_1.6gf": "regnet_y_1_6gf"}
PARTS = [("/f/a/", "Reduce"), ("/f/b/", "Grouped"), ("/f/se/", "SqueezeExcite"),
         ("/f/c/", "Expand"), ("/proj/", "Projection")]


def ours(model, batch, threads, iters, isa):
    command = [os.path.join(ROOT, "target", "release", "regnet"), "bench", model, "--profile",
               "--batch", str(batch), "--threads", str(threads), "--iters", str(iters)]
    command += ["--isa", isa] if isa else []
    table = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in table.splitlines():
        fields = line.split()
        if len(fields) == 6 and re.fullmatch(r"stem|s\d+|head", fields[0]):
            rows[(fields[0], fields[1])] = float(fields[2])
    return rows


def layer(name, stages):
    """(stage, part) of an ONNX node of torchvision's export, or None for an unnamed one."""
    if name.startswith("/stem/"):
        return ("stem", "Stem")
    block = re.match(r"/trunk_output/block(\d+)/", name)
    if block:
        part = next((part for key, part in PARTS if key in name), "Expand")
        return ("s" + block.group(1), part)
    if name.startswith("/"):
        return ("head", "Head")
    return None


def ort_profile(onnx, batch, threads, iters):
    import numpy as np
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.gettempdir(), "regnet-layer-gap")
    session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
    images = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    warmup = 2
    for _ in range(warmup + iters):
        session.run(None, {"input": images})
    path = session.end_profiling()
    with open(path) as f:
        events = json.load(f)
    os.remove(path)
    runs = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"]
    nodes = sorted((e for e in events if e.get("cat") == "Node"
                    and e["name"].endswith("_kernel_time")), key=lambda e: e["ts"])
    per_run = []
    for run in runs[warmup:]:
        start, end = run["ts"], run["ts"] + run["dur"]
        totals = defaultdict(float)
        pending = 0.0
        for node in (n for n in nodes if start <= n["ts"] <= end):
            where = layer(node["name"].removesuffix("_kernel_time"), None)
            if where is None:
                pending += node["dur"]
                continue
            totals[where] += (node["dur"] + pending) / 1e3
            pending = 0.0
        per_run.append(totals)
    keys = set().union(*per_run)
    return {key: statistics.median(run.get(key, 0.0) for run in per_run) for key in keys}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", choices=sorted(ONNX))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--isa", default=None)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "regnet-cli"], check=True, cwd=ROOT)
    onnx = os.path.join(SHARED, "onnx", ONNX[args.model] + ".onnx")
    rounds = [(ours(args.model, args.batch, args.threads, args.iters, args.isa),
               ort_profile(onnx, args.batch, args.threads, args.iters)) for _ in range(args.rounds)]
    order = {"stem": 0, "head": 99}
    keys = sorted(set().union(*(set(a) | set(b) for a, b in rounds)),
                  key=lambda k: (order.get(k[0], int(k[0][1:]) if k[0][1:].isdigit() else 50),
                                 [p for _, p in PARTS].index(k[1]) if k[1] in dict(
                                     (p, 0) for _, p in PARTS) else -1))
    print(f"{args.model}, batch {args.batch}, {args.threads} threads: ms per pass, median of {args.rounds} "
          "alternating rounds")
    print(f"{'stage':<6} {'part':<14} {'ours':>8} {'ORT':>8} {'ours/ORT':>9}")
    sums = [0.0, 0.0]
    for key in keys:
        mine = statistics.median(a.get(key, 0.0) for a, _ in rounds)
        theirs = statistics.median(b.get(key, 0.0) for _, b in rounds)
        sums[0] += mine
        sums[1] += theirs
        ratio = f"{mine / theirs:9.2f}" if theirs > 0 else f"{'-':>9}"
        print(f"{key[0]:<6} {key[1]:<14} {mine:8.3f} {theirs:8.3f} {ratio}")
    print(f"{'sum':<6} {'':<14} {sums[0]:8.3f} {sums[1]:8.3f} {sums[0] / sums[1]:9.2f}")


if __name__ == "__main__":
    main()
