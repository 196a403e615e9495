"""DINO (Caron et al., ICCV 2021, https://arxiv.org/abs/2104.14294): self-distillation with no labels."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sslzoo.losses.dino import dino_loss, dino_update_center
from sslzoo.methods import register_method
from sslzoo.methods.base import SSLMethod, is_small_image_arch
from sslzoo.methods.heads import build_mlp, mlp_dims
from sslzoo.methods.momentum import cosine_schedule, ema_update_, linear_ramp, momentum_copy
from sslzoo.methods.multicrop import encode_views, num_global_views

__all__ = ["DINO", "DINOHead"]


class _WeightNormLinear(nn.Module):
    """Bias-free Linear with weight normalisation ``W = g · V / ‖V‖`` per output row (Salimans & Kingma 2016).

    ``freeze_norm`` fixes g = 1 (DINO's ``norm_last_layer``); ``frozen`` stops the gradient into V and g
    while keeping a zero gradient (so DDP's reduction stays the same every step).
    """

    def __init__(self, in_dim: int, out_dim: int, *, freeze_norm: bool) -> None:
        super().__init__()
        self.weight_v = nn.Parameter(torch.empty(out_dim, in_dim))
        nn.init.trunc_normal_(self.weight_v, std=0.02)
        self.weight_g = nn.Parameter(torch.ones(out_dim, 1), requires_grad=not freeze_norm)
        self.frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v, g = self.weight_v, self.weight_g
        if self.frozen:
            v = v.detach() + 0.0 * v
            g = g.detach() + 0.0 * g if g.requires_grad else g
        return F.linear(x, g * F.normalize(v, dim=1))


class DINOHead(nn.Module):
    """DINO's projection head: MLP to a bottleneck, L2 normalisation, weight-normalised Linear to K outputs.

    Args:
        in_dim: backbone feature size.
        out_dim: K (65536).
        hidden_dim: 2048. bottleneck_dim: 256. num_layers: 3 Linear layers before the bottleneck.
        use_bn: BatchNorm in the MLP (the authors' choice for ResNet-50; none for ViT).
        norm_last_layer: fix the weight norm of the last layer to 1 (stabilises ViT-S training).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 65536,
        *,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        num_layers: int = 3,
        use_bn: bool = False,
        norm_last_layer: bool = True,
    ) -> None:
        super().__init__()
        self.mlp = build_mlp(
            mlp_dims(in_dim, hidden_dim, bottleneck_dim, num_layers),
            norm="bn" if use_bn else None,
            act=nn.GELU,
        )
        for m in self.mlp.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.last_layer = _WeightNormLinear(bottleneck_dim, out_dim, freeze_norm=norm_last_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last_layer(self.bottleneck(x))

    def bottleneck(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(x), dim=-1)


@register_method("dino")
class DINO(SSLMethod):
    """DINO: a student matches a momentum teacher's centred, sharpened output over multi-crop views.

    - Teacher = EMA of student backbone and head; momentum from ``base_momentum`` to ``final_momentum`` by a half-cosine.
    - The teacher sees the global crops only (the leading views of the largest size), the student all.
    - Centre c: EMA (``center_momentum``) of the teacher's mean output over the **global** batch, updated
      after each training forward; it starts at 0, identical on every process.
    - Teacher temperature: linear warm-up from ``warmup_teacher_temp`` to ``teacher_temp`` over
      ``warmup_teacher_temp_epochs`` epochs, then constant.
    - The last head layer gets no update during the first ``freeze_last_layer_epochs`` epochs.

    A ViT arch name builds the encoder with ``dynamic_img_size=True`` so local crops of another size pass.

    Args:
        backbone: timm encoder or arch name.
        out_dim / hidden_dim / bottleneck_dim / head_layers / use_bn_in_head / norm_last_layer: see
            :class:`DINOHead`.
        student_temp: τ_s (0.1).
        teacher_temp: τ_t after warm-up (0.04; 0.07 for ViT-S/16 with long training).
        warmup_teacher_temp: τ_t at epoch 0 (0.04).
        warmup_teacher_temp_epochs: warm-up length (0 or 30).
        base_momentum: teacher momentum at the start (0.996). final_momentum: at the end (1.0).
        center_momentum: m of the centre EMA (0.9).
        freeze_last_layer_epochs: epochs without last-layer update (1).
        sync_batchnorm: see :class:`SSLMethod`.
    """

    def __init__(
        self,
        backbone: nn.Module | str,
        *,
        out_dim: int = 65536,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        head_layers: int = 3,
        use_bn_in_head: bool = False,
        norm_last_layer: bool = True,
        student_temp: float = 0.1,
        teacher_temp: float = 0.04,
        warmup_teacher_temp: float = 0.04,
        warmup_teacher_temp_epochs: float = 0.0,
        base_momentum: float = 0.996,
        final_momentum: float = 1.0,
        center_momentum: float = 0.9,
        freeze_last_layer_epochs: float = 1.0,
        sync_batchnorm: bool | None = None,
    ) -> None:
        if isinstance(backbone, str) and backbone.startswith("vit"):
            from sslzoo.backbones import create_backbone

            backbone = create_backbone(backbone, dynamic_img_size=True)
        super().__init__(backbone, sync_batchnorm=sync_batchnorm)
        self.head = DINOHead(
            self.num_features,
            out_dim,
            hidden_dim=hidden_dim,
            bottleneck_dim=bottleneck_dim,
            num_layers=head_layers,
            use_bn=use_bn_in_head,
            norm_last_layer=norm_last_layer,
        )
        self.teacher_backbone = momentum_copy(self.backbone)
        self.teacher_head = momentum_copy(self.head)
        self.register_buffer("center", torch.zeros(1, out_dim))
        self.student_temp = float(student_temp)
        self.final_teacher_temp = float(teacher_temp)
        self.warmup_teacher_temp = float(warmup_teacher_temp)
        self.warmup_teacher_temp_epochs = float(warmup_teacher_temp_epochs)
        self.base_momentum = float(base_momentum)
        self.final_momentum = float(final_momentum)
        self.center_momentum = float(center_momentum)
        self.freeze_last_layer_epochs = float(freeze_last_layer_epochs)
        self.momentum = self.base_momentum
        self.teacher_temp = self._teacher_temp_at(0.0)
        self.head.last_layer.frozen = self.freeze_last_layer_epochs > 0

    @classmethod
    def defaults(cls, arch: str) -> dict[str, Any]:
        """ViT-S/16 (the authors' released ViT-S/16 run): K = 65536, no BN in the head, un-normalised last
        layer, τ_t 0.04 → 0.07 over 30 epochs, m = 0.996, 2×224 + 10×96 crops. ResNet-50 (authors' code,
        ``main_dino.py`` defaults with ``use_bn_in_head``): K = 65536, τ_t = 0.04, 2×224 + 8×96 crops.
        ``*_cifar`` (solo-learn's CIFAR recipe): K = 4096, BN head, un-normalised last layer,
        τ_t 0.04 → 0.07 over 50 epochs.

        The "multicrop" view recipe makes 2 + 6 crops by default (SwAV's); DINO's 10 (ViT) or 8 (ResNet)
        local crops are a data setting: ``data.view_params.n_local`` in a recipe config."""
        hp: dict[str, Any] = {
            "views": "multicrop",
            "out_dim": 65536,
            "hidden_dim": 2048,
            "bottleneck_dim": 256,
            "head_layers": 3,
            "use_bn_in_head": True,
            "norm_last_layer": True,
            "student_temp": 0.1,
            "teacher_temp": 0.04,
            "warmup_teacher_temp": 0.04,
            "warmup_teacher_temp_epochs": 0.0,
            "base_momentum": 0.996,
            "final_momentum": 1.0,
            "center_momentum": 0.9,
            "freeze_last_layer_epochs": 1.0,
        }
        if arch.startswith("vit"):
            hp.update(
                use_bn_in_head=False,
                norm_last_layer=False,
                teacher_temp=0.07,
                warmup_teacher_temp_epochs=30.0,
            )
        elif is_small_image_arch(arch):
            hp.update(out_dim=4096, norm_last_layer=False, teacher_temp=0.07, warmup_teacher_temp_epochs=50.0)
        return hp

    def _teacher_temp_at(self, epoch: float) -> float:
        ramp = linear_ramp(epoch, 0.0, self.warmup_teacher_temp_epochs)
        return self.warmup_teacher_temp + ramp * (self.final_teacher_temp - self.warmup_teacher_temp)

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        views = self.check_views(views)
        n_global = num_global_views(views)
        feats = encode_views(self.backbone, views)
        embeddings = [self.head.bottleneck(f) for f in feats]
        student = [self.head.last_layer(e) for e in embeddings]
        with torch.no_grad():
            teacher = encode_views(lambda x: self.teacher_head(self.teacher_backbone(x)), views[:n_global])
        loss = dino_loss(
            student, teacher, self.center, tau_student=self.student_temp, tau_teacher=self.teacher_temp
        )
        if self.training:
            self.center.copy_(dino_update_center(self.center, teacher, momentum=self.center_momentum))
        logs = {
            "teacher_temp": torch.tensor(self.teacher_temp, dtype=torch.float32),
            "momentum": torch.tensor(self.momentum, dtype=torch.float32),
            "last_layer_frozen": torch.tensor(float(self.head.last_layer.frozen)),
            **self.collapse_logs(embeddings[0]),
        }
        return {"loss": loss, **logs}

    @torch.no_grad()
    def on_step_end(self, epoch: float, max_epochs: float) -> None:
        ema_update_(self.teacher_backbone, self.backbone, self.momentum)
        ema_update_(self.teacher_head, self.head, self.momentum)
        self.set_progress(epoch, max_epochs)

    def set_progress(self, epoch: float, max_epochs: float) -> None:
        self.momentum = cosine_schedule(epoch / max_epochs, self.base_momentum, self.final_momentum)
        self.teacher_temp = self._teacher_temp_at(epoch)
        self.head.last_layer.frozen = epoch < self.freeze_last_layer_epochs
