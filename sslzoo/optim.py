"""Optimizers, parameter groups and learning-rate schedules for self-supervised pretraining.

- :class:`LARS`: layer-wise adaptive rate scaling (You, Gitman & Ginsburg, "Large Batch Training of
  Convolutional Networks", arXiv 1708.03888), in the form used by BYOL, SimSiam, Barlow Twins and SimClust:
  the trust ratio ``eta * ||w|| / ||g + wd * w||`` rescales each layer's update before momentum; biases and
  normalisation parameters are excluded from both weight decay and adaptation.
- :func:`param_groups`: splits a model's trainable parameters into "decay + adapt" and "no decay, no adapt".
- :func:`scale_lr`: linear scaling rule ``lr = base_lr * global_batch / 256`` (Goyal et al., "Accurate,
  Large Minibatch SGD", arXiv 1706.02677).
- :func:`lr_at_step`: linear warm-up then cosine decay (Loshchilov & Hutter, SGDR, arXiv 1608.03983).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["LARS", "build_optimizer", "lr_at_step", "param_groups", "scale_lr", "set_lr"]


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling.

    For a parameter ``w`` with gradient ``g`` in a group with ``lars_adaptation=True``::

        u = g + weight_decay * w
        u = u * eta * ||w|| / ||u||        (only when both norms are > 0)
        m = momentum * m + u
        w = w - lr * m

    Groups with ``lars_adaptation=False`` (biases, norm layers; see :func:`param_groups`) skip the rescaling.

    Args:
        params: parameters or parameter groups (groups may set ``weight_decay`` and ``lars_adaptation``).
        lr: learning rate.
        momentum: heavy-ball momentum.
        weight_decay: L2 penalty added to the gradient before adaptation.
        trust_coefficient: eta, the trust coefficient of You et al. (2017).
        eps: added to the update norm to guard against division by tiny norms.

    Example:
        >>> model = nn.Linear(4, 2)
        >>> opt = LARS(param_groups(model, weight_decay=1e-6), lr=0.3)
    """

    def __init__(
        self,
        params: Iterable,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 1e-3,
        eps: float = 0.0,
        lars_adaptation: bool = True,
    ) -> None:
        if lr < 0:
            raise ValueError(f"LARS: lr must be >= 0, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"LARS: momentum must be in [0, 1), got {momentum}")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            trust_coefficient=trust_coefficient,
            eps=eps,
            lars_adaptation=lars_adaptation,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                update = p.grad
                if group["weight_decay"] != 0:
                    update = update.add(p, alpha=group["weight_decay"])
                if group["lars_adaptation"]:
                    w_norm = torch.linalg.vector_norm(p)
                    u_norm = torch.linalg.vector_norm(update)
                    ratio = group["trust_coefficient"] * w_norm / (u_norm + group["eps"])
                    # A zero norm (fresh zero-initialised layer or zero gradient) leaves the update unscaled.
                    ratio = torch.where((w_norm > 0) & (u_norm > 0), ratio, torch.ones_like(ratio))
                    update = update.mul(ratio)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.clone(update).detach()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(update)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss


def _is_bias_or_norm(name: str, param: torch.Tensor, norm_param_ids: set[int]) -> bool:
    return param.ndim <= 1 or name.endswith(".bias") or id(param) in norm_param_ids


def _get_param(model: nn.Module, name: str) -> nn.Parameter | None:
    try:
        return model.get_parameter(name)
    except AttributeError:  # no_weight_decay() may name buffers or wildcard patterns
        return None


def param_groups(model: nn.Module, weight_decay: float, *, exclude_bias_and_norm: bool = True) -> list[dict]:
    """Split trainable parameters into two groups for :class:`LARS` / SGD / AdamW.

    Biases, the affine parameters of normalisation layers (BatchNorm, LayerNorm, GroupNorm, and any other
    1-d parameter) and what a timm model lists in ``no_weight_decay()`` get ``weight_decay=0`` and
    ``lars_adaptation=False``, following SimCLR / BYOL (and timm's ``param_groups_weight_decay``). Frozen parameters (``requires_grad=False``, e.g. momentum
    targets) are left out.

    Returns:
        ``[{"params": [...], "weight_decay": wd, "lars_adaptation": True, "name": "decay"},
        {"params": [...], "weight_decay": 0.0, "lars_adaptation": False, "name": "no_decay"}]``
        (empty groups are dropped).
    """
    norm_types = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)
    norm_param_ids = {
        id(p) for m in model.modules() if isinstance(m, norm_types) for p in m.parameters(False)
    }
    # timm models name their own exclusions (ViT position embeddings, class token) in no_weight_decay().
    for prefix, m in model.named_modules():
        if callable(getattr(m, "no_weight_decay", None)):
            for pname in m.no_weight_decay():
                p = _get_param(model, f"{prefix}.{pname}" if prefix else pname)
                if p is not None:
                    norm_param_ids.add(id(p))
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if exclude_bias_and_norm and _is_bias_or_norm(name, p, norm_param_ids):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay, "lars_adaptation": True, "name": "decay"},
        {"params": no_decay, "weight_decay": 0.0, "lars_adaptation": False, "name": "no_decay"},
    ]
    return [g for g in groups if g["params"]]


def scale_lr(
    base_lr: float, global_batch: int, *, scaling: str = "linear", reference_batch: int = 256
) -> float:
    """Linear scaling rule: ``base_lr * global_batch / reference_batch`` (``scaling="none"`` returns base_lr)."""
    if scaling == "linear":
        return base_lr * global_batch / reference_batch
    if scaling == "none":
        return base_lr
    raise ValueError(f"lr scaling must be 'linear' or 'none', got {scaling!r}")


def lr_at_step(
    step: int,
    total_steps: int,
    peak_lr: float,
    *,
    warmup_steps: int = 0,
    schedule: str = "cosine",
    min_lr: float = 0.0,
) -> float:
    """Learning rate for optimizer step ``step`` (0-based).

    Warm-up rises linearly, ``peak_lr * (step + 1) / warmup_steps``, so the first step is not wasted at lr 0;
    afterwards ``cosine`` decays as ``min_lr + (peak_lr - min_lr) * (1 + cos(pi * t)) / 2`` with ``t`` going
    from 0 to 1 over the remaining steps, and ``constant`` stays at ``peak_lr``.
    """
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return peak_lr
    if schedule != "cosine":
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    decay_steps = max(1, total_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate (groups may carry an ``lr_scale`` multiplier)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def build_optimizer(
    model: nn.Module,
    name: str,
    lr: float,
    *,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    betas: tuple[float, float] | list[float] = (0.9, 0.999),
    eps: float = 1e-8,
    trust_coefficient: float = 1e-3,
    exclude_bias_and_norm: bool = True,
) -> torch.optim.Optimizer:
    """Create ``lars``, ``sgd`` (momentum) or ``adamw`` over :func:`param_groups` of ``model``."""
    groups = param_groups(model, weight_decay, exclude_bias_and_norm=exclude_bias_and_norm)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    if name == "lars":
        return LARS(groups, lr=lr, momentum=momentum, trust_coefficient=trust_coefficient)
    # torch's optimizers ignore the extra "lars_adaptation"/"name" keys in a group.
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps)
    raise ValueError(f"unknown optimizer {name!r}; choose one of lars, sgd, adamw")
