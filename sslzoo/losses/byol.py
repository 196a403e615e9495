"""BYOL's regression loss (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020, Eq. 2).

    L(p, z') = ‖p̂ − ẑ'‖²₂ = 2 − 2 · cos(p, z')

with ``p`` the online prediction and ``z'`` the target projection (no gradient). The paper symmetrises
by adding the loss with the views swapped.

Example:
    >>> import torch
    >>> p1, p2, t1, t2 = torch.randn(4, 8, 16).unbind(0)
    >>> loss = byol_loss(p1, t2) + byol_loss(p2, t1)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["byol_loss"]


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Batch mean of ‖p̂ − ẑ‖² (L2-normalised rows); the gradient is stopped at the target ``z``."""
    if p.shape != z.shape:
        raise ValueError(f"p and z must have one shape, got {tuple(p.shape)} and {tuple(z.shape)}")
    return (F.normalize(p, dim=-1) - F.normalize(z.detach(), dim=-1)).pow(2).sum(-1).mean()
