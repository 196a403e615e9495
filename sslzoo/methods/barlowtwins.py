"""Barlow Twins (Zbontar et al., ICML 2021, https://arxiv.org/abs/2103.03230)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sslzoo.losses.barlowtwins import barlow_twins_loss
from sslzoo.methods import register_method
from sslzoo.methods.base import SSLMethod, is_small_image_arch, mean_over_pairs, view_pairs
from sslzoo.methods.heads import build_mlp, mlp_dims

__all__ = ["BarlowTwins"]


@register_method("barlowtwins")
class BarlowTwins(SSLMethod):
    """Barlow Twins: push the cross-correlation of two views' projections to the identity.

    The cross-correlation, and the standardisation before it, are over the global batch (exact for any
    world size, see :func:`sslzoo.losses.barlow_twins_loss`). Each view goes through the encoder on its
    own, as in the authors' code. Logs the invariance and (unweighted) redundancy terms.

    Args:
        backbone: timm encoder or arch name.
        proj_hidden_dim / proj_dim / proj_layers: projector (8192 / 8192 / 3 layers, BN + ReLU).
        lambda_: λ (0.0051).
        sync_batchnorm: see :class:`SSLMethod`.
    """

    def __init__(
        self,
        backbone: nn.Module | str,
        *,
        proj_hidden_dim: int = 8192,
        proj_dim: int = 8192,
        proj_layers: int = 3,
        lambda_: float = 0.0051,
        sync_batchnorm: bool | None = None,
    ) -> None:
        super().__init__(backbone, sync_batchnorm=sync_batchnorm)
        self.projector = build_mlp(mlp_dims(self.num_features, proj_hidden_dim, proj_dim, proj_layers))
        self.lambda_ = float(lambda_)

    @classmethod
    def defaults(cls, arch: str) -> dict[str, Any]:
        """ImageNet, ResNet-50 (paper, Sec. 4): 8192-8192-8192 projector, λ = 0.0051, BYOL augmentations.
        ``*_cifar`` (solo-learn's CIFAR recipe): 2048-2048-2048 projector, same λ."""
        hp: dict[str, Any] = {"views": "byol", "proj_hidden_dim": 8192, "proj_dim": 8192, "proj_layers": 3}
        hp["lambda_"] = 0.0051
        if is_small_image_arch(arch):
            hp.update(proj_hidden_dim=2048, proj_dim=2048)
        return hp

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        views = self.check_views(views)
        z = [self.projector(self.backbone(v)) for v in views]
        out = mean_over_pairs(
            lambda i, j: barlow_twins_loss(z[i], z[j], lambda_=self.lambda_), view_pairs(len(z))
        )
        logs = {k: v.detach() for k, v in out.items() if k != "loss"}
        return {"loss": out["loss"], **logs, **self.collapse_logs(z[0])}
