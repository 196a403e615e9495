"""VICReg: invariance, variance and covariance terms, the latter two over the global batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sslzoo import distributed as sdist

__all__ = ["vicreg_loss"]


def _variance(z: torch.Tensor, gamma: float, eps: float) -> torch.Tensor:
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(gamma - std).mean()


def _covariance(z: torch.Tensor) -> torch.Tensor:
    n, d = z.shape
    centred = z - z.mean(dim=0)
    cov = centred.T @ centred / (n - 1)
    return (cov.pow(2).sum() - torch.diagonal(cov).pow(2).sum()) / d


def vicreg_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    *,
    lambda_: float = 25.0,
    mu: float = 25.0,
    nu: float = 1.0,
    gamma: float = 1.0,
    eps: float = 1e-4,
    gather_distributed: bool = True,
) -> dict[str, torch.Tensor]:
    """Variance-Invariance-Covariance Regularisation loss.

    - VICReg, Bardes, Ponce and LeCun 2022, https://arxiv.org/abs/2105.04906, Eq. (1)-(6); the authors'
      code (https://github.com/facebookresearch/vicreg) and lightly's ``VICRegLoss``.

    With Z = z1 or z2 over the global batch of N samples and D dimensions::

        s(z1, z2) = 1/(B·D) Σ_b ‖z1_b − z2_b‖²                       (invariance, local mean)
        v(Z)      = 1/D Σ_j max(0, γ − sqrt(Var(Z_:j) + ε))           (variance, unbiased Var)
        c(Z)      = 1/D Σ_{i≠j} Cov(Z)_ij²,  Cov(Z) = 1/(N−1) Σ_b (Z_b − Z̄)(Z_b − Z̄)ᵀ
        L = λ s(z1, z2) + μ ½[v(z1) + v(z2)] + ν [c(z1) + c(z2)]

    The variance and covariance take the embeddings of all processes, gathered **with gradient**, so every
    process computes the same global terms; the invariance is a per-sample mean and averages to the
    global one over processes.

    Example:
        >>> out = vicreg_loss(torch.randn(16, 32), torch.randn(16, 32))
        >>> out["loss"], out["invariance"], out["variance"], out["covariance"]

    Args:
        z1: Embeddings (expander outputs) of the first view, shape (B, D).
        z2: Embeddings of the second view, shape (B, D).
        lambda_: λ, invariance weight (25).
        mu: μ, variance weight (25).
        nu: ν, covariance weight (1).
        gamma: γ, target standard deviation (1).
        eps: ε inside the square root (1e-4).
        gather_distributed: Take variance and covariance over the batches of all processes.

    Returns:
        Dict with ``loss`` and the unweighted terms ``invariance``, ``variance`` (the ½-sum of both views)
        and ``covariance`` (the sum of both views).
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(
            f"vicreg_loss expects z1 and z2 of the same shape (B, D), got {tuple(z1.shape)} "
            f"and {tuple(z2.shape)}"
        )
    invariance = F.mse_loss(z1, z2)
    if gather_distributed:
        z1, z2 = sdist.gather(z1), sdist.gather(z2)
    if z1.shape[0] < 2:
        raise ValueError("vicreg_loss needs at least 2 samples in the (global) batch for the variance")
    variance = 0.5 * (_variance(z1, gamma, eps) + _variance(z2, gamma, eps))
    covariance = _covariance(z1) + _covariance(z2)
    loss = lambda_ * invariance + mu * variance + nu * covariance
    return {"loss": loss, "invariance": invariance, "variance": variance, "covariance": covariance}
