"""SimCLR (Chen et al., ICML 2020, https://arxiv.org/abs/2002.05709): a projector and NT-Xent."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sslzoo.losses.simclr import nt_xent_loss
from sslzoo.methods import register_method
from sslzoo.methods.base import SSLMethod, is_small_image_arch, mean_over_pairs, view_pairs
from sslzoo.methods.heads import build_mlp, mlp_dims

__all__ = ["SimCLR"]


@register_method("simclr")
class SimCLR(SSLMethod):
    """SimCLR: both views through one encoder and an MLP projector, contrasted with NT-Xent.

    All views are encoded in one batch, so BatchNorm statistics span both views, as in the authors'
    TensorFlow code (and over all processes when distributed: the paper's "global BN", Appendix B.3).
    With more than two views the loss is averaged over all view pairs.

    Args:
        backbone: timm encoder or arch name.
        proj_hidden_dim: hidden width of the projector (2048).
        proj_dim: output width (128).
        proj_layers: number of Linear layers of the projector (2 in SimCLR v1, 3 in v2).
        temperature: τ of NT-Xent (0.1 at batch 4096).
        sync_batchnorm: see :class:`SSLMethod`.
    """

    def __init__(
        self,
        backbone: nn.Module | str,
        *,
        proj_hidden_dim: int = 2048,
        proj_dim: int = 128,
        proj_layers: int = 2,
        temperature: float = 0.1,
        sync_batchnorm: bool | None = None,
    ) -> None:
        super().__init__(backbone, sync_batchnorm=sync_batchnorm)
        self.projector = build_mlp(mlp_dims(self.num_features, proj_hidden_dim, proj_dim, proj_layers))
        self.temperature = float(temperature)

    @classmethod
    def defaults(cls, arch: str) -> dict[str, Any]:
        """ImageNet (paper, Sec. 2.3 and B.1): 2-layer 2048→128 projector, τ = 0.1 with LARS at batch 4096.
        ``*_cifar``: τ = 0.2 as in solo-learn's CIFAR recipe (smaller batches favour a higher τ, paper
        Table 5 / B.9), same projector."""
        hp: dict[str, Any] = {"views": "simclr", "proj_hidden_dim": 2048, "proj_dim": 128, "proj_layers": 2}
        hp["temperature"] = 0.2 if is_small_image_arch(arch) else 0.1
        return hp

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        views = self.check_views(views)
        z = self.projector(self.backbone(torch.cat(views))).chunk(len(views))
        out = mean_over_pairs(
            lambda i, j: {"loss": nt_xent_loss(z[i], z[j], temperature=self.temperature)},
            view_pairs(len(views)),
        )
        return {**out, **self.collapse_logs(z[0])}
