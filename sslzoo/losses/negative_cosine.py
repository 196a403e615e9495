"""Negative cosine similarity with stop-gradient (SimSiam, Chen & He, "Exploring Simple Siamese
Representation Learning", CVPR 2021, Eq. 1-2).

    D(p, z) = −cos(p, stopgrad(z)),    L = ½ D(p1, z2) + ½ D(p2, z1)

Example:
    >>> import torch
    >>> p1, p2, z1, z2 = torch.randn(4, 8, 16).unbind(0)
    >>> loss = negative_cosine_similarity(p1, z2) / 2 + negative_cosine_similarity(p2, z1) / 2
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["negative_cosine_similarity"]


def negative_cosine_similarity(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Batch mean of −cos(p, z) with the gradient stopped at ``z``; ``p`` and ``z`` are (B, d)."""
    if p.shape != z.shape:
        raise ValueError(f"p and z must have one shape, got {tuple(p.shape)} and {tuple(z.shape)}")
    return -F.cosine_similarity(p, z.detach(), dim=-1).mean()
