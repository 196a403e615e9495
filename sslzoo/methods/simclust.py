"""SimClust (Ge et al., "Learning the Relation between Similarity Loss and Clustering Loss in
Self-Supervised Learning", IEEE TIP 2023, arXiv 2301.03041).

A SimSiam or BYOL network trained with :func:`sslzoo.losses.simclust_loss`: the similarity loss alone
first, then handed over to the clustering terms (feature-dimension cross-entropy + uniformity) by
ramping ``scale`` linearly from 0 to 1 between ``ramp_epochs[0]`` and ``ramp_epochs[1]``.

Variants and the paper's recipes (``method_defaults``):

- ``variant="momentum"`` (ImageNet, ResNet-50; default for full-size archs other than ResNet-18): BYOL
  target, momentum 0.99 → 1.0 (cosine), projector 2048→4096→4096→512 (BN+ReLU), predictor
  512→4096→512, τ_s 0.1, τ_t 0.07, uniformity weight 5.0, ramp 150→180 epochs.
- ``variant="simsiam"`` (Imagenette, ResNet-18; default for resnet18 and ``*_cifar`` archs): shared
  encoder with stop-gradient, 3-layer 512-d projector (SimSiam layout, output BN), predictor
  512→512→512, adaptive temperature, PCA of the targets, uniformity weight 1.0, ramp 500→600.
  ``*_cifar`` archs use these 512-d heads for either variant (documented small-data default).

PCA of the targets (``pca=True``): before the clustering terms, predictions and targets are expressed
in the principal axes of the global batch of targets (all views, all processes, no gradient): with U
the eigenvectors of the targets' covariance, p ← pU and z ← zU. U is orthogonal, so the similarity term
is unchanged, while the "clusters" of the clustering terms become the decorrelated principal directions
of the target distribution instead of arbitrary coordinates. Eigenvector signs are fixed (largest
entry positive) so the basis is deterministic. Use more target rows (2·global batch) than dimensions,
or the null-space axes are arbitrary.

More than two views: :func:`simclust_loss` averaged over all unordered view pairs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sslzoo import distributed as sdist
from sslzoo.losses import simclust_loss
from sslzoo.methods import register_method
from sslzoo.methods.base import SSLMethod, is_small_image_arch, mean_over_pairs, view_pairs
from sslzoo.methods.heads import build_mlp, mlp_dims
from sslzoo.methods.momentum import cosine_schedule, ema_update_, linear_ramp, momentum_copy

__all__ = ["SimClust", "pca_basis"]

_RECIPES: dict[str, dict[str, Any]] = {
    "momentum": {
        "proj_hidden_dim": 4096,
        "proj_dim": 512,
        "proj_layers": 3,
        "proj_last_bn": False,
        "pred_hidden_dim": 4096,
        "tau_student": 0.1,
        "tau_teacher": 0.07,
        "uniformity_weight": 5.0,
        "adaptive_temperature": False,
        "pca": False,
        "ramp_epochs": (150.0, 180.0),
        "base_momentum": 0.99,
        "final_momentum": 1.0,
    },
    "simsiam": {
        "proj_hidden_dim": 512,
        "proj_dim": 512,
        "proj_layers": 3,
        "proj_last_bn": True,
        "pred_hidden_dim": 512,
        "tau_student": 0.1,
        "tau_teacher": 0.07,
        "uniformity_weight": 1.0,
        "adaptive_temperature": True,
        "pca": True,
        "ramp_epochs": (500.0, 600.0),
    },
}


@torch.no_grad()
def pca_basis(z: torch.Tensor) -> torch.Tensor:
    """Principal axes (K, K), columns by decreasing variance, of the targets ``z`` (rows) of all processes."""
    z = sdist.gather_no_grad(z.detach()).double()
    centred = z - z.mean(0, keepdim=True)
    cov = centred.T @ centred / max(z.shape[0] - 1, 1)
    _, vecs = torch.linalg.eigh(cov)
    vecs = vecs.flip(1)
    signs = torch.sign(vecs.gather(0, vecs.abs().argmax(0, keepdim=True)))
    return vecs * signs


@register_method("simclust")
class SimClust(SSLMethod):
    """SimClust around a timm encoder.

    Args:
        backbone: timm encoder or arch name.
        variant: "simsiam" (stop-gradient, shared encoder) or "momentum" (BYOL target).
        proj_hidden_dim, proj_dim, proj_layers, proj_last_bn: projector; proj_dim is K, the number of
            feature dimensions the clustering terms distribute over.
        pred_hidden_dim: predictor hidden width (proj_dim → pred_hidden_dim → proj_dim).
        tau_student, tau_teacher, uniformity_weight, adaptive_temperature: see ``simclust_loss``.
        pca: express predictions and targets in the targets' principal axes for the loss (see module doc).
        ramp_epochs: (start, end) epochs of the linear 0 → 1 ramp of ``scale``; (0, 0) is clustering only.
        base_momentum, final_momentum: target momentum schedule (momentum variant only).
        sync_batchnorm: see :class:`SSLMethod`.
    """

    def __init__(
        self,
        backbone: nn.Module | str,
        *,
        variant: str = "simsiam",
        proj_hidden_dim: int = 512,
        proj_dim: int = 512,
        proj_layers: int = 3,
        proj_last_bn: bool = True,
        pred_hidden_dim: int = 512,
        tau_student: float = 0.1,
        tau_teacher: float = 0.07,
        uniformity_weight: float = 1.0,
        adaptive_temperature: bool = False,
        pca: bool = False,
        ramp_epochs: tuple[float, float] = (500.0, 600.0),
        base_momentum: float = 0.99,
        final_momentum: float = 1.0,
        sync_batchnorm: bool | None = None,
    ) -> None:
        super().__init__(backbone, sync_batchnorm=sync_batchnorm)
        if variant not in ("simsiam", "momentum"):
            raise ValueError(f"SimClust variant must be 'simsiam' or 'momentum', got {variant!r}")
        ramp_epochs = tuple(float(e) for e in ramp_epochs)
        if len(ramp_epochs) != 2 or ramp_epochs[1] < ramp_epochs[0]:
            raise ValueError(f"ramp_epochs must be (start, end) with start <= end, got {ramp_epochs}")
        self.variant = variant
        self.projector = build_mlp(
            mlp_dims(self.num_features, proj_hidden_dim, proj_dim, proj_layers),
            last_norm=proj_last_bn,
            last_affine=False,
        )
        self.predictor = build_mlp([proj_dim, pred_hidden_dim, proj_dim])
        if variant == "momentum":
            self.momentum_backbone = momentum_copy(self.backbone)
            self.momentum_projector = momentum_copy(self.projector)
        self.loss_kwargs = dict(
            variant=variant,
            tau_student=tau_student,
            tau_teacher=tau_teacher,
            uniformity_weight=uniformity_weight,
            adaptive_temperature=adaptive_temperature,
        )
        self.pca = pca
        self.ramp_epochs = ramp_epochs
        self.base_momentum = base_momentum
        self.final_momentum = final_momentum
        self.momentum = base_momentum
        self.scale = linear_ramp(0.0, *ramp_epochs)

    @classmethod
    def defaults(cls, arch: str, **selectors: Any) -> dict[str, Any]:
        small = is_small_image_arch(arch)
        variant = selectors.get("variant") or (
            "simsiam" if small or arch.startswith("resnet18") else "momentum"
        )
        if variant not in _RECIPES:
            raise ValueError(f"SimClust variant must be 'simsiam' or 'momentum', got {variant!r}")
        hp = dict(_RECIPES[variant])
        if small:
            hp.update(proj_hidden_dim=512, proj_dim=512, pred_hidden_dim=512)
        return {"views": "simclust", "variant": variant, **hp}

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        views = self.check_views(views)
        zs = [self.projector(self.backbone(v)) for v in views]
        ps = [self.predictor(z) for z in zs]
        if self.variant == "momentum":
            with torch.no_grad():
                targets = [self.momentum_projector(self.momentum_backbone(v)) for v in views]
        else:
            targets = [z.detach() for z in zs]
        if self.pca:
            basis = pca_basis(torch.cat(targets)).to(ps[0].dtype)
            ps = [p @ basis for p in ps]
            targets = [t @ basis for t in targets]

        def pair(i: int, j: int) -> dict[str, torch.Tensor]:
            return simclust_loss(ps[i], ps[j], targets[i], targets[j], scale=self.scale, **self.loss_kwargs)

        out = mean_over_pairs(pair, view_pairs(len(views)))
        logs = {"scale": torch.tensor(self.scale, dtype=torch.float32)}
        if self.variant == "momentum":
            logs["momentum"] = torch.tensor(self.momentum, dtype=torch.float32)
        return {**out, **logs, **self.collapse_logs(zs[0])}

    def on_step_end(self, epoch: float, max_epochs: float) -> None:
        if self.variant == "momentum":
            ema_update_(self.momentum_backbone, self.backbone, self.momentum)
            ema_update_(self.momentum_projector, self.projector, self.momentum)
        self.set_progress(epoch, max_epochs)

    def set_progress(self, epoch: float, max_epochs: float) -> None:
        self.scale = linear_ramp(epoch, *self.ramp_epochs)
        self.momentum = cosine_schedule(epoch / max_epochs, self.base_momentum, self.final_momentum)
