"""End-to-end fine-tuning pieces: layer-wise lr decay, the optimiser, and one training epoch.

Layer-wise learning-rate decay (Clark et al., ELECTRA, ICLR 2020; used for ViTs by Bao et al., BEiT,
ICLR 2022 and He et al., MAE, CVPR 2022) scales the lr of layer ``l`` of ``L`` by ``decay ** (L - l)``, so
blocks near the input, which hold the most general features, move least. Layers are found with timm's
``group_matcher`` and the grouping of ``timm.optim.param_groups_layer_decay``, so every timm architecture
works; biases and normalisation weights get no weight decay. Label smoothing follows Szegedy et al.,
"Rethinking the Inception Architecture" (CVPR 2016).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sslzoo.eval.features import split_batch
from sslzoo.eval.linear import cosine_schedule

__all__ = ["param_groups_lrd", "build_finetune_optimizer", "finetune_one_epoch"]


def param_groups_lrd(
    model: nn.Module,
    lr: float,
    *,
    weight_decay: float = 0.05,
    layer_decay: float | None = None,
    no_weight_decay: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Parameter groups with absolute learning rates for ``torch.optim`` optimisers.

    Args:
        model: A timm model (``group_matcher`` is used to number its layers when ``layer_decay`` is set).
        lr: Base learning rate (of the classifier head, the last layer).
        weight_decay: Applied to weight matrices; biases, norms and 1-D parameters get 0.
        layer_decay: Multiplier per layer towards the input (e.g. 0.65 for ViT-B, 0.75 for ViT-S);
            ``None`` or 1.0 turns decay off.
        no_weight_decay: Extra parameter names without weight decay (``model.no_weight_decay()`` is added).

    Returns:
        Groups with ``params``, ``weight_decay``, ``lr`` (already scaled) and ``lr_scale``.
    """
    from timm.optim import param_groups_layer_decay, param_groups_weight_decay

    skip = set(no_weight_decay)
    if hasattr(model, "no_weight_decay"):
        skip |= set(model.no_weight_decay())
    if layer_decay is not None and layer_decay != 1.0:
        if not hasattr(model, "group_matcher"):
            raise ValueError(
                f"layer_decay needs a timm model with group_matcher(); {type(model).__name__} has none. "
                "Pass layer_decay=None."
            )
        groups = param_groups_layer_decay(
            model, weight_decay=weight_decay, no_weight_decay_list=tuple(skip), layer_decay=layer_decay
        )
    else:
        groups = param_groups_weight_decay(model, weight_decay=weight_decay, no_weight_decay_list=tuple(skip))
    for g in groups:
        g.setdefault("lr_scale", 1.0)
        g["lr"] = lr * g["lr_scale"]
    return groups


def build_finetune_optimizer(
    model: nn.Module,
    lr: float,
    *,
    weight_decay: float = 0.05,
    layer_decay: float | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
    total_steps: int,
    warmup_steps: int = 0,
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over :func:`param_groups_lrd` groups, with per-step linear warm-up + cosine decay."""
    groups = param_groups_lrd(model, lr, weight_decay=weight_decay, layer_decay=layer_decay)
    opt = torch.optim.AdamW(groups, lr=lr, betas=betas)
    return opt, cosine_schedule(opt, total_steps, warmup_steps)


def finetune_one_epoch(
    model: nn.Module,
    loader: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    *,
    label_smoothing: float = 0.1,
    accelerator: Any = None,
    max_grad_norm: float | None = None,
    max_steps: int | None = None,
) -> list[float]:
    """Train ``model`` (encoder + head) for one pass over ``loader``; returns the per-step losses.

    Args:
        label_smoothing: ``epsilon`` of the smoothed targets ``(1 - epsilon) * onehot + epsilon / C``.
        accelerator: An ``accelerate.Accelerator`` that prepared ``model``, ``optimizer`` and ``loader``.
        max_grad_norm: Clip the global gradient norm to this value (None: no clipping).
        max_steps: Stop after this many steps (for smoke tests).
    """
    model.train()
    if accelerator is not None:
        device = accelerator.device
    else:
        param = next(model.parameters())
        device = param.device
    losses = []
    for step, batch in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        images, labels = split_batch(batch)
        logits = model(images.to(device))
        loss = F.cross_entropy(logits, labels.to(device).long(), label_smoothing=label_smoothing)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"fine-tuning loss became {loss.item()} at step {step}; lower the learning rate or add "
                "gradient clipping (--clip-grad)."
            )
        optimizer.zero_grad(set_to_none=True)
        if accelerator is not None:
            accelerator.backward(loss)
            if max_grad_norm is not None:
                accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
        else:
            loss.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
    return losses
