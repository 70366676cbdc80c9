"""PyTorch eager on a GPU, the reference for `regnet bench --device cuda` (bench/gpu_check.sh).

    python3 bench/torch_eager.py regnet_y_1_6gf --batch 64 [--tf32] [--iters 20]

torchvision's model with random weights, in eval mode under inference_mode, on an input already
on the GPU; each pass is timed to its synchronize, as ours is. Prints one JSON line with the
fields of `regnet bench --json`.
"""
import argparse
import json
import time

import torch
import torchvision

parser = argparse.ArgumentParser()
parser.add_argument("model", help="torchvision name, e.g. regnet_y_1_6gf")
parser.add_argument("--batch", type=int, default=1)
parser.add_argument("--iters", type=int, default=20)
parser.add_argument("--tf32", action="store_true", help="allow TF32 in matmuls and cuDNN convolutions")
parser.add_argument("--device", default="cuda")
args = parser.parse_args()

torch.backends.cuda.matmul.allow_tf32 = args.tf32
torch.backends.cudnn.allow_tf32 = args.tf32
device = torch.device(args.device)
model = getattr(torchvision.models, args.model)().eval().to(device)
images = torch.randn(args.batch, 3, 224, 224, device=device)


def synchronize():
    if device.type == "cuda":
        torch.cuda.synchronize()


with torch.inference_mode():
    for _ in range(args.iters // 5 + 2):
        model(images)
    synchronize()
    times = []
    for _ in range(args.iters):
        start = time.perf_counter()
        model(images)
        synchronize()
        times.append(time.perf_counter() - start)
times.sort()
median = times[len(times) // 2] * 1e3
print(json.dumps({
    "model": args.model,
    "batch": args.batch,
    "isa": ("torch eager tf32" if args.tf32 else "torch eager fp32"),
    "median_ms": round(median, 3),
    "min_ms": round(times[0] * 1e3, 3),
    "images_per_s": round(args.batch * 1e3 / median, 2),
}))
