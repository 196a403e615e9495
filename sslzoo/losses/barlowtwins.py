"""Barlow Twins: the cross-correlation of the two views' embeddings over the global batch."""

from __future__ import annotations

import torch

from sslzoo import distributed as sdist

__all__ = ["barlow_twins_loss"]


def _standardise(z: torch.Tensor, eps: float, gather_distributed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    # BatchNorm without affine over the global batch (biased variance, as nn.BatchNorm1d in training).
    reduce = sdist.all_reduce_sum if gather_distributed else (lambda t: t)
    count = reduce(z.new_tensor(float(z.shape[0])).detach())
    mean = reduce(z.sum(dim=0)) / count
    centred = z - mean
    var = reduce((centred * centred).sum(dim=0)) / count
    return centred * torch.rsqrt(var + eps), count


def barlow_twins_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    *,
    lambda_: float = 0.0051,
    eps: float = 1e-5,
    gather_distributed: bool = True,
) -> dict[str, torch.Tensor]:
    """Redundancy-reduction loss of Barlow Twins, over the global batch.

    - Barlow Twins, Zbontar et al. 2021, "Self-Supervised Learning via Redundancy Reduction",
      https://arxiv.org/abs/2103.03230, Eq. (1)-(2) and Algorithm 1; lightly's ``BarlowTwinsLoss``.

    Each embedding dimension is standardised over the global batch of N samples (BatchNorm without
    affine), then::

        C_ij = 1/N Σ_b ẑ1_bi ẑ2_bj
        L    = Σ_i (1 − C_ii)²  +  λ Σ_i Σ_{j≠i} C_ij²

    Means, variances and C are summed over processes with autograd-aware all-reduces, so every process
    computes the same global loss and, with DDP's gradient averaging, the exact gradient for any world
    size (a plain all-reduce or a per-process normalisation would not be).

    Example:
        >>> out = barlow_twins_loss(torch.randn(16, 32), torch.randn(16, 32), lambda_=0.0051)
        >>> out["loss"], out["invariance"], out["redundancy"]

    Args:
        z1: Embeddings (projector outputs) of the first view, shape (B, D).
        z2: Embeddings of the second view, shape (B, D).
        lambda_: λ, weight of the redundancy-reduction term (0.0051 in the paper).
        eps: ε added to the variance of the standardisation (that of nn.BatchNorm1d).
        gather_distributed: Take the statistics over the batches of all processes.

    Returns:
        Dict with ``loss``, ``invariance`` (Σ (1 − C_ii)²) and ``redundancy`` (Σ_{i≠j} C_ij², unweighted).
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(
            f"barlow_twins_loss expects z1 and z2 of the same shape (B, D), got "
            f"{tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    n1, count = _standardise(z1, eps, gather_distributed)
    n2, _ = _standardise(z2, eps, gather_distributed)
    c = n1.T @ n2
    if gather_distributed:
        c = sdist.all_reduce_sum(c)
    c = c / count
    diag = torch.diagonal(c)
    invariance = (1 - diag).pow(2).sum()
    redundancy = c.pow(2).sum() - diag.pow(2).sum()
    return {"loss": invariance + lambda_ * redundancy, "invariance": invariance, "redundancy": redundancy}
