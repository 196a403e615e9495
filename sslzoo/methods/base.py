"""The frame every self-supervised method builds on.

A method is an ``nn.Module`` that owns a timm encoder (``.backbone``), its heads (projector,
predictor, prototypes, momentum encoder...), its loss and its schedules:

- ``forward(views) -> dict``: ``views`` is the list of augmented batches from ``sslzoo.data`` (two
  or more; multi-crop views may differ in size). The dict holds ``"loss"`` (the scalar to minimise,
  with gradient) and detached float tensors to log: the loss terms, the collapse signals ``emb_std``
  and ``emb_rank`` (see :mod:`sslzoo.eval.collapse`) and the current schedule values.
- ``on_step_end(epoch, max_epochs)``: called by the recipe after every optimiser step with the
  fractional epoch reached; updates momentum/EMA targets and sets the schedule values the next
  forward uses. The recipe reports progress; the method owns its schedules.

Distributed correctness: when ``torch.distributed`` is initialised at construction (or
``sync_batchnorm=True``), every BatchNorm of the finished method, backbone and heads, is converted to a
global-batch BatchNorm (:func:`sslzoo.nn.convert_sync_batchnorm`). This runs after the subclass's
``__init__`` (see ``_SSLMethodMeta``), so subclasses just build their layers. Loss terms defined over
the batch must use the gradient-carrying collectives of :mod:`sslzoo.distributed`; with DDP's gradient
averaging, N processes × B then equal one process × N·B.

Writing a method (sketch)::

    @register_method("mymethod")
    class MyMethod(SSLMethod):
        def __init__(self, backbone, *, proj_dim=256, sync_batchnorm=None):
            super().__init__(backbone, sync_batchnorm=sync_batchnorm)
            self.projector = build_mlp([self.num_features, 2048, proj_dim])

        @classmethod
        def defaults(cls, arch):
            return {"views": "simclr", "proj_dim": 256}

        def forward(self, views):
            views = self.check_views(views)
            zs = [self.projector(self.backbone(v)) for v in views]
            out = mean_over_pairs(lambda i, j: {"loss": my_loss(zs[i], zs[j])}, view_pairs(len(zs)))
            return {**out, **self.collapse_logs(zs[0])}
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from sslzoo import distributed as sdist
from sslzoo.eval.collapse import effective_rank, embedding_std
from sslzoo.nn import convert_sync_batchnorm

__all__ = ["SSLMethod", "view_pairs", "mean_over_pairs", "is_small_image_arch"]


class _SSLMethodMeta(type(nn.Module)):
    """Runs ``__post_init__`` once the outermost ``__init__`` has built every layer."""

    def __call__(cls, *args: Any, **kwargs: Any):
        obj = super().__call__(*args, **kwargs)
        obj.__post_init__()
        return obj


class SSLMethod(nn.Module, metaclass=_SSLMethodMeta):
    """Base class of sslzoo's self-supervised methods.

    Args:
        backbone: a timm encoder (``num_classes=0``, exposing ``num_features``) or an arch name for
            :func:`sslzoo.backbones.create_backbone`.
        sync_batchnorm: True to make every BatchNorm global-batch, False to keep them local, None (auto)
            for True exactly when ``torch.distributed`` is initialised with more than one process.

    Attributes:
        backbone: the encoder whose weights are published.
        num_features: the encoder's feature size (input size of the projector).
    """

    #: name under which the class is registered (set by ``register_method``).
    method_name: str = ""

    def __init__(self, backbone: nn.Module | str, *, sync_batchnorm: bool | None = None) -> None:
        super().__init__()
        if isinstance(backbone, str):
            from sslzoo.backbones import create_backbone

            backbone = create_backbone(backbone)
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone must be an nn.Module or an arch name, got {type(backbone).__name__}")
        num_features = getattr(backbone, "num_features", None)
        if not isinstance(num_features, int):
            raise ValueError(
                "The backbone has no integer `num_features`; pass a timm model built with num_classes=0 "
                "(e.g. sslzoo.backbones.create_backbone(arch))."
            )
        self.backbone = backbone
        self.num_features = num_features
        self.sync_batchnorm = sdist.is_distributed() if sync_batchnorm is None else bool(sync_batchnorm)

    def __post_init__(self) -> None:
        if self.sync_batchnorm:
            convert_sync_batchnorm(self)

    @classmethod
    def defaults(cls, arch: str, **selectors: Any) -> dict[str, Any]:
        """Hyper-parameters for ``arch`` (constructor kwargs plus ``"views"``); override per method.

        ``selectors`` are hyper-parameters that choose between recipes (SimClust's ``variant``)."""
        return {"views": "simclr"}

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def on_step_end(self, epoch: float, max_epochs: float) -> None:
        """Update targets (EMA) after an optimiser step, then the schedules via ``set_progress``."""
        self.set_progress(epoch, max_epochs)

    def set_progress(self, epoch: float, max_epochs: float) -> None:
        """Set the schedule values (momentum, scale, temperatures) for training progress ``epoch``.

        Changes no weights, so a recipe resuming from a checkpoint can call it before the first step."""

    # Helpers for subclasses -------------------------------------------------------------------------

    def check_views(self, views: Sequence[torch.Tensor], min_views: int = 2) -> list[torch.Tensor]:
        """Validate the view list and return it as a list (clear errors for the usual mistakes)."""
        if isinstance(views, torch.Tensor):
            raise TypeError(
                f"{type(self).__name__}.forward takes a list of view batches, got one tensor of shape "
                f"{tuple(views.shape)}; use sslzoo.data.build_views(...) to make {min_views} or more views."
            )
        views = list(views)
        if len(views) < min_views:
            raise ValueError(f"{type(self).__name__} needs at least {min_views} views, got {len(views)}.")
        sizes = {v.shape[0] for v in views}
        if len(sizes) != 1:
            raise ValueError(
                f"All views must hold the same number of images, got batch sizes {sorted(sizes)}."
            )
        return views

    @staticmethod
    def collapse_logs(z: torch.Tensor) -> dict[str, torch.Tensor]:
        """``emb_std`` and ``emb_rank`` of an embedding batch (on this process's rows)."""
        return {"emb_std": embedding_std(z), "emb_rank": effective_rank(z)}


def view_pairs(
    num_views: int, *, ordered: bool = False, num_targets: int | None = None
) -> list[tuple[int, int]]:
    """Index pairs (i, j), i ≠ j, over which a two-view loss is averaged for many views.

    Args:
        num_views: number of (student/online) views.
        ordered: False for unordered pairs i < j (symmetric losses: SimSiam, BYOL, SimClust, SimCLR);
            True for ordered pairs (asymmetric losses such as DINO's student i vs teacher j).
        num_targets: with ``ordered=True``, only the first ``num_targets`` views act as j (targets),
            e.g. the two global crops of multi-crop.
    """
    if num_views < 2:
        raise ValueError(f"view_pairs needs at least 2 views, got {num_views}")
    if not ordered:
        return list(itertools.combinations(range(num_views), 2))
    targets = range(num_views if num_targets is None else num_targets)
    return [(i, j) for j in targets for i in range(num_views) if i != j]


def mean_over_pairs(
    fn: Callable[[int, int], dict[str, torch.Tensor]], pairs: Iterable[tuple[int, int]]
) -> dict[str, torch.Tensor]:
    """Call ``fn(i, j)`` for each pair and average every entry of the returned dicts."""
    results = [fn(i, j) for i, j in pairs]
    if not results:
        raise ValueError("mean_over_pairs got no pairs")
    return {key: sum(r[key] for r in results) / len(results) for key in results[0]}


def is_small_image_arch(arch: str) -> bool:
    """True for the 32-64 px archs (``*_cifar``), which get the documented small-data defaults."""
    try:
        from sslzoo.backbones import ARCHS

        if arch in ARCHS:
            return ARCHS[arch].small_image
    except ImportError:  # pragma: no cover - backbones is part of the package
        pass
    return arch.endswith("_cifar")
