"""Multi-crop inputs: run an encoder once per resolution and split the result back into views.

Multi-crop (SwAV, Caron et al. 2020, Sec. 3.2; DINO, Caron et al. 2021) mixes a few high-resolution
"global" crops with several low-resolution "local" crops. Consecutive views of one size are
concatenated and encoded together, as the authors' ``MultiCropWrapper`` does: one forward per
resolution, and BatchNorm statistics over all crops of that resolution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["resolution_groups", "num_global_views", "encode_views"]


def resolution_groups(views: Sequence[torch.Tensor]) -> list[list[int]]:
    """Indices of consecutive views that share one shape, e.g. ``[[0, 1], [2, 3, 4, 5]]``."""
    groups: list[list[int]] = []
    for i, v in enumerate(views):
        if groups and views[groups[-1][0]].shape == v.shape:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def num_global_views(views: Sequence[torch.Tensor]) -> int:
    """Number of leading views at the first view's resolution (the global crops of multi-crop).

    Raises a clear error when a later view is larger than the first ones, i.e. the global crops are not
    first.
    """
    n = len(resolution_groups(views)[0])
    first = views[0].shape[-2:]
    for v in views[n:]:
        if v.shape[-2] * v.shape[-1] > first[0] * first[1]:
            raise ValueError(
                "Multi-crop views must list the global (largest) crops first; got sizes "
                f"{[tuple(v.shape[-2:]) for v in views]}."
            )
    return n


def encode_views(
    fn: Callable[[torch.Tensor], torch.Tensor], views: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """Apply ``fn`` once per resolution group of ``views`` and return one output per view."""
    outputs: list[torch.Tensor] = []
    for group in resolution_groups(views):
        out = fn(torch.cat([views[i] for i in group]))
        outputs.extend(out.chunk(len(group)))
    return outputs
