"""Classification metrics shared by the evaluation protocols, and the metrics JSON they write.

Every recipe of ``recipes/`` writes one flat JSON object per evaluation (see :func:`write_metrics`), which
the model-card code reads: ``{"model", "dataset", "protocol", "top1", "top5", "command", ...}``.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sslzoo.eval.features import split_batch

__all__ = ["topk_correct", "evaluate_classifier", "write_metrics", "command_line", "PROTOCOLS"]

PROTOCOLS = ("knn", "linear", "finetune")


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """Number of rows whose label is among the ``k`` highest logits, for each ``k`` (clamped to ``C``).

    A stable sort breaks ties towards the lower class index, so results do not depend on the backend.
    """
    ranked = logits.sort(dim=1, descending=True, stable=True).indices
    hits = ranked == labels[:, None]
    return [int(hits[:, : min(k, logits.shape[1])].any(dim=1).sum()) for k in ks]


@torch.no_grad()
def evaluate_classifier(model: nn.Module, dataloader: Any, accelerator: Any = None) -> dict[str, float]:
    """Top-1/top-5 accuracy (percent) and mean cross-entropy of ``model`` over ``dataloader``.

    Batches are ``(views, labels)`` with one view, or ``(images, labels)``. With an ``accelerator`` the
    loader should come from ``accelerator.prepare``; counts are gathered with ``gather_for_metrics`` so
    padding duplicates are not counted twice.
    """
    was_training = model.training
    model.eval()
    if accelerator is not None:
        device = accelerator.device
    else:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    n = top1 = top5 = 0
    loss_sum = 0.0
    try:
        for batch in dataloader:
            images, labels = split_batch(batch)
            logits = model(images.to(device)).float()
            labels = labels.to(device).long()
            if accelerator is not None:
                logits, labels = accelerator.gather_for_metrics((logits, labels))
            c1, c5 = topk_correct(logits, labels, (1, 5))
            top1, top5, n = top1 + c1, top5 + c5, n + labels.numel()
            loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("the evaluation loader yielded no samples.")
    return {"top1": 100.0 * top1 / n, "top5": 100.0 * top5 / n, "loss": loss_sum / n, "num_samples": n}


def command_line() -> str:
    """The command that launched this process, quoted so it can be pasted back into a shell."""
    return " ".join(shlex.quote(a) for a in [os.path.basename(sys.executable), *sys.argv])


def write_metrics(
    path: str | os.PathLike,
    *,
    protocol: str,
    dataset: str,
    top1: float,
    top5: float | None = None,
    model: str | None = None,
    command: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write one evaluation result as a flat JSON object and return it.

    Schema (all recipes): ``model`` (registry name or path), ``dataset`` (source string), ``protocol``
    (``"knn"``, ``"linear"`` or ``"finetune"``), ``top1`` and ``top5`` (percent, test split), ``command``
    (how to reproduce), ``<protocol>_top1`` / ``<protocol>_top5`` (the same numbers under the keys the model
    cards use), plus protocol-specific scalars in ``extra`` (``k``, ``temperature``, ``epochs``...).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}; got {protocol!r}.")
    record = {
        "model": model,
        "dataset": dataset,
        "protocol": protocol,
        "top1": round(float(top1), 4),
        "top5": None if top5 is None else round(float(top5), 4),
        "command": command if command is not None else command_line(),
        # The same numbers under the model-card keys (sslzoo.cards): knn_top1, linear_top1, finetune_top1.
        f"{protocol}_top1": round(float(top1), 4),
        **({} if top5 is None else {f"{protocol}_top5": round(float(top5), 4)}),
        **extra,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    return record
