"""Linear probe (and kNN) of a frozen sslzoo encoder.

Fast mode (default): embed the train and test splits once (cached as safetensors), report weighted kNN
(k=20, k=200, T=0.07) and train a BN-free linear head on the cached features. ``--mode augmented``: the usual
protocol, random-resized-crop + flip images through the frozen encoder at every step.

Examples::

    python recipes/linear_probe.py --model resnet18_cifar_simclust --pretrained outputs/run1 --data digits \\
        --image-size 16 --output-dir outputs/run1/eval
    accelerate launch recipes/linear_probe.py --model resnet50_simclust --pretrained true \\
        --data imagenet-1k --mode augmented --epochs 90 --optimizer lars --lr 0.1 --batch-size 1024

Writes ``<output-dir>/linear_metrics.json`` and ``<output-dir>/knn_metrics.json`` (flat schema of
:func:`sslzoo.eval.write_metrics`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

import sslzoo
from sslzoo.data import build_eval_transform, build_views, create_dataloader, load_source
from sslzoo.eval import (
    evaluate_classifier,
    extract_features,
    knn_evaluate,
    linear_probe,
    train_linear_probe,
    write_metrics,
)
from sslzoo.eval.recipe_args import add_evaluation_arguments, image_size, parse_pretrained


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_evaluation_arguments(p)
    p.add_argument("--mode", choices=("fast", "augmented"), default="fast")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--optimizer", choices=("sgd", "lars"), default="sgd")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--knn-k", type=int, nargs="*", default=[20, 200], help="kNN k values (fast mode)")
    p.add_argument("--knn-temperature", type=float, default=0.07)
    p.add_argument("--cache-dir", default=None, help="feature cache folder (fast mode); default: no cache")
    p.add_argument("--output-dir", default="outputs/linear_probe")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    args = parse_args(argv)
    accelerator = Accelerator()
    set_seed(args.seed)
    model = sslzoo.create_model(args.model, pretrained=parse_pretrained(args.pretrained))
    size = image_size(args)
    eval_tf = build_eval_transform(size)
    train_ds = load_source(args.data, args.train_split, require_labels=True)
    test_ds = load_source(args.data, args.test_split, require_labels=True)

    def loader(ds, transform, shuffle):
        dl = create_dataloader(
            ds,
            transform,
            args.batch_size,
            shuffle=shuffle,
            drop_last=False,
            num_workers=args.num_workers,
            seed=args.seed,
        )
        return accelerator.prepare(dl)

    test_loader = loader(test_ds, eval_tf, False)
    out_dir = Path(args.output_dir)
    common = {"model": args.model, "dataset": args.data, "image_size": size, "seed": args.seed}
    results: dict[str, dict] = {}
    if args.mode == "fast":
        cache = Path(args.cache_dir) if args.cache_dir else None
        train_x, train_y = extract_features(
            model,
            loader(train_ds, eval_tf, False),
            accelerator,
            cache_path=cache / f"{args.train_split}.safetensors" if cache else None,
            show_progress=True,
        )
        test_x, test_y = extract_features(
            model,
            test_loader,
            accelerator,
            cache_path=cache / f"{args.test_split}.safetensors" if cache else None,
            show_progress=True,
        )
        if accelerator.is_main_process:
            if args.knn_k:
                knn = knn_evaluate(
                    train_x, train_y, test_x, test_y, ks=args.knn_k, temperature=args.knn_temperature
                )
                k0 = args.knn_k[0]
                results["knn"] = write_metrics(
                    out_dir / "knn_metrics.json",
                    protocol="knn",
                    top1=knn[f"knn_top1_k{k0}"],
                    top5=knn[f"knn_top5_k{k0}"],
                    k=k0,
                    temperature=args.knn_temperature,
                    **knn,
                    **common,
                )
            lin = linear_probe(
                train_x,
                train_y,
                test_x,
                test_y,
                epochs=args.epochs,
                lr=args.lr,
                batch_size=args.batch_size,
                weight_decay=args.weight_decay,
                optimizer=args.optimizer,
                seed=args.seed,
            )
            results["linear"] = write_metrics(
                out_dir / "linear_metrics.json",
                protocol="linear",
                top1=lin["top1"],
                top5=lin["top5"],
                mode="fast",
                epochs=args.epochs,
                lr=args.lr,
                optimizer=args.optimizer,
                train_top1=lin["train_top1"],
                **common,
            )
    else:
        num_classes = int(max(train_ds["label"])) + 1 if hasattr(train_ds, "__len__") else None
        if num_classes is None:
            raise ValueError(
                "--mode augmented needs a map-style data set to count classes; disable streaming."
            )
        train_tf = build_views("linear_probe", size=size)
        clf = train_linear_probe(
            model,
            loader(train_ds, train_tf, True),
            num_classes=num_classes,
            epochs=args.epochs,
            lr=args.lr,
            weight_decay=args.weight_decay,
            optimizer=args.optimizer,
            accelerator=accelerator,
            log_fn=accelerator.print,
        )
        res = evaluate_classifier(clf, test_loader, accelerator)
        if accelerator.is_main_process:
            results["linear"] = write_metrics(
                out_dir / "linear_metrics.json",
                protocol="linear",
                top1=res["top1"],
                top5=res["top5"],
                mode="augmented",
                epochs=args.epochs,
                lr=args.lr,
                optimizer=args.optimizer,
                **common,
            )
    for name, rec in results.items():
        accelerator.print(f"{name}: top1 {rec['top1']:.2f}%  top5 {rec['top5']:.2f}%")
    accelerator.end_training()
    return results


if __name__ == "__main__":
    torch.set_float32_matmul_precision("high")
    main()
