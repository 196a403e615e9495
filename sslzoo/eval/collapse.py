"""Collapse signals of an embedding batch, cheap enough to log every step.

- ``embedding_std``: SimSiam's monitor (Chen & He, CVPR 2021, Sec. 4.1): the per-dimension standard
  deviation of the L2-normalised embeddings, averaged over dimensions. About 1/√d for embeddings spread
  over the sphere, 0 under complete collapse.
- ``effective_rank``: Roy & Vetterli (EUSIPCO 2007), as used for SSL embeddings by RankMe (Garrido et
  al., ICML 2023): exp of the entropy of the normalised singular values. Between 1 (all rows on one line)
  and min(B, d); dimensional collapse shows as a rank far below the dimension.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["embedding_std", "effective_rank"]


@torch.no_grad()
def embedding_std(z: torch.Tensor) -> torch.Tensor:
    """Mean over dimensions of the batch standard deviation of L2-normalised rows of ``z`` (B, d)."""
    if z.dim() != 2 or z.shape[0] < 2:
        raise ValueError(f"embedding_std needs a (B >= 2, d) batch, got shape {tuple(z.shape)}")
    return F.normalize(z.detach().float(), dim=1).std(dim=0).mean()


@torch.no_grad()
def effective_rank(z: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Effective rank exp(H(σ / ‖σ‖₁)) of the (B, d) embedding batch ``z``, σ its singular values."""
    if z.dim() != 2:
        raise ValueError(f"effective_rank needs a (B, d) batch, got shape {tuple(z.shape)}")
    s = torch.linalg.svdvals(z.detach().float())
    p = s / (s.sum() + eps) + eps
    return torch.exp(-(p * p.log()).sum())
