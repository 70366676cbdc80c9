#!/usr/bin/env python3
"""Convert a PyTorch RegNet checkpoint to safetensors, for `regnet`'s `load(path)`.

    python3 tools/convert.py IN.pth OUT.safetensors [--f32] [--no-fallback]

Accepts
    * a plain state dict (torch.save(model.state_dict(), "x.pth"), .pth / .pt / .bin);
    * pycls's .pyth checkpoints: {"model_state": state_dict, "epoch": ..., "optimizer_state": ...};
    * training checkpoints wrapped as {"state_dict": ...} or {"model": ...} (nested wrappers too);
    * keys carrying a common `module.` (DataParallel) or `model.` prefix: the prefix is stripped.

Writes every tensor contiguous, with the state dict's own key names (the Rust loader recognizes
torchvision's, timm's and pycls's), drops BatchNorm's `num_batches_tracked` counters, stores F64
as F32 and keeps F16/BF16 as they are (the loader widens them) unless --f32 asks for F32 throughout.
Prints the number of tensors written and the naming scheme it recognizes:
    trunk_output.*              torchvision
    s1.b1.conv1.conv.weight     timm
    s1.b1.f.a.weight            pycls

Loading uses torch.load(weights_only=True), which unpickles only tensors and plain containers. A
checkpoint that also pickled other Python objects fails that; the script then says so and loads it
again with weights_only=False, which can run code from the file: only convert files you trust, or
pass --no-fallback to stop there instead.

Set-up (Python 3.10+; CPU is enough):
    python3 -m venv .venv && .venv/bin/pip install torch torchvision timm safetensors numpy
(convert.py itself needs only torch and safetensors.)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

WRAPPERS = ("model_state", "state_dict", "model")
PREFIXES = ("module.", "model.")
FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def reason(error: Exception) -> str:
    """The informative line of torch.load's (long) message: which global it refused."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "WeightsUnpickler error:" in line:
            return line.split("WeightsUnpickler error:", 1)[1].strip().split(" was not ")[0]
    return lines[0] if lines else type(error).__name__


def load(path: Path, fallback: bool):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001: any unpickling failure means the same to the user
        first = reason(error)
        if not fallback:
            raise SystemExit(
                f"error: {path} does not load with torch.load(weights_only=True): {first}\n"
                "It pickles Python objects besides tensors. If you trust the file, rerun without "
                "--no-fallback to load it with weights_only=False."
            ) from None
        print(
            f"warning: {path} does not load with torch.load(weights_only=True) ({first}); "
            "loading it with weights_only=False, which can execute code stored in the file. "
            "Only convert checkpoints you trust.",
            file=sys.stderr,
        )
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error2:  # noqa: BLE001
            raise SystemExit(f"error: cannot load {path} with torch.load: {error2}") from None


def is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def unwrap(obj, path: Path):
    """The state dict inside a checkpoint, and the wrapper keys it was found under."""
    found = []
    while not is_state_dict(obj):
        if hasattr(obj, "state_dict") and callable(obj.state_dict):  # a pickled nn.Module
            found.append("<module>.state_dict()")
            obj = obj.state_dict()
            continue
        if not isinstance(obj, dict):
            raise SystemExit(f"error: {path} holds a {type(obj).__name__}, not a state dict")
        key = next((k for k in WRAPPERS if k in obj), None)
        if key is None:
            keys = ", ".join(repr(k) for k in list(obj)[:8])
            raise SystemExit(
                f"error: {path} is a dict without tensors at the top level and without a "
                f"{' / '.join(map(repr, WRAPPERS))} entry (its keys: {keys})"
            )
        found.append(repr(key))
        obj = obj[key]
    return obj, found


def strip_prefix(state: dict) -> tuple[dict, str]:
    stripped = ""
    while True:
        prefix = next((p for p in PREFIXES if all(k.startswith(p) for k in state)), None)
        if prefix is None:
            return state, stripped
        state = {k[len(prefix):]: v for k, v in state.items()}
        stripped += prefix


def scheme(keys) -> str:
    keys = list(keys)
    if any(k.startswith("trunk_output.") for k in keys):
        return "torchvision"
    if any(k.startswith("s1.b1.conv1.conv.") for k in keys):
        return "timm"
    if any(k.startswith("s1.b1.f.a.") for k in keys):
        return "pycls"
    return "unknown"


def convert(src: Path, dst: Path, f32: bool, fallback: bool) -> None:
    checkpoint = load(src, fallback)
    state, wrappers = unwrap(checkpoint, src)
    state, prefix = strip_prefix(state)

    tensors = {}
    dropped = 0
    converted = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            dropped += 1
            continue
        if value.dtype not in FLOATS:
            raise SystemExit(
                f"error: tensor {key!r} is {value.dtype}; a RegNet state dict holds only floating "
                "point tensors besides num_batches_tracked"
            )
        target = value.dtype
        if value.dtype == torch.float64 or (f32 and value.dtype != torch.float32):
            target = torch.float32
        if target != value.dtype:
            name = f"{value.dtype} -> {target}".replace("torch.", "")
            converted[name] = converted.get(name, 0) + 1
        # clone(): safetensors refuses tensors that share storage (views of one buffer).
        tensors[key] = value.detach().to(target).contiguous().clone()

    found = scheme(tensors)
    metadata = {"format": "pt", "source": src.name, "scheme": found}
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(dst), metadata=metadata)

    dtypes = {}
    for t in tensors.values():
        name = str(t.dtype).replace("torch.", "")
        dtypes[name] = dtypes.get(name, 0) + 1
    params = sum(t.numel() for t in tensors.values())
    print(f"{src} -> {dst}")
    if wrappers:
        print(f"  state dict found under {' -> '.join(wrappers)}")
    if prefix:
        print(f"  stripped key prefix {prefix!r}")
    print(f"  {len(tensors)} tensors ({params} values), {dropped} num_batches_tracked dropped")
    print(f"  dtypes: {', '.join(f'{k} x{v}' for k, v in sorted(dtypes.items()))}"
          + (f"; converted {', '.join(f'{k} x{v}' for k, v in converted.items())}"
             if converted else ""))
    if found == "unknown":
        sample = ", ".join(list(tensors)[:4])
        print(f"  naming scheme: unknown (keys such as {sample}); regnet's loader recognizes "
              "torchvision, timm and pycls state dicts", file=sys.stderr)
    else:
        print(f"  naming scheme: {found}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Convert a PyTorch RegNet checkpoint (.pth/.pt/.pyth) to safetensors.")
    parser.add_argument("input", type=Path, help="checkpoint: state dict, pycls .pyth, or wrapper")
    parser.add_argument("output", type=Path, help="the .safetensors file to write")
    parser.add_argument("--f32", action="store_true", help="store F16/BF16 tensors as F32 too")
    parser.add_argument("--no-fallback", action="store_true",
                        help="never retry with torch.load(weights_only=False)")
    args = parser.parse_args()
    if not args.input.is_file():
        raise SystemExit(f"error: {args.input} is not a file")
    if args.output.suffix != ".safetensors":
        print(f"warning: {args.output} does not end in .safetensors", file=sys.stderr)
    convert(args.input, args.output, args.f32, not args.no_fallback)


if __name__ == "__main__":
    main()
