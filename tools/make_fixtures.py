#!/usr/bin/env python3
"""Build the small parity fixtures in tests/fixtures/ with the real libraries.

Each fixture is a tiny 4-stage RegNet built by torchvision or timm (and, for the pycls naming,
timm's network written with pycls's key names), with random weights and randomized BatchNorm
statistics, so that every layer matters. Each tests/fixtures/<name>/ holds:

    spec.yaml            our spec for exactly that architecture (`regnet!` reads it)
    model.safetensors    the library's own state-dict names, F32, *.num_batches_tracked dropped
    input.safetensors    "input" [2,3,R,R] F32 NCHW
    expected.safetensors "logits" [2,num_classes]; "stem", "s1".."s4": outputs of the stem and of
                         every stage (torchvision: model.stem, model.trunk_output.block1..4;
                         timm: model.stem, model.s1..s4), NCHW F32
    meta.json            library versions, recipe, seed, the architecture read off the module

Recipe (the shared fixtures' recipe, at a small size):
    torch.manual_seed(seed); build the model (its own conv/fc initialization);
    generator seeded seed+1: for each BatchNorm2d in named_modules() order:
        weight = U(0.5,1.5), bias = 0.1*N(0,1), running_mean = 0.1*N(0,1), running_var = U(0.5,2)
    then the classifier's bias = 0.01*N(0,1) from the same generator;
    input = torch.randn(2,3,R,R) from a generator seeded seed+2; eval mode (BN uses running stats).

Checks (the script fails loudly if any does not hold):
    * the architecture read off the PyTorch module (stage widths, depths, group widths, bottleneck
      widths, SE widths of every block) equals `regnet inspect SPEC --json` (skip with --no-inspect);
    * params in --json equal sum(p.numel()); flops and acts equal a pycls-style count made with
      forward hooks on the module (multiply-adds of convs and the FC, plus their biases);
    * with --pycls (pycls 0.1.1 importable, e.g. `pip install --no-deps pycls==0.1.1 yacs`), each
      pycls fixture's model.safetensors loads into pycls's own RegNet with strict=True and reproduces
      the expected outputs.

Set-up (Python 3.10+; CPU is enough):
    python3 -m venv .venv && .venv/bin/pip install torch torchvision timm safetensors numpy
Run from anywhere (paths are relative to the repository root):
    .venv/bin/python tools/make_fixtures.py                 # all fixtures
    .venv/bin/python tools/make_fixtures.py --only tv_x     # one
    .venv/bin/python tools/make_fixtures.py --pycls         # also verify against real pycls
Regenerating with the same library versions reproduces the files bit for bit on one machine;
other versions or CPUs may change the last bits of expected.safetensors (the Rust test's
tolerances are far above that).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import safetensors
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
BATCH = 2

# Each fixture: our spec's fields (exactly what spec.yaml says) plus the library that builds it.
# Chosen to cover: grouped and dense (group width clipped to the width) 3x3 convs, identity and
# projection shortcuts, SE (with a half-even tie: stem 18 wide gives round(4.5) = 4), torchvision's
# half-up width rounding (tv_x: pycls's rule would make s4 32 wide, torchvision makes it 48),
# pycls's half-even rounding (timm_x: 40/16 = 2.5 rounds to 32), two consecutive stages of equal
# width (pycls_x: 32, 32), non-default stem widths, and 32x32 and 64x64 inputs.
FIXTURES = [
    dict(name="tv_x", lib="torchvision", seed=0,
         spec=dict(name="TinyX-TV", d=6, w0=8, wa=5.5, wm=1.5, g=16, se=False,
                   stem_w=32, num_classes=10, resolution=64, compat="torchvision")),
    dict(name="tv_y", lib="torchvision", seed=1,
         spec=dict(name="TinyY-TV", d=6, w0=8, wa=7.0, wm=1.8, g=8, se=True, se_ratio=0.25,
                   stem_w=18, num_classes=10, resolution=32, compat="torchvision")),
    dict(name="timm_x", lib="timm", seed=2,
         spec=dict(name="TinyX-timm", d=5, w0=8, wa=13.0, wm=1.5, g=16, se=False,
                   stem_w=32, num_classes=10, resolution=64)),
    dict(name="timm_y", lib="timm", seed=3,
         spec=dict(name="TinyY-timm", d=5, w0=16, wa=10.0, wm=1.5, g=8, se=True, se_ratio=0.25,
                   stem_w=24, num_classes=10, resolution=32)),
    dict(name="pycls_x", lib="pycls", seed=4,
         spec=dict(name="TinyX-pycls", d=5, w0=8, wa=8.5, wm=1.5, g=16, se=False,
                   stem_w=32, num_classes=10, resolution=64)),
    dict(name="pycls_y", lib="pycls", seed=5,
         spec=dict(name="TinyY-pycls", d=7, w0=8, wa=7.0, wm=2.0, g=8, se=True, se_ratio=0.25,
                   stem_w=16, num_classes=10, resolution=32)),
]

SPEC_ORDER = ["name", "d", "w0", "wa", "wm", "g", "b", "se", "se_ratio", "stem_w",
              "num_classes", "resolution", "q", "compat"]

RECIPE = {
    "build": "torch.manual_seed(seed); build the model (library's own initialization)",
    "batchnorm": "generator seeded seed+1, BatchNorm2d modules in named_modules() order, each: "
                 "weight=U(0.5,1.5), bias=0.1*N(0,1), running_mean=0.1*N(0,1), "
                 "running_var=U(0.5,2.0) (drawn in that order)",
    "fc_bias": "0.01*N(0,1) from the same generator, after all BNs",
    "input": f"torch.randn({BATCH},3,R,R, generator seeded seed+2)",
    "bn_eps": 1e-05,
    "mode": "eval (BN uses running stats)",
}


# ----------------------------------------------------------------------------------------------
# Building


def build_torchvision(spec):
    from torchvision.models.regnet import BlockParams, RegNet

    params = BlockParams.from_init_params(
        spec["d"], spec["w0"], spec["wa"], spec["wm"], spec["g"],
        bottleneck_multiplier=1.0 / spec.get("b", 1),
        se_ratio=spec.get("se_ratio", 0.25) if spec.get("se") else None,
    )
    model = RegNet(params, num_classes=spec["num_classes"], stem_width=spec["stem_w"])
    call = (f"RegNet(BlockParams.from_init_params({spec['d']}, {spec['w0']}, {spec['wa']}, "
            f"{spec['wm']}, {spec['g']}, se_ratio={spec.get('se_ratio') if spec.get('se') else None}), "
            f"num_classes={spec['num_classes']}, stem_width={spec['stem_w']})")
    return model, call


def build_timm(spec):
    from timm.models.regnet import RegNet, RegNetCfg

    cfg = RegNetCfg(
        depth=spec["d"], w0=spec["w0"], wa=spec["wa"], wm=spec["wm"], group_size=spec["g"],
        bottle_ratio=1.0 / spec.get("b", 1),
        se_ratio=spec.get("se_ratio", 0.25) if spec.get("se") else 0.0,
        group_min_ratio=0.0,  # pycls's rounding (0.9 would be torchvision's)
        stem_width=spec["stem_w"],
        downsample="conv1x1", linear_out=False, preact=False, num_features=0,  # plain RegNet
    )
    model = RegNet(cfg, num_classes=spec["num_classes"], drop_rate=0.0, drop_path_rate=0.0)
    call = f"timm.models.regnet.RegNet({cfg}, num_classes={spec['num_classes']})"
    return model, call


def randomize(model, seed):
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for _, module in model.named_modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                module.bias.copy_(0.1 * torch.randn(c, generator=gen))
                module.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                module.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
        fc = classifier(model)
        fc.bias.copy_(0.01 * torch.randn(fc.out_features, generator=gen))


def classifier(model):
    return model.fc if hasattr(model, "trunk_output") else model.head.fc


def stage_modules(model):
    """The stem and the four stages, as the expected tensors name them."""
    if hasattr(model, "trunk_output"):  # torchvision
        stages = [getattr(model.trunk_output, f"block{i}") for i in range(1, 5)]
    else:  # timm
        stages = [getattr(model, f"s{i}") for i in range(1, 5)]
    return model.stem, stages


def blocks_of(stage):
    return [m for m in stage.children() if not isinstance(m, torch.nn.Identity)]


def architecture(model):
    """Stage widths, depths, group widths, SE widths read off the built module."""
    stem, stages = stage_modules(model)
    stem_conv = next(m for m in stem.modules() if isinstance(m, torch.nn.Conv2d))
    out = {"stem_width": stem_conv.out_channels, "stages": []}
    for stage in stages:
        blocks = blocks_of(stage)
        info = None
        se_widths = []
        for block in blocks:
            convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
            conv3 = next(c for c in convs if c.kernel_size == (3, 3))
            se = [c for c in convs if c.kernel_size == (1, 1) and c.bias is not None]
            se_widths.append(se[0].out_channels if se else None)
            w_b = conv3.out_channels
            last = [c for c in convs if c.kernel_size == (1, 1) and c.bias is None
                    and c.in_channels == w_b and c is not conv3]
            width = last[-1].out_channels
            if info is None:
                info = {"depth": len(blocks), "width": width, "bottleneck_width": w_b,
                        "group_width": w_b // conv3.groups, "groups": conv3.groups,
                        "stride": conv3.stride[0]}
        info["se_widths"] = se_widths if se_widths[0] is not None else None
        out["stages"].append(info)
    out["num_classes"] = classifier(model).out_features
    return out


def count_complexity(model, resolution):
    """pycls-style flops (multiply-adds), acts for one image, made with forward hooks."""
    totals = {"flops": 0, "acts": 0}

    def conv_hook(module, inputs, output):
        n = output.numel() // output.shape[0]
        hw = output.shape[2] * output.shape[3]
        k = module.kernel_size[0] * module.kernel_size[1]
        totals["flops"] += k * module.in_channels * module.out_channels * hw // module.groups
        if module.bias is not None:
            totals["flops"] += module.out_channels * hw
        totals["acts"] += n

    def linear_hook(module, inputs, output):
        totals["flops"] += module.in_features * module.out_features + module.out_features
        totals["acts"] += module.out_features

    handles = []
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    with torch.no_grad():
        model(torch.zeros(1, 3, resolution, resolution))
    for h in handles:
        h.remove()
    return totals


# ----------------------------------------------------------------------------------------------
# Naming

PYCLS_BLOCK = [
    (r"downsample\.conv\.", "proj."),
    (r"downsample\.bn\.", "bn."),
    (r"conv1\.conv\.", "f.a."),
    (r"conv1\.bn\.", "f.a_bn."),
    (r"conv2\.conv\.", "f.b."),
    (r"conv2\.bn\.", "f.b_bn."),
    (r"se\.fc1\.", "f.se.f_ex.0."),
    (r"se\.fc2\.", "f.se.f_ex.2."),
    (r"conv3\.conv\.", "f.c."),
    (r"conv3\.bn\.", "f.c_bn."),
]


def timm_to_pycls(key):
    """timm's RegNet key → pycls's (REFERENCE.md §4). Stem and head names are the same."""
    m = re.match(r"^(s\d+\.b\d+\.)(.*)$", key)
    if not m:
        if key.startswith(("stem.conv.", "stem.bn.", "head.fc.")):
            return key
        raise KeyError(f"unexpected timm key {key}")
    prefix, rest = m.groups()
    for pattern, replacement in PYCLS_BLOCK:
        if re.match(pattern, rest):
            return prefix + re.sub("^" + pattern, replacement, rest)
    raise KeyError(f"unexpected timm key {key}")


def pycls_order(key):
    """pycls's module order: stem, then per block proj, bn, f.a … f.c_bn, then head."""
    m = re.match(r"^s(\d+)\.b(\d+)\.(.*)$", key)
    if not m:
        return (0 if key.startswith("stem") else 2, 0, 0, 0, key)
    s, b, rest = int(m.group(1)), int(m.group(2)), m.group(3)
    order = ["proj.", "bn.", "f.a.", "f.a_bn.", "f.b.", "f.b_bn.", "f.se.", "f.c.", "f.c_bn."]
    return (1, s, b, next(i for i, p in enumerate(order) if rest.startswith(p)), key)


def state_dict_f32(model, lib):
    sd = {k: v.detach().to(torch.float32).contiguous().clone()
          for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    dropped = sum(1 for k in model.state_dict() if k.endswith("num_batches_tracked"))
    if lib == "pycls":
        renamed = {timm_to_pycls(k): v for k, v in sd.items()}
        assert len(renamed) == len(sd)
        sd = dict(sorted(renamed.items(), key=lambda kv: pycls_order(kv[0])))
    return sd, dropped


# ----------------------------------------------------------------------------------------------
# Checks


def inspect_json(spec_path):
    out = subprocess.run(
        ["cargo", "run", "-q", "-p", "regnet-cli", "--", "inspect", str(spec_path), "--json"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def check_against_inspect(name, arch, params, cx, summary):
    problems = []
    stages = summary["stages"]
    if len(stages) != len(arch["stages"]):
        problems.append(f"{len(stages)} stages in the spec, {len(arch['stages'])} in the model")
    prev = arch["stem_width"]
    for i, (ours, theirs) in enumerate(zip(stages, arch["stages"]), 1):
        for field in ["depth", "width", "group_width", "bottleneck_width", "stride"]:
            if ours[field] != theirs[field]:
                problems.append(f"s{i} {field}: spec {ours[field]}, model {theirs[field]}")
        if theirs["se_widths"] is not None:
            # The SE width comes from each block's input width: the first block's from the
            # previous stage, the later ones' from this stage (round half to even).
            want = [round(0.25 * prev)] + [round(0.25 * theirs["width"])] * (theirs["depth"] - 1)
            if ours.get("se_width") != theirs["se_widths"][0]:
                problems.append(f"s{i} se_width: spec {ours.get('se_width')}, "
                                f"model {theirs['se_widths'][0]}")
            if theirs["se_widths"] != want:
                problems.append(f"s{i} SE widths {theirs['se_widths']} != {want}")
        elif ours.get("se_width") is not None:
            problems.append(f"s{i}: SE in the spec, none in the model")
        prev = theirs["width"]
    for field, value in [("params", params), ("flops", cx["flops"]), ("acts", cx["acts"])]:
        if summary[field] != value:
            problems.append(f"{field}: spec {summary[field]}, model {value}")
    if problems:
        raise SystemExit(f"{name}: the spec does not match the model:\n  " + "\n  ".join(problems))


def verify_with_pycls(fixture, sd, x, expected):
    """Loads the pycls-named weights into pycls 0.1.1's own RegNet (strict) and compares."""
    from pycls.core.config import cfg
    from pycls.models.regnet import RegNet as PyclsRegNet
    import pycls

    spec = fixture["spec"]
    cfg.REGNET.DEPTH = spec["d"]
    cfg.REGNET.W0 = spec["w0"]
    cfg.REGNET.WA = spec["wa"]
    cfg.REGNET.WM = spec["wm"]
    cfg.REGNET.GROUP_W = spec["g"]
    cfg.REGNET.BOT_MUL = 1.0 / spec.get("b", 1)
    cfg.REGNET.SE_ON = bool(spec.get("se"))
    cfg.REGNET.SE_R = spec.get("se_ratio", 0.25)
    cfg.REGNET.STEM_W = spec["stem_w"]
    cfg.MODEL.NUM_CLASSES = spec["num_classes"]
    model = PyclsRegNet().eval()
    model.load_state_dict(sd, strict=True)
    outs = {}
    hooks = [model.stem.register_forward_hook(lambda m, i, o: outs.__setitem__("stem", o))]
    for i in range(1, 5):
        hooks.append(getattr(model, f"s{i}").register_forward_hook(
            lambda m, i_, o, n=f"s{i}": outs.__setitem__(n, o)))
    with torch.no_grad():
        outs["logits"] = model(x)
    for h in hooks:
        h.remove()
    diffs = {k: float((outs[k] - v).abs().max()) for k, v in expected.items()}
    worst = max(diffs.values())
    if worst > 1e-5:
        raise SystemExit(f"{fixture['name']}: pycls differs from timm: {diffs}")
    return {"pycls": getattr(pycls, "__version__", "0.1.1"), "max_abs_diff_vs_timm": diffs}


# ----------------------------------------------------------------------------------------------
# Writing


def spec_yaml(fixture, arch):
    spec = fixture["spec"]
    lib = fixture["lib"]
    widths = ", ".join(str(s["width"]) for s in arch["stages"])
    depths = ", ".join(str(s["depth"]) for s in arch["stages"])
    groups = ", ".join(str(s["group_width"]) for s in arch["stages"])
    lines = [
        f"# Parity fixture `{fixture['name']}`: a tiny {'RegNetY (SE)' if spec.get('se') else 'RegNetX'}"
        f" built by {'timm (written with pycls key names)' if lib == 'pycls' else lib}.",
        f"# Stage widths {widths}; depths {depths}; group widths {groups}.",
        "# Generated by tools/make_fixtures.py; regenerate rather than edit.",
    ]
    for key in SPEC_ORDER:
        if key in spec and not (key == "se" and not spec[key]):
            value = spec[key]
            if isinstance(value, bool):
                value = "true" if value else "false"
            lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


def versions():
    import timm
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }


def make(fixture, out_root, run_inspect, pycls_check):
    name, lib, seed, spec = fixture["name"], fixture["lib"], fixture["seed"], fixture["spec"]
    torch.manual_seed(seed)
    model, call = build_torchvision(spec) if lib == "torchvision" else build_timm(spec)
    randomize(model, seed)
    model.eval()

    arch = architecture(model)
    params = sum(p.numel() for p in model.parameters())
    cx = count_complexity(model, spec["resolution"])

    res = spec["resolution"]
    x = torch.randn(BATCH, 3, res, res, generator=torch.Generator().manual_seed(seed + 2))
    stem, stages = stage_modules(model)
    outs = {}
    hooks = [stem.register_forward_hook(lambda m, i, o: outs.__setitem__("stem", o))]
    for i, stage in enumerate(stages, 1):
        hooks.append(stage.register_forward_hook(
            lambda m, i_, o, n=f"s{i}": outs.__setitem__(n, o)))
    with torch.no_grad():
        outs["logits"] = model(x)
    for h in hooks:
        h.remove()
    expected = {k: outs[k].detach().contiguous().clone()
                for k in ["logits", "stem", "s1", "s2", "s3", "s4"]}

    # The same network in float64: how far float32 PyTorch itself is from exact.
    model64 = model.double()
    outs64 = {}
    stem64, stages64 = stage_modules(model64)
    hooks = [stem64.register_forward_hook(lambda m, i, o: outs64.__setitem__("stem", o))]
    for i, stage in enumerate(stages64, 1):
        hooks.append(stage.register_forward_hook(
            lambda m, i_, o, n=f"s{i}": outs64.__setitem__(n, o)))
    with torch.no_grad():
        outs64["logits"] = model64(x.double())
    for h in hooks:
        h.remove()
    model.float()
    fp64 = {k: float((expected[k].double() - outs64[k]).abs().max()) for k in expected}

    sd, dropped = state_dict_f32(model, lib)

    out = out_root / name
    out.mkdir(parents=True, exist_ok=True)
    spec_path = out / "spec.yaml"
    spec_path.write_text(spec_yaml(fixture, arch))
    save_file(sd, str(out / "model.safetensors"))
    save_file({"input": x.contiguous()}, str(out / "input.safetensors"))
    save_file(expected, str(out / "expected.safetensors"))

    inspected = None
    if run_inspect:
        inspected = inspect_json(spec_path)
        check_against_inspect(name, arch, params, cx, inspected)

    pycls_verified = None
    if lib == "pycls" and pycls_check:
        pycls_verified = verify_with_pycls(fixture, sd, x, expected)

    scheme = {"torchvision": "torchvision", "timm": "timm", "pycls": "pycls"}[lib]
    meta = {
        "name": name,
        "scheme": scheme,
        "built_by": "timm" if lib == "pycls" else lib,
        "builder": call,
        "seed": seed,
        "versions": versions(),
        "recipe": RECIPE,
        "spec": spec,
        "architecture": arch,
        "params": params,
        "flops": cx["flops"],
        "acts": cx["acts"],
        "checked_against_inspect": inspected is not None,
        "files": {
            "model.safetensors": f"state_dict, {scheme} key names, F32; "
                                 "*.num_batches_tracked dropped",
            "input.safetensors": f"input [{BATCH},3,{res},{res}] F32 NCHW",
            "expected.safetensors": f"logits [{BATCH},{spec['num_classes']}]; stem, s1..s4 = "
                                    "outputs of the stem and of each stage (after each block's "
                                    "final ReLU), NCHW F32",
        },
        "num_tensors": len(sd),
        "dropped_keys": dropped,
        "stage_shapes": {k: list(v.shape) for k, v in expected.items()},
        "max_abs": {k: float(v.abs().max()) for k, v in expected.items()},
        "torch_fp32_vs_fp64_max_abs_diff": fp64,
    }
    if lib == "pycls":
        meta["pycls_note"] = (
            "Built with timm.models.regnet.RegNet (group_min_ratio=0: pycls's half-even width "
            "rounding) and saved with pycls's key names (REFERENCE.md §4: proj/bn, f.a/f.a_bn, "
            "f.b/f.b_bn, f.se.f_ex.0/2, f.c/f.c_bn, head.fc). timm's RegNet computes the same "
            "network as pycls's AnyNet/RegNet: same stem, ResBottleneckBlock, SE placement and "
            "widths, projection shortcut iff w_in != w or stride != 1, avgpool + fc head.")
        meta["verified_with_pycls"] = pycls_verified
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")

    sizes = {f.name: f.stat().st_size for f in sorted(out.iterdir())}
    return arch, params, cx, sizes, fp64


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures")
    parser.add_argument("--only", action="append", help="fixture name (repeatable)")
    parser.add_argument("--no-inspect", action="store_true",
                        help="skip the comparison with `cargo run -p regnet-cli -- inspect --json`")
    parser.add_argument("--pycls", action="store_true",
                        help="verify the pycls fixtures against pycls 0.1.1's own RegNet")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    names = {f["name"] for f in FIXTURES}
    for only in args.only or []:
        if only not in names:
            raise SystemExit(f"unknown fixture {only}; the fixtures are {sorted(names)}")
    for fixture in FIXTURES:
        if args.only and fixture["name"] not in args.only:
            continue
        arch, params, cx, sizes, fp64 = make(fixture, args.out, not args.no_inspect, args.pycls)
        stages = " ".join(f"{s['width']}x{s['depth']}/g{s['group_width']}" for s in arch["stages"])
        print(f"{fixture['name']:8} {fixture['lib']:11} stem {arch['stem_width']:2} | {stages} | "
              f"params {params} flops {cx['flops']} | model {sizes['model.safetensors']} B | "
              f"fp32-vs-fp64 logits {fp64['logits']:.1e}")


if __name__ == "__main__":
    sys.exit(main())
