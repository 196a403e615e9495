"""The paper's claim at the scale of this machine: SimClust vs. its similarity-only baselines on ``digits``.

Ge et al. (IEEE TIP 2023) report that adding the feature-level cross-entropy and uniformity terms to a
SimSiam / BYOL similarity loss (SimClust) improves the learned representation. This script pretrains
**simclust**, **simsiam** and **byol** with the same architecture, views, optimiser, global batch and number
of epochs (``recipes/pretrain.py``, one subprocess per run, so the loop is exactly the recipe's), for several
seeds, then evaluates every exported encoder -- and a randomly initialised one per seed -- with weighted kNN
(k=20, T=0.07) and the fast linear probe (:mod:`sslzoo.eval`). Each method keeps its own head sizes and
schedule hyper-parameters (``sslzoo.methods.method_defaults`` for the arch); SimClust's ramp from the
similarity loss to the clustering terms is placed at fractions of the run (``--simclust-ramp``), as the paper
places it at 50-60% of 1000 epochs.

Prints a table of mean +- std over seeds and writes ``benchmarks/results/reproduce_digits.json``.

    python benchmarks/reproduce_digits.py                     # full run (see --epochs for the budget)
    python benchmarks/reproduce_digits.py --seeds 0 --max-steps 3 --linear-epochs 5 --out /tmp/smoke.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "reproduce_digits.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--methods",
        nargs="+",
        default=["simclust", "simclust_sim_only=simclust", "simsiam", "byol"],
        help="methods, or LABEL=METHOD for a labelled variant (its --hparam keys use LABEL)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arch", default="resnet18_cifar")
    p.add_argument(
        "--image-size", type=int, default=32, help="digits are 8x8; upsampled as in the default job"
    )
    p.add_argument("--batch-size", type=int, default=128, help="global batch, the same for every method")
    p.add_argument("--epochs", type=int, default=3, help="pretraining epochs, the same for every method")
    p.add_argument("--views", default="byol", help="one view recipe for every method (sslzoo.data)")
    p.add_argument("--optimizer", default="sgd")
    p.add_argument("--base-lr", type=float, default=0.1, help="scaled by batch/256 (the recipe's rule)")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--warmup-epochs", type=float, default=0.5)
    p.add_argument(
        "--simclust-ramp",
        type=float,
        nargs=2,
        default=[0.625, 0.875],
        metavar=("START", "END"),
        help="SimClust's similarity -> clustering ramp as fractions of --epochs",
    )
    p.add_argument(
        "--hparam",
        action="append",
        default=[
            "simclust.proj_last_bn=false",
            "simclust_sim_only.proj_last_bn=false",
            "simclust_sim_only.ramp_epochs=[1000, 1001]",
        ],
        metavar="METHOD.KEY=VALUE",
        help="extra method hyper-parameter, e.g. simclust.tau_teacher=0.05 (repeatable)",
    )
    p.add_argument("--max-steps", type=int, default=None, help="cap pretraining steps (smoke tests)")
    p.add_argument("--knn-k", type=int, default=20)
    p.add_argument("--linear-epochs", type=int, default=100)
    p.add_argument("--linear-lr", type=float, default=0.1)
    p.add_argument("--work-dir", default=None, help="where runs go (default: a temporary folder, deleted)")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="with --work-dir: evaluate finished runs found there instead of pretraining them again",
    )
    p.add_argument("--out", default=str(RESULTS))
    return p.parse_args(argv)


def pretrain(args: argparse.Namespace, spec: str, seed: int, run_dir: Path) -> dict[str, Any]:
    """One ``recipes/pretrain.py`` run of ``spec`` (``METHOD`` or ``LABEL=METHOD``); returns its ``metrics.json``."""
    label, _, method = spec.rpartition("=")
    label = label or method
    overrides = {
        "name": f"reproduce_digits_{label}_s{seed}",
        "seed": seed,
        "output-dir": str(run_dir),
        "model.method": method,
        "model.arch": args.arch,
        "data.source": "digits",
        "data.image_size": args.image_size,
        "data.batch_size": args.batch_size,
        "data.views": args.views,
        "optim.name": args.optimizer,
        "optim.base_lr": args.base_lr,
        "optim.weight_decay": args.weight_decay,
        "optim.warmup_epochs": args.warmup_epochs,
        "train.epochs": args.epochs,
        "train.cpu": "true",
        "train.progress_bar": "false",
        "train.log_every": 10,
        "train.tracker": "jsonl",
        "knn.enabled": "false",  # evaluated below, identically for every encoder
    }
    if args.max_steps is not None:
        overrides["train.max_steps"] = args.max_steps
    if method == "simclust":
        start, end = (f * args.epochs for f in args.simclust_ramp)
        overrides["model.hparams.ramp_epochs"] = f"[{start}, {end}]"
    for item in args.hparam:
        key, _, value = item.partition("=")
        m, _, name = key.partition(".")
        if not name or not value:
            raise SystemExit(f"--hparam expects METHOD.KEY=VALUE, got {item!r}")
        if m == label:
            overrides[f"model.hparams.{name}"] = value
    cmd = [sys.executable, str(ROOT / "recipes" / "pretrain.py")]
    for key, value in overrides.items():
        cmd += [f"--{key}", str(value)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"pretraining {method} (seed {seed}) failed with exit code {proc.returncode}:\n"
            f"{shlex.join(cmd)}\n{proc.stderr[-3000:]}"
        )
    return json.loads((run_dir / "metrics.json").read_text())


def evaluate(encoder: torch.nn.Module, loaders: tuple[Any, Any], args: argparse.Namespace, seed: int) -> dict:
    from sslzoo.eval import extract_features, knn_accuracy, linear_probe

    train_x, train_y = extract_features(encoder, loaders[0])
    test_x, test_y = extract_features(encoder, loaders[1])
    knn = knn_accuracy(train_x, train_y, test_x, test_y, k=args.knn_k, temperature=0.07)
    lin = linear_probe(
        train_x,
        train_y,
        test_x,
        test_y,
        epochs=args.linear_epochs,
        lr=args.linear_lr,
        batch_size=256,
        seed=seed,
    )
    return {"knn_top1": knn, "linear_top1": lin["top1"], "linear_top5": lin["top5"]}


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import sslzoo
    from sslzoo.data import build_eval_transform, create_dataloader, load_source

    eval_tf = build_eval_transform(args.image_size)
    loaders = tuple(
        create_dataloader(
            load_source("digits", split, require_labels=True), eval_tf, 256, shuffle=False, drop_last=False
        )
        for split in ("train", "test")
    )
    tmp = None if args.work_dir else tempfile.TemporaryDirectory(prefix="reproduce_digits_")
    work = Path(args.work_dir or tmp.name)
    t_start = time.perf_counter()
    runs: dict[str, list[dict]] = {"random init": []}
    for seed in args.seeds:
        torch.manual_seed(seed)
        enc = sslzoo.create_model(f"{args.arch}_{args.methods[0]}")  # same arch, untrained
        runs["random init"].append({"seed": seed, **evaluate(enc, loaders, args, seed)})
    n_runs = len(args.methods) * len(args.seeds)
    for i, (spec, seed) in enumerate((m, s) for m in args.methods for s in args.seeds):
        t0 = time.perf_counter()
        label, _, base_method = spec.rpartition("=")
        method = label or base_method
        run_dir = work / f"{method}_s{seed}"
        if args.reuse and (run_dir / "metrics.json").is_file():
            metrics = json.loads((run_dir / "metrics.json").read_text())
        else:
            metrics = pretrain(args, spec, seed, run_dir)
        enc = sslzoo.create_model(f"{args.arch}_{base_method}", pretrained=str(run_dir))
        res = {
            "seed": seed,
            **evaluate(enc, loaders, args, seed),
            "train_time_s": metrics.get("train_time_s"),
            "steps": metrics.get("global_step"),
            "final_logs": metrics.get("final_logs"),
        }
        runs.setdefault(method, []).append(res)
        took = time.perf_counter() - t0
        print(
            f"[{i + 1}/{n_runs}] {method} seed {seed}: kNN {res['knn_top1']:.2f}%  linear {res['linear_top1']:.2f}%"
            f"  ({took:.0f} s; about {took * (n_runs - i - 1) / 60:.0f} min left)",
            flush=True,
        )
    if tmp is not None:
        tmp.cleanup()

    rows = []
    for method, results in runs.items():
        knn_m, knn_s = mean_std([r["knn_top1"] for r in results])
        lin_m, lin_s = mean_std([r["linear_top1"] for r in results])
        rows.append(
            {
                "method": method,
                "knn_top1_mean": knn_m,
                "knn_top1_std": knn_s,
                "linear_top1_mean": lin_m,
                "linear_top1_std": lin_s,
                "seeds": len(results),
                "runs": results,
            }
        )
    header = f"| method | kNN top-1 (k={args.knn_k}) | linear top-1 |\n|---|---|---|"
    table = "\n".join(
        [header]
        + [
            f"| {r['method']} | {r['knn_top1_mean']:.2f} ± {r['knn_top1_std']:.2f} | "
            f"{r['linear_top1_mean']:.2f} ± {r['linear_top1_std']:.2f} |"
            for r in rows
        ]
    )
    total = time.perf_counter() - t_start
    command = shlex.join(
        ["python", "benchmarks/reproduce_digits.py", *(sys.argv[1:] if argv is None else argv)]
    )
    result = {
        "benchmark": "reproduce_digits",
        "command": command,
        "config": {k: v for k, v in vars(args).items() if k not in ("out", "work_dir")},
        "rows": rows,
        "table_markdown": table,
        "total_time_s": round(total, 1),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    print(f"\n{table}\n\n{len(args.seeds)} seed(s), {args.epochs} epochs, {total / 60:.1f} min in all.")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
