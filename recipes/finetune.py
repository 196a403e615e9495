"""Fine-tune an sslzoo encoder end to end on a labelled data set.

``sslzoo.create_model(name, pretrained=..., num_classes=N)`` gives the encoder with a fresh head; training uses
AdamW, per-step linear warm-up + cosine decay, layer-wise lr decay (``--layer-decay``, for ViTs), label
smoothing and random-resized-crop + flip augmentations; the test split is evaluated after every epoch.

Examples::

    python recipes/finetune.py --model resnet18_cifar_simclust --pretrained outputs/run1 --data digits \\
        --image-size 16 --epochs 10 --lr 1e-3
    accelerate launch recipes/finetune.py --model vit_small_patch16_224_dino --pretrained true \\
        --data imagenet-1k --epochs 100 --lr 5e-4 --layer-decay 0.65 --batch-size 1024

Writes ``<output-dir>/finetune_metrics.json`` (flat schema of :func:`sslzoo.eval.write_metrics`).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import set_seed

import sslzoo
from sslzoo.data import build_eval_transform, build_views, create_dataloader, load_source
from sslzoo.eval import build_finetune_optimizer, evaluate_classifier, finetune_one_epoch, write_metrics
from sslzoo.eval.recipe_args import add_evaluation_arguments, image_size, parse_pretrained


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_evaluation_arguments(p)
    p.add_argument("--num-classes", type=int, default=None, help="default: max label + 1 of the train split")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--layer-decay", type=float, default=None, help="e.g. 0.65 (ViT-B) / 0.75 (ViT-S)")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--clip-grad", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--max-steps-per-epoch", type=int, default=None, help="for smoke tests")
    p.add_argument("--output-dir", default="outputs/finetune")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    accelerator = Accelerator()
    set_seed(args.seed)
    train_ds = load_source(args.data, args.train_split, require_labels=True)
    test_ds = load_source(args.data, args.test_split, require_labels=True)
    num_classes = args.num_classes or int(max(train_ds["label"])) + 1
    model = sslzoo.create_model(
        args.model, pretrained=parse_pretrained(args.pretrained), num_classes=num_classes
    )
    size = image_size(args)

    def loader(ds, transform, train):
        return create_dataloader(
            ds,
            transform,
            args.batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=args.num_workers,
            seed=args.seed,
        )

    train_loader = loader(train_ds, build_views("linear_probe", size=size), True)
    test_loader = loader(test_ds, build_eval_transform(size), False)
    steps_per_epoch = len(train_loader) // accelerator.num_processes
    if args.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, args.max_steps_per_epoch)
    opt, sched = build_finetune_optimizer(
        model,
        args.lr,
        weight_decay=args.weight_decay,
        layer_decay=args.layer_decay,
        total_steps=args.epochs * steps_per_epoch,
        warmup_steps=math.ceil(args.warmup_epochs * steps_per_epoch),
    )
    model, opt, train_loader, test_loader = accelerator.prepare(model, opt, train_loader, test_loader)
    history = []
    for epoch in range(args.epochs):
        losses = finetune_one_epoch(
            model,
            train_loader,
            opt,
            sched,
            label_smoothing=args.label_smoothing,
            accelerator=accelerator,
            max_grad_norm=args.clip_grad,
            max_steps=args.max_steps_per_epoch,
        )
        res = evaluate_classifier(model, test_loader, accelerator)
        train_loss = sum(losses) / max(len(losses), 1)
        history.append({"epoch": epoch + 1, "train_loss": train_loss, **res})
        accelerator.print(
            f"epoch {epoch + 1}/{args.epochs} train loss {train_loss:.4f} "
            f"test top1 {res['top1']:.2f}% top5 {res['top5']:.2f}% loss {res['loss']:.4f}"
        )
    record = {}
    if accelerator.is_main_process:
        final = history[-1]
        record = write_metrics(
            Path(args.output_dir) / "finetune_metrics.json",
            protocol="finetune",
            top1=final["top1"],
            top5=final["top5"],
            model=args.model,
            dataset=args.data,
            image_size=size,
            epochs=args.epochs,
            lr=args.lr,
            layer_decay=args.layer_decay,
            label_smoothing=args.label_smoothing,
            num_classes=num_classes,
            seed=args.seed,
            pretrained=str(args.pretrained),
            first_train_loss=history[0]["train_loss"],
            final_train_loss=final["train_loss"],
        )
    accelerator.end_training()
    return record


if __name__ == "__main__":
    main()
