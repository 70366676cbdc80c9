#!/usr/bin/env python3
"""Saves two repository fixtures with PyTorch's own torch.save, for the Rust .pth/.pyth reader.

    python3 tools/make_pth_fixtures.py      (needs torch; numpy is not used)

    tests/fixtures/tv_y/model.pth       torch.save(state_dict, ...): the zip layout of PyTorch
                                        >= 1.6, tv_y's weights, `fc.weight` saved as a
                                        transposed (non-contiguous) view
    tests/fixtures/pycls_y/model.pyth   torch.save(..., _use_new_zipfile_serialization=False):
                                        the legacy layout of pycls's published .pyth files,
                                        wrapped as pycls wraps a checkpoint ({"epoch",
                                        "model_state", "optimizer_state", "cfg"})

The tensors are each fixture's model.safetensors, so both files hold exactly the weights the
parity tests already check; a num_batches_tracked counter (int64) is added to each, as
PyTorch's BatchNorm state dicts carry them.
"""

import collections
import json
import struct
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DTYPES = {"F32": torch.float32, "F16": torch.float16, "I64": torch.int64}


def read_safetensors(path):
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    header.pop("__metadata__", None)
    body = data[8 + length :]
    state = collections.OrderedDict()
    for key, info in header.items():
        start, end = info["data_offsets"]
        raw = bytearray(body[start:end])
        tensor = torch.frombuffer(raw, dtype=DTYPES[info["dtype"]]) if raw else torch.empty(0)
        state[key] = tensor.reshape(info["shape"]).clone()
    return state


def main():
    fixtures = ROOT / "tests" / "fixtures"
    tv = read_safetensors(fixtures / "tv_y" / "model.safetensors")
    tv["fc.weight"] = tv["fc.weight"].t().contiguous().t()
    assert not tv["fc.weight"].is_contiguous()
    tv["stem.1.num_batches_tracked"] = torch.tensor(7)
    torch.save(tv, fixtures / "tv_y" / "model.pth")

    pycls = read_safetensors(fixtures / "pycls_y" / "model.safetensors")
    pycls["stem.bn.num_batches_tracked"] = torch.tensor(7)
    checkpoint = {
        "epoch": 99,
        "model_state": pycls,
        "optimizer_state": {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9}]},
        "cfg": "MODEL:\n  TYPE: regnet\n",
    }
    torch.save(checkpoint, fixtures / "pycls_y" / "model.pyth", _use_new_zipfile_serialization=False)
    for path in (fixtures / "tv_y" / "model.pth", fixtures / "pycls_y" / "model.pyth"):
        loaded = torch.load(path, weights_only=True)
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes, torch {torch.__version__}")
    print("tv_y keys:", len(tv), "pycls_y keys:", len(pycls))


if __name__ == "__main__":
    sys.exit(main())
