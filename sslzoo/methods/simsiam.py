"""SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021).

One encoder f (backbone + projector) and a predictor h; the loss ½D(p1, sg(z2)) + ½D(p2, sg(z1)) with
D the negative cosine similarity. More than two views: the mean over all unordered view pairs.

Heads (paper Sec. 4 and appendix): ImageNet projector 3 layers of 2048 with BN on every layer (the
output BN without affine parameters, as in the official code), predictor 2048→512→2048 (BN+ReLU on
the hidden layer). CIFAR (paper Sec. D / Fig. 3 setting, used for ``*_cifar`` archs): a 2-layer
projector of width 2048, the same predictor.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sslzoo.losses import negative_cosine_similarity
from sslzoo.methods import register_method
from sslzoo.methods.base import SSLMethod, is_small_image_arch, mean_over_pairs, view_pairs
from sslzoo.methods.heads import build_mlp, mlp_dims

__all__ = ["SimSiam"]


@register_method("simsiam")
class SimSiam(SSLMethod):
    """SimSiam around a timm encoder.

    Args:
        backbone: timm encoder or arch name.
        proj_hidden_dim, proj_dim, proj_layers: projector widths and depth (output BN, no affine).
        pred_hidden_dim: predictor bottleneck width (predictor maps proj_dim → pred_hidden_dim → proj_dim).
        sync_batchnorm: see :class:`SSLMethod`.
    """

    def __init__(
        self,
        backbone: nn.Module | str,
        *,
        proj_hidden_dim: int = 2048,
        proj_dim: int = 2048,
        proj_layers: int = 3,
        pred_hidden_dim: int = 512,
        sync_batchnorm: bool | None = None,
    ) -> None:
        super().__init__(backbone, sync_batchnorm=sync_batchnorm)
        self.projector = build_mlp(
            mlp_dims(self.num_features, proj_hidden_dim, proj_dim, proj_layers),
            last_norm=True,
            last_affine=False,
        )
        self.predictor = build_mlp([proj_dim, pred_hidden_dim, proj_dim])

    @classmethod
    def defaults(cls, arch: str, **selectors: Any) -> dict[str, Any]:
        layers = 2 if is_small_image_arch(arch) else 3
        return {
            "views": "simclr",
            "proj_hidden_dim": 2048,
            "proj_dim": 2048,
            "proj_layers": layers,
            "pred_hidden_dim": 512,
        }

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        views = self.check_views(views)
        zs = [self.projector(self.backbone(v)) for v in views]
        ps = [self.predictor(z) for z in zs]

        def pair(i: int, j: int) -> dict[str, torch.Tensor]:
            return {
                "loss": 0.5
                * (negative_cosine_similarity(ps[i], zs[j]) + negative_cosine_similarity(ps[j], zs[i]))
            }

        out = mean_over_pairs(pair, view_pairs(len(views)))
        return {**out, **self.collapse_logs(zs[0])}
