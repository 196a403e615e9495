"""Command-line arguments that the evaluation recipes (``recipes/linear_probe.py``, ``recipes/finetune.py``) share.

What to evaluate and on what: the registry model, its weights, the labelled source and its splits, the image
size; each recipe adds its own protocol's arguments.
"""

from __future__ import annotations

import argparse

from ..backbones import ARCHS
from ..registry import get_entry


def add_evaluation_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--pretrained``, ``--data``, ``--train-split``, ``--test-split``, ``--image-size``,
    ``--num-workers`` and ``--seed``."""
    parser.add_argument("--model", required=True, help="registry name, e.g. resnet18_cifar_simclust")
    parser.add_argument(
        "--pretrained",
        default="false",
        help="'true' (registry weights), 'false' (random) or a path to weights",
    )
    parser.add_argument(
        "--data", default="digits", help="sslzoo.data source (digits, a folder, a Hub data set)"
    )
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--test-split", default="test")
    parser.add_argument("--image-size", type=int, default=None, help="default: the arch's input size")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)


def parse_pretrained(value: str) -> bool | str:
    """``--pretrained`` for ``create_model``: ``'true'``/``'false'`` (any case) as booleans, a path unchanged."""
    return {"true": True, "false": False}.get(value.lower(), value)


def image_size(args: argparse.Namespace) -> int:
    """``--image-size``, or the input size of the model's architecture."""
    entry, _ = get_entry(args.model)
    return args.image_size or ARCHS[entry.arch].input_size[-1]
