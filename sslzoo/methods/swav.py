"""SwAV (Caron et al., NeurIPS 2020, https://arxiv.org/abs/2006.09882)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sslzoo import distributed as sdist
from sslzoo.losses.swav import swav_loss
from sslzoo.methods import register_method
from sslzoo.methods.base import SSLMethod, is_small_image_arch
from sslzoo.methods.heads import build_mlp, mlp_dims
from sslzoo.methods.multicrop import encode_views, num_global_views

__all__ = ["SwAV"]


@register_method("swav")
class SwAV(SSLMethod):
    """SwAV: online clustering onto learnable prototypes with swapped prediction, multi-crop.

    - Projections are L2-normalised and scored against the prototypes C (a bias-free Linear whose rows
      are re-normalised to unit length before every training forward, as in the authors' code).
    - Codes come from Sinkhorn-Knopp over the **global** batch of each global crop; every other crop
      predicts them (:func:`sslzoo.losses.swav_loss`).
    - The prototypes get no update during the first ``freeze_prototypes_iters`` optimiser steps (the paper
      freezes them for the first epoch to help the start of training).
    - Optional queue (small batches, paper Sec. 4 / App. A): from ``queue_start_epoch`` on, the global-crop
      projections of past batches are kept (``queue_length`` rows in total over all processes) and, once
      full, added to the Sinkhorn problem with the current prototypes.

    Views: the global crops first (all of one size), then the local crops (smaller).

    Args:
        backbone: timm encoder or arch name.
        proj_hidden_dim / proj_dim / proj_layers: projector (2048 / 128 / 2 layers).
        num_prototypes: K (3000).
        temperature: τ (0.1).
        epsilon: ε of Sinkhorn-Knopp (0.05).
        sinkhorn_iterations: 3.
        freeze_prototypes_iters: optimiser steps without prototype update (313 = one epoch at batch 4096).
        queue_length: total queue rows over all processes (0: no queue; 3840 at batch 256).
        queue_start_epoch: epoch from which the queue is filled (15 at batch 256).
        sync_batchnorm: see :class:`SSLMethod`.
    """

    def __init__(
        self,
        backbone: nn.Module | str,
        *,
        proj_hidden_dim: int = 2048,
        proj_dim: int = 128,
        proj_layers: int = 2,
        num_prototypes: int = 3000,
        temperature: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        freeze_prototypes_iters: int = 313,
        queue_length: int = 0,
        queue_start_epoch: float = 15.0,
        sync_batchnorm: bool | None = None,
    ) -> None:
        super().__init__(backbone, sync_batchnorm=sync_batchnorm)
        self.projector = build_mlp(mlp_dims(self.num_features, proj_hidden_dim, proj_dim, proj_layers))
        self.prototypes = nn.Linear(proj_dim, num_prototypes, bias=False)
        self.temperature = float(temperature)
        self.epsilon = float(epsilon)
        self.sinkhorn_iterations = int(sinkhorn_iterations)
        self.freeze_prototypes_iters = int(freeze_prototypes_iters)
        self.queue_start_epoch = float(queue_start_epoch)
        world = sdist.world_size()
        if queue_length % world:
            raise ValueError(f"queue_length ({queue_length}) must be a multiple of the world size ({world})")
        # Each process queues its own rows and Sinkhorn runs over the union, i.e. the global queue. The
        # queue is a plain attribute, not a buffer: DDP would overwrite buffers with rank 0's copy, and it
        # is refilled after a resume as in the authors' code when its file is missing.
        self.queue_capacity = queue_length // world
        self._queue: torch.Tensor | None = None  # (n_global, queue_capacity, proj_dim), newest first
        self._queue_filled = 0
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.epoch = 0.0

    @classmethod
    def defaults(cls, arch: str) -> dict[str, Any]:
        """ImageNet, ResNet-50 (paper, App. A; batch 4096, LARS): 2048→128 projector, K = 3000, τ = 0.1,
        ε = 0.05, 3 Sinkhorn iterations, 2×224 + 6×96 crops, prototypes frozen 313 steps, no queue.
        ``*_cifar`` (small batches): a 3840-row queue from epoch 15 (the paper's batch-256 setting),
        prototypes frozen for the first 100 steps."""
        hp: dict[str, Any] = {
            "views": "multicrop",
            "proj_hidden_dim": 2048,
            "proj_dim": 128,
            "proj_layers": 2,
            "num_prototypes": 3000,
            "temperature": 0.1,
            "epsilon": 0.05,
            "sinkhorn_iterations": 3,
            "freeze_prototypes_iters": 313,
            "queue_length": 0,
            "queue_start_epoch": 15.0,
        }
        if is_small_image_arch(arch):
            hp.update(freeze_prototypes_iters=100, queue_length=3840)
        return hp

    @property
    def prototypes_frozen(self) -> bool:
        return int(self.step) < self.freeze_prototypes_iters

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        views = self.check_views(views)
        n_global = num_global_views(views)
        if self.training:
            with torch.no_grad():
                self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        z = [F.normalize(e, dim=1) for e in encode_views(self.projector, encode_views(self.backbone, views))]
        weight = self.prototypes.weight
        if self.prototypes_frozen:
            # Zero (not absent) gradient keeps DDP's reduction uniform across steps.
            weight = weight.detach() + 0.0 * weight
        scores = [zi @ weight.T for zi in z]
        queue_scores = self._queue_scores(n_global, weight.detach())
        loss = swav_loss(
            scores[:n_global],
            scores[n_global:],
            queue_scores,
            temperature=self.temperature,
            epsilon=self.epsilon,
            sinkhorn_iterations=self.sinkhorn_iterations,
        )
        if self.training:
            self._enqueue(z[:n_global])
        logs = {
            "prototypes_frozen": torch.tensor(float(self.prototypes_frozen)),
            "queue_used": torch.tensor(float(queue_scores is not None)),
            **self.collapse_logs(z[0]),
        }
        return {"loss": loss, **logs}

    def _queue_scores(self, n_global: int, weight: torch.Tensor) -> list[torch.Tensor] | None:
        queue = self._queue
        if queue is None or self._queue_filled < self.queue_capacity or queue.shape[0] != n_global:
            return None
        return [q.to(weight) @ weight.T for q in queue]

    @torch.no_grad()
    def _enqueue(self, z_global: list[torch.Tensor]) -> None:
        if self.queue_capacity == 0 or self.epoch < self.queue_start_epoch:
            return
        new = torch.stack([z.detach() for z in z_global])  # (n_global, B, D)
        if self._queue is None or self._queue.shape[0] != new.shape[0]:
            self._queue = new.new_zeros(new.shape[0], self.queue_capacity, new.shape[2])
            self._queue_filled = 0
        b = min(new.shape[1], self.queue_capacity)
        self._queue = torch.cat([new[:, :b], self._queue[:, : self.queue_capacity - b]], dim=1)
        self._queue_filled = min(self._queue_filled + b, self.queue_capacity)

    def on_step_end(self, epoch: float, max_epochs: float) -> None:
        self.step.add_(1)
        self.set_progress(epoch, max_epochs)

    def set_progress(self, epoch: float, max_epochs: float) -> None:
        self.epoch = float(epoch)
