"""torchrun worker: N processes × batch B must give the loss and gradients of 1 process × batch N·B.

Run as ``torchrun --nproc_per_node 2 tests/dist/equivalence_worker.py --cases cases.json --out out.json``.
``cases.json`` maps a case name to ``{"method": str, "hparams": dict, "num_views": int, "batch": int,
"size": int, "progress": [epoch, max_epochs] | null}`` plus optional ``"num_local"``/``"local_size"``
(multi-crop local views) and ``"pre_forwards"`` (training forwards on other batches first, filling state
such as SwAV's queue and DINO's centre). Each case is built from the same seed in every
process, run distributed (gloo, CPU, float64) on rank r's slice of the global batch, its gradients
averaged over processes as DDP does; then rank 0 leaves the process group and runs the same case on the
whole batch in one process. ``out.json`` gets, per case, both losses, the largest absolute gradient and
BatchNorm running-statistic differences, and how many BatchNorm layers were not global-batch.
"""

from __future__ import annotations

import argparse
import json
import os

import timm
import torch
import torch.distributed as dist
from torch.nn.modules.batchnorm import _BatchNorm

from sslzoo.methods import create_method
from sslzoo.nn import GlobalBatchNorm


def build(case: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    backbone = timm.create_model(case.get("backbone", "test_resnet"), num_classes=0)
    method = create_method(case["method"], backbone, **case.get("hparams", {})).double().train()
    if case.get("progress"):
        method.set_progress(*case["progress"])
    return method


def make_views(case: dict, world: int, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    n, s = case["batch"] * world, case.get("size", 16)
    views = [
        torch.randn(n, 3, s, s, generator=g, dtype=torch.float64) for _ in range(case.get("num_views", 2))
    ]
    # Multi-crop: smaller "local" views after the global ones.
    ls = case.get("local_size", s // 2)
    return views + [
        torch.randn(n, 3, ls, ls, generator=g, dtype=torch.float64) for _ in range(case.get("num_local", 0))
    ]


def pre_forwards(case: dict, method: torch.nn.Module, world: int, rank: int | None) -> None:
    """Training forwards on other batches before the measured step, to fill state (SwAV queue, DINO centre)."""
    b = case["batch"]
    for k in range(case.get("pre_forwards", 0)):
        views = make_views(case, world, seed=100 + k)
        if rank is not None:
            views = [v[rank * b : (rank + 1) * b] for v in views]
        with torch.no_grad():
            method(views)


def run_step(method: torch.nn.Module, views: list[torch.Tensor]) -> tuple[float, dict, dict]:
    out = method(views)
    out["loss"].backward()
    grads = {
        name: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
        for name, p in method.named_parameters()
        if p.requires_grad
    }
    stats = {name: b.detach().clone() for name, b in method.named_buffers() if "running" in name}
    return out["loss"].detach(), grads, stats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with open(args.cases) as f:
        cases = json.load(f)

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    dist_results = {}
    for name, case in cases.items():
        method = build(case)
        local_bn = sum(
            isinstance(m, _BatchNorm) and not isinstance(m, GlobalBatchNorm) for m in method.modules()
        )
        views = [v[rank * case["batch"] : (rank + 1) * case["batch"]] for v in make_views(case, world)]
        pre_forwards(case, method, world, rank)
        loss, grads, stats = run_step(method, views)
        dist.all_reduce(loss)
        for g in grads.values():  # DDP averages gradients over processes
            dist.all_reduce(g)
            g /= world
        dist_results[name] = (float(loss) / world, grads, stats, local_bn)
    dist.barrier()
    dist.destroy_process_group()
    if rank != 0:
        return

    report = {}
    for name, case in cases.items():
        loss_d, grads_d, stats_d, local_bn = dist_results[name]
        method = build(case)
        pre_forwards(case, method, world, None)
        loss_r, grads_r, stats_r = run_step(method, make_views(case, world))
        grad_err = max(float((grads_d[k] - grads_r[k]).abs().max()) for k in grads_r)
        grad_scale = max(float(g.abs().max()) for g in grads_r.values())
        stat_err = max((float((stats_d[k] - stats_r[k]).abs().max()) for k in stats_r), default=0.0)
        report[name] = {
            "loss_dist": loss_d,
            "loss_ref": float(loss_r),
            "max_grad_err": grad_err,
            "max_grad": grad_scale,
            "num_grads": len(grads_r),
            "max_running_stat_err": stat_err,
            "local_batchnorm_layers": local_bn,
        }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report, indent=1), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
