"""MoCo v3 (Chen, Xie and He, ICCV 2021, https://arxiv.org/abs/2104.02057)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sslzoo.losses.mocov3 import mocov3_loss
from sslzoo.methods import register_method
from sslzoo.methods.base import SSLMethod, is_small_image_arch
from sslzoo.methods.heads import build_mlp, mlp_dims
from sslzoo.methods.momentum import cosine_schedule, ema_update_, momentum_copy

__all__ = ["MoCoV3"]


def _is_vit(arch: str) -> bool:
    return arch.startswith(("vit", "deit"))


@register_method("mocov3")
class MoCoV3(SSLMethod):
    """MoCo v3: online encoder + projector + predictor against a momentum encoder + projector.

    The loss is ``ctr(q1, k2) + ctr(q2, k1)`` (:func:`sslzoo.losses.mocov3_loss`) with the keys of the
    global batch as negatives. The momentum m follows a half-cosine from ``base_momentum`` to 1 over training
    (the paper's schedule); the target is updated after every optimiser step (``on_step_end``).

    For ViTs the paper freezes the random patch projection (Sec. 4.2, "a trick for improving stability");
    ``freeze_patch_embed`` does that for timm ViTs.

    Args:
        backbone: timm encoder or arch name.
        proj_hidden_dim / proj_dim / proj_layers: projector (4096 / 256 / 3 layers; BN on every layer, the
            output BN without affine).
        pred_hidden_dim: hidden width of the 2-layer predictor (4096).
        temperature: τ (1.0 for ResNet-50, 0.2 for ViT).
        base_momentum: m₀ (0.99 for ResNet-50 at batch 4096 and for ViT).
        final_momentum: m at the end of training (1.0).
        freeze_patch_embed: stop gradients into a ViT's patch projection.
        sync_batchnorm: see :class:`SSLMethod`.
    """

    def __init__(
        self,
        backbone: nn.Module | str,
        *,
        proj_hidden_dim: int = 4096,
        proj_dim: int = 256,
        proj_layers: int = 3,
        pred_hidden_dim: int = 4096,
        temperature: float = 1.0,
        base_momentum: float = 0.99,
        final_momentum: float = 1.0,
        freeze_patch_embed: bool = False,
        sync_batchnorm: bool | None = None,
    ) -> None:
        super().__init__(backbone, sync_batchnorm=sync_batchnorm)
        self.projector = build_mlp(
            mlp_dims(self.num_features, proj_hidden_dim, proj_dim, proj_layers),
            last_norm=True,
            last_affine=False,
        )
        self.predictor = build_mlp([proj_dim, pred_hidden_dim, proj_dim], last_norm=True, last_affine=False)
        if freeze_patch_embed:
            patch_embed = getattr(self.backbone, "patch_embed", None)
            if patch_embed is None:
                raise ValueError("freeze_patch_embed=True needs a ViT backbone with a `patch_embed` module")
            for p in patch_embed.parameters():
                p.requires_grad_(False)
        self.momentum_backbone = momentum_copy(self.backbone)
        self.momentum_projector = momentum_copy(self.projector)
        self.temperature = float(temperature)
        self.base_momentum = float(base_momentum)
        self.final_momentum = float(final_momentum)
        self.momentum = self.base_momentum

    @classmethod
    def defaults(cls, arch: str) -> dict[str, Any]:
        """ResNet-50 (paper, Sec. 4 and the authors' code): 3-layer 4096/256 projector, 2-layer 4096
        predictor, τ = 1.0, m = 0.99 cosine to 1, BYOL augmentations. ViT: τ = 0.2 and a frozen patch
        projection. ``*_cifar``: τ = 0.2 and m = 0.99 (solo-learn's CIFAR recipe), 2048-wide heads."""
        hp: dict[str, Any] = {
            "views": "byol",
            "proj_hidden_dim": 4096,
            "proj_dim": 256,
            "proj_layers": 3,
            "pred_hidden_dim": 4096,
            "temperature": 1.0,
            "base_momentum": 0.99,
            "final_momentum": 1.0,
            "freeze_patch_embed": False,
        }
        if _is_vit(arch):
            hp.update(temperature=0.2, freeze_patch_embed=True)
        elif is_small_image_arch(arch):
            hp.update(proj_hidden_dim=2048, pred_hidden_dim=2048, proj_layers=2, temperature=0.2)
        return hp

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        views = self.check_views(views)
        if len(views) != 2:
            raise ValueError(f"MoCo v3 takes exactly 2 views, got {len(views)}")
        z = [self.projector(self.backbone(v)) for v in views]
        q = [self.predictor(zi) for zi in z]
        with torch.no_grad():
            k = [self.momentum_projector(self.momentum_backbone(v)) for v in views]
        loss = mocov3_loss(q[0], q[1], k[0], k[1], temperature=self.temperature)
        logs = {"momentum": torch.tensor(self.momentum, dtype=torch.float32), **self.collapse_logs(z[0])}
        return {"loss": loss, **logs}

    @torch.no_grad()
    def on_step_end(self, epoch: float, max_epochs: float) -> None:
        ema_update_(self.momentum_backbone, self.backbone, self.momentum)
        ema_update_(self.momentum_projector, self.projector, self.momentum)
        self.set_progress(epoch, max_epochs)

    def set_progress(self, epoch: float, max_epochs: float) -> None:
        self.momentum = cosine_schedule(epoch / max_epochs, self.base_momentum, self.final_momentum)
