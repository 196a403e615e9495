"""Symmetric InfoNCE of MoCo v3 with the keys of the global batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sslzoo import distributed as sdist

__all__ = ["mocov3_loss", "info_nce"]


def info_nce(
    q: torch.Tensor, k: torch.Tensor, *, temperature: float = 1.0, gather_distributed: bool = True
) -> torch.Tensor:
    """One direction of MoCo v3's contrastive loss, ``ctr(q, k)``, scaled by 2τ as in the paper's code.

    Keys are treated as constants (stop-gradient) and gathered from all processes; the positive of
    ``q[b]`` is ``k[b]`` and the other N−1 keys of the global batch are negatives::

        ctr(q, k) = 2τ · 1/B Σ_b −log  exp(q̂_b·k̂_b / τ) / Σ_n exp(q̂_b·k̂_n / τ)

    Args:
        q: Queries (predictor outputs of the online branch), shape (B, D).
        k: Keys (momentum-encoder projections of the other view), shape (B, D).
        temperature: τ.
        gather_distributed: Use the keys of all processes as negatives.
    """
    if q.shape != k.shape or q.dim() != 2:
        raise ValueError(
            f"info_nce expects q and k of the same shape (B, D), got {tuple(q.shape)} and {tuple(k.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    q = F.normalize(q, dim=1)
    k = F.normalize(k.detach(), dim=1)
    offset = 0
    if gather_distributed and sdist.is_distributed():
        offset = sdist.rank() * q.shape[0]
        k = sdist.gather_no_grad(k)
    logits = q @ k.T / temperature
    labels = torch.arange(q.shape[0], device=q.device) + offset
    return 2 * temperature * F.cross_entropy(logits, labels)


def mocov3_loss(
    q1: torch.Tensor,
    q2: torch.Tensor,
    k1: torch.Tensor,
    k2: torch.Tensor,
    *,
    temperature: float = 1.0,
    gather_distributed: bool = True,
) -> torch.Tensor:
    """Symmetrised contrastive loss of MoCo v3: ``ctr(q1, k2) + ctr(q2, k1)``.

    - MoCo v3, Chen, Xie and He 2021, "An Empirical Study of Training Self-Supervised Vision
      Transformers", https://arxiv.org/abs/2104.02057, Algorithm 1 (including the 2τ factor of the
      authors' code, https://github.com/facebookresearch/moco-v3).

    Without a memory queue the negatives are the keys of the global batch (all processes, gathered
    without gradient, as keys come from the momentum encoder). Every process averages over its own
    queries, so with DDP's gradient averaging N processes × B equal one process × N·B.

    Example:
        >>> q1, q2, k1, k2 = (torch.randn(8, 256) for _ in range(4))
        >>> loss = mocov3_loss(q1, q2, k1, k2, temperature=0.2)

    Args:
        q1: Predictions for view 1 (online encoder + projector + predictor), shape (B, D).
        q2: Predictions for view 2, shape (B, D).
        k1: Momentum-encoder projections of view 1, shape (B, D).
        k2: Momentum-encoder projections of view 2, shape (B, D).
        temperature: τ (1.0 for ResNet-50, 0.2 for ViTs in the paper).
        gather_distributed: Use the keys of all processes as negatives.
    """
    kwargs = dict(temperature=temperature, gather_distributed=gather_distributed)
    return info_nce(q1, k2, **kwargs) + info_nce(q2, k1, **kwargs)
