"""Momentum (EMA) targets and their cosine schedule, shared by BYOL, SimClust-momentum, MoCo v3 and DINO.

BYOL (Grill et al., NeurIPS 2020, Sec. 3.2) updates the target as ξ ← τ ξ + (1 − τ) θ after every
step, with τ = 1 − (1 − τ_base)(cos(π k / K) + 1) / 2 rising from τ_base to 1 over training.

Example:
    >>> import torch
    >>> online = torch.nn.Linear(4, 4)
    >>> target = momentum_copy(online)
    >>> ema_update_(target, online, cosine_schedule(0.5, 0.996, 1.0))
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

__all__ = ["cosine_schedule", "linear_ramp", "momentum_copy", "ema_update_"]


def cosine_schedule(progress: float, start: float, end: float) -> float:
    """Half-cosine from ``start`` (progress 0) to ``end`` (progress ≥ 1)."""
    progress = min(max(float(progress), 0.0), 1.0)
    return end - (end - start) * (math.cos(math.pi * progress) + 1.0) / 2.0


def linear_ramp(epoch: float, start_epoch: float, end_epoch: float) -> float:
    """0 before ``start_epoch``, 1 from ``end_epoch`` on, linear in between (a step if they are equal)."""
    if epoch >= end_epoch:
        return 1.0
    if epoch <= start_epoch:
        return 0.0
    return (epoch - start_epoch) / (end_epoch - start_epoch)


def momentum_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` that takes no gradient (the EMA target)."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """In place ``target ← momentum · target + (1 − momentum) · online`` over parameters.

    Buffers (BatchNorm running statistics) are left to the target's own forward passes, as in BYOL.
    """
    t_params = list(target.parameters())
    o_params = list(online.parameters())
    if len(t_params) != len(o_params):
        raise ValueError("ema_update_: target and online modules do not have the same parameters")
    if momentum >= 1.0:
        return
    torch._foreach_lerp_(t_params, [p.detach() for p in o_params], 1.0 - momentum)
