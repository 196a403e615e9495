"""BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020).

Online network (backbone, projector, predictor) regresses the momentum target's projection of the other
view: L = ‖p̂1 − ẑ'2‖² + ‖p̂2 − ẑ'1‖² (paper Eq. 2, symmetrised). The target is an EMA of the online
backbone and projector, with momentum τ rising from ``base_momentum`` to 1 on a cosine schedule.
More than two views: the mean over all unordered view pairs.

Heads (paper Sec. 3.3): projector and predictor are Linear(4096) → BN → ReLU → Linear(256);
τ_base = 0.996 for ImageNet. ``*_cifar`` archs keep the widths and use τ_base = 0.99, the usual value for
short small-data schedules (solo-learn's CIFAR recipe).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sslzoo.losses import byol_loss
from sslzoo.methods import register_method
from sslzoo.methods.base import SSLMethod, is_small_image_arch, mean_over_pairs, view_pairs
from sslzoo.methods.heads import build_mlp
from sslzoo.methods.momentum import cosine_schedule, ema_update_, momentum_copy

__all__ = ["BYOL"]


@register_method("byol")
class BYOL(SSLMethod):
    """BYOL around a timm encoder.

    Args:
        backbone: timm encoder or arch name.
        proj_hidden_dim, proj_dim: projector widths (predictor: proj_dim → pred_hidden_dim → proj_dim).
        pred_hidden_dim: predictor hidden width.
        base_momentum, final_momentum: τ at the start and end of training (cosine schedule).
        sync_batchnorm: see :class:`SSLMethod`.
    """

    def __init__(
        self,
        backbone: nn.Module | str,
        *,
        proj_hidden_dim: int = 4096,
        proj_dim: int = 256,
        pred_hidden_dim: int = 4096,
        base_momentum: float = 0.996,
        final_momentum: float = 1.0,
        sync_batchnorm: bool | None = None,
    ) -> None:
        super().__init__(backbone, sync_batchnorm=sync_batchnorm)
        self.projector = build_mlp([self.num_features, proj_hidden_dim, proj_dim])
        self.predictor = build_mlp([proj_dim, pred_hidden_dim, proj_dim])
        self.momentum_backbone = momentum_copy(self.backbone)
        self.momentum_projector = momentum_copy(self.projector)
        self.base_momentum = base_momentum
        self.final_momentum = final_momentum
        self.momentum = base_momentum

    @classmethod
    def defaults(cls, arch: str, **selectors: Any) -> dict[str, Any]:
        return {
            "views": "byol",
            "proj_hidden_dim": 4096,
            "proj_dim": 256,
            "pred_hidden_dim": 4096,
            "base_momentum": 0.99 if is_small_image_arch(arch) else 0.996,
            "final_momentum": 1.0,
        }

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        views = self.check_views(views)
        zs = [self.projector(self.backbone(v)) for v in views]
        ps = [self.predictor(z) for z in zs]
        with torch.no_grad():
            targets = [self.momentum_projector(self.momentum_backbone(v)) for v in views]

        def pair(i: int, j: int) -> dict[str, torch.Tensor]:
            return {"loss": byol_loss(ps[i], targets[j]) + byol_loss(ps[j], targets[i])}

        out = mean_over_pairs(pair, view_pairs(len(views)))
        momentum = torch.tensor(self.momentum, dtype=torch.float32)
        return {**out, "momentum": momentum, **self.collapse_logs(zs[0])}

    def on_step_end(self, epoch: float, max_epochs: float) -> None:
        ema_update_(self.momentum_backbone, self.backbone, self.momentum)
        ema_update_(self.momentum_projector, self.projector, self.momentum)
        self.set_progress(epoch, max_epochs)

    def set_progress(self, epoch: float, max_epochs: float) -> None:
        self.momentum = cosine_schedule(epoch / max_epochs, self.base_momentum, self.final_momentum)
