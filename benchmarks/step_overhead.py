"""Cost of one full SSL training step relative to the bare backbone, side by side in one run.

For each method: zero_grad, forward of all views through backbone and heads (and momentum target), loss,
backward, optimiser step, ``on_step_end`` (EMA update, schedules) — divided by the bare backbone's
forward+backward of the same two views, called the way the method calls it: one call per view (SimSiam, BYOL,
SimClust, MoCo v3, Barlow Twins, VICReg) or one call on the views concatenated (SimCLR, SwAV, DINO). The two are
different workloads (BatchNorm statistics; on CPU a 2x working set), and a mismatched baseline gave ratios < 1. Repetitions are interleaved across rows
(row order rotates each round) and the median is reported, to be fair on a noisy shared machine.

The issue's setting is resnet18 (ImageNet stem) at 32 px, batch 128, two views, each method's paper
heads (``method_defaults(method, "resnet18")`` apart from the overrides below). At 32 px the ResNet-18
trunk is tiny (~0.04 GFLOPs/image), so the ratio mostly measures the heads, whose cost does not shrink
with the image; ``--size 224`` shows the same steps where the backbone dominates.

Add a method: one entry in ROWS (row name → (method name, hparam overrides)).

    python benchmarks/step_overhead.py [--device cuda] [--reps 7] [--size 32] [--batch 128]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from sslzoo.backbones import create_backbone
from sslzoo.methods import METHODS, create_method, method_defaults

# row name -> (registered method, hparam overrides on top of method_defaults(method, arch))
ROWS: dict[str, tuple[str, dict]] = {
    "simsiam": ("simsiam", {}),
    "byol": ("byol", {}),
    "simclust_simsiam": ("simclust", {"variant": "simsiam", "ramp_epochs": (0, 0)}),
    "simclust_momentum": ("simclust", {"variant": "momentum", "ramp_epochs": (0, 0)}),
    "simclr": ("simclr", {}),
    "mocov3": ("mocov3", {}),
    "swav": ("swav", {}),
    "swav_2crops": ("swav", {}),
    "dino": ("dino", {}),
    "dino_2crops": ("dino", {}),
    "barlowtwins": ("barlowtwins", {}),
    "vicreg": ("vicreg", {}),
}

# Methods that encode same-size views in one backbone call (sslzoo.methods: simclr, and encode_views in swav
# and dino); the others call the backbone once per view.
CONCATENATED_VIEWS = {"simclr", "swav", "dino"}

# Multi-crop rows: local crops added to the two global views, at round(size * 96 / 224) px as in
# sslzoo.data's "multicrop" recipe. Their ratio keeps the bare backbone on the 2 global views as the
# denominator, so it includes the cost of the local crops (each method's default crops: SwAV 2+6, DINO
# ResNet 2+8); the "_2crops" rows show the same methods on two views only.
LOCAL_CROPS: dict[str, int] = {"swav": 6, "dino": 8}

RESULTS = Path(__file__).parent / "results" / "step_overhead.json"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_backbone_step(arch: str, device: torch.device, views: list[torch.Tensor], concatenated: bool):
    backbone = create_backbone(arch).to(device).train()
    calls = [torch.cat(views)] if concatenated else views

    def step() -> None:
        backbone.zero_grad(set_to_none=True)
        sum(backbone(x).sum() for x in calls).backward()

    return step


def make_method_step(
    method: str, overrides: dict, arch: str, device: torch.device, views: list[torch.Tensor]
):
    hparams = {**method_defaults(method, arch, **overrides), **overrides}
    model = create_method(method, arch, **hparams).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9, weight_decay=1e-6)
    state = {"step": 0}

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(views)
        out["loss"].backward()
        opt.step()
        state["step"] += 1
        model.on_step_end(1.0 + state["step"] / 1000, 100.0)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128, help="images per view")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rows", nargs="*", default=list(ROWS), help=f"subset of {list(ROWS)}")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    device = torch.device(args.device)
    torch.manual_seed(0)
    views = [torch.randn(args.batch, 3, args.size, args.size, device=device) for _ in range(2)]
    steps = {
        "backbone": make_backbone_step(args.arch, device, views, concatenated=False),
        "backbone_concat": make_backbone_step(args.arch, device, views, concatenated=True),
    }
    baseline = {"backbone": "backbone", "backbone_concat": "backbone_concat"}
    for row in args.rows:
        method, overrides = ROWS[row]
        if method not in METHODS:
            print(f"skipping {row}: method {method!r} is not registered")
            continue
        local_size = max(1, round(args.size * 96 / 224))
        local = [
            torch.randn(args.batch, 3, local_size, local_size, device=device)
            for _ in range(LOCAL_CROPS.get(row, 0))
        ]
        steps[row] = make_method_step(method, overrides, args.arch, device, views + local)
        baseline[row] = "backbone_concat" if method in CONCATENATED_VIEWS else "backbone"

    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for rep in range(args.warmup + args.reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            _sync(device)
            start = time.perf_counter()
            steps[name]()
            _sync(device)
            if rep >= args.warmup:
                times[name].append(time.perf_counter() - start)

    medians = {name: statistics.median(ts) for name, ts in times.items()}
    rows = {
        name: {"median_ms": 1e3 * m, "ratio": m / medians[baseline[name]], "baseline": baseline[name]}
        for name, m in medians.items()
    }
    print(f"{args.arch} @ {args.size}px, batch {args.batch} x 2 views, {args.device}, median of {args.reps}")
    print(f"{'row':<22}{'ms/step':>10}{'ratio':>8}  over")
    for name, r in rows.items():
        print(f"{name:<22}{r['median_ms']:>10.1f}{r['ratio']:>8.2f}  {r['baseline']}")
    result = {
        "arch": args.arch,
        "size": args.size,
        "batch_per_view": args.batch,
        "views": 2,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "reps": args.reps,
        "target_ratio": 1.15,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
