"""VICReg (Bardes, Ponce and LeCun, ICLR 2022, https://arxiv.org/abs/2105.04906)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sslzoo.losses.vicreg import vicreg_loss
from sslzoo.methods import register_method
from sslzoo.methods.base import SSLMethod, is_small_image_arch, mean_over_pairs, view_pairs
from sslzoo.methods.heads import build_mlp, mlp_dims

__all__ = ["VICReg"]


@register_method("vicreg")
class VICReg(SSLMethod):
    """VICReg: invariance between views, variance and decorrelation within each view's embeddings.

    Variance and covariance are over the global batch (embeddings gathered with gradient, as the authors'
    ``FullGatherLayer``). Logs the three unweighted terms.

    Args:
        backbone: timm encoder or arch name.
        proj_hidden_dim / proj_dim / proj_layers: expander (8192 / 8192 / 3 layers, BN + ReLU).
        lambda_ / mu / nu: invariance, variance and covariance weights (25 / 25 / 1).
        sync_batchnorm: see :class:`SSLMethod`.
    """

    def __init__(
        self,
        backbone: nn.Module | str,
        *,
        proj_hidden_dim: int = 8192,
        proj_dim: int = 8192,
        proj_layers: int = 3,
        lambda_: float = 25.0,
        mu: float = 25.0,
        nu: float = 1.0,
        sync_batchnorm: bool | None = None,
    ) -> None:
        super().__init__(backbone, sync_batchnorm=sync_batchnorm)
        self.projector = build_mlp(mlp_dims(self.num_features, proj_hidden_dim, proj_dim, proj_layers))
        self.lambda_, self.mu, self.nu = float(lambda_), float(mu), float(nu)

    @classmethod
    def defaults(cls, arch: str) -> dict[str, Any]:
        """ImageNet, ResNet-50 (paper, Sec. 4.1): 8192-8192-8192 expander, λ = μ = 25, ν = 1.
        ``*_cifar`` (solo-learn's CIFAR recipe): 2048-2048-2048 expander, same weights."""
        hp: dict[str, Any] = {"views": "byol", "proj_hidden_dim": 8192, "proj_dim": 8192, "proj_layers": 3}
        hp.update(lambda_=25.0, mu=25.0, nu=1.0)
        if is_small_image_arch(arch):
            hp.update(proj_hidden_dim=2048, proj_dim=2048)
        return hp

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        views = self.check_views(views)
        z = [self.projector(self.backbone(v)) for v in views]
        out = mean_over_pairs(
            lambda i, j: vicreg_loss(z[i], z[j], lambda_=self.lambda_, mu=self.mu, nu=self.nu),
            view_pairs(len(z)),
        )
        logs = {k: v.detach() for k, v in out.items() if k != "loss"}
        return {"loss": out["loss"], **logs, **self.collapse_logs(z[0])}
