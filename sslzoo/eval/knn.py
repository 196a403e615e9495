"""Weighted k-nearest-neighbour classification of frozen features.

The protocol of Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance Discrimination"
(InstDisc, CVPR 2018), as used by Caron et al., "Emerging Properties in Self-Supervised Vision
Transformers" (DINO, ICCV 2021): features are L2-normalised, the ``k`` training rows with the highest
cosine similarity ``s_i`` to a test row vote for their class with weight ``exp(s_i / T)``, and the class
with the largest summed weight wins. DINO reports ``k=20`` and ``k=200`` with ``T=0.07``.

Memory stays bounded for ImageNet-sized problems (1.28M train x 50k test rows): test rows are processed in
chunks, and the training rows in blocks whose running top-k lists are merged, so at most
``chunk_size x train_chunk_size`` similarities exist at once.

Ties are broken deterministically: among training rows with equal similarity the one with the lower index
is the nearer neighbour, and among classes with equal vote the lower class index wins.

Example::

    >>> train = torch.randn(1000, 64); train_y = torch.randint(0, 10, (1000,))
    >>> test = torch.randn(200, 64); test_y = torch.randint(0, 10, (200,))
    >>> knn_accuracy(train, train_y, test, test_y, k=20, temperature=0.07)  # percent
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["knn_neighbors", "knn_predict", "knn_evaluate", "knn_accuracy"]

# Similarity blocks are capped at this many elements (float32: 256 MiB) unless told otherwise.
_MAX_BLOCK_ELEMENTS = 1 << 26


def _check_inputs(
    train_features: torch.Tensor,
    train_labels: torch.Tensor | None,
    test_features: torch.Tensor,
) -> None:
    if train_features.ndim != 2 or test_features.ndim != 2:
        raise ValueError(
            "kNN expects 2-D feature matrices (rows = samples); got train "
            f"{tuple(train_features.shape)} and test {tuple(test_features.shape)}. Flatten or pool features first."
        )
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"train and test features differ in width ({train_features.shape[1]} vs "
            f"{test_features.shape[1]}); extract both with the same encoder."
        )
    if train_features.shape[0] == 0:
        raise ValueError("kNN needs at least one training row; the training feature matrix is empty.")
    if train_labels is not None and train_labels.shape != (train_features.shape[0],):
        raise ValueError(
            f"train_labels must have shape ({train_features.shape[0]},) to match train_features; "
            f"got {tuple(train_labels.shape)}."
        )


def _select_topk(sim: torch.Tensor, index: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the ``k`` largest entries of each row of ``sim``, lower column first among equal values.

    ``index`` holds the global training index of each column and must increase along each row, so that
    "lower column" means "lower training index". The kept entries are returned in column order, which keeps
    that invariant for the next merge.
    """
    if sim.shape[1] <= k:
        return sim, index
    # torch.topk picks arbitrarily among values tied with the k-th; rebuild the selection so it is exact.
    kth = sim.topk(k, dim=1).values[:, -1:]
    above = sim > kth
    tied = sim == kth
    room = k - above.sum(dim=1, keepdim=True)
    keep = above | (tied & (tied.cumsum(dim=1) <= room))
    cols = keep.nonzero(as_tuple=True)[1].view(sim.shape[0], k)  # row-major, so columns ascend per row
    return sim.gather(1, cols), index.gather(1, cols)


@torch.no_grad()
def knn_neighbors(
    train_features: torch.Tensor,
    test_features: torch.Tensor,
    k: int,
    *,
    chunk_size: int = 256,
    train_chunk_size: int | None = None,
    normalize: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities and indices of the ``k`` nearest training rows of every test row.

    Args:
        train_features: ``(N, D)`` training features.
        test_features: ``(M, D)`` query features.
        k: Neighbours per query; clamped (with a warning) to ``N`` when larger.
        chunk_size: Test rows per block.
        train_chunk_size: Training rows per block; default keeps a block under 2**26 similarities.
        normalize: L2-normalise both matrices (cosine similarity). Pass False if they already are.

    Returns:
        ``(similarities, indices)``, both ``(M, k)``, sorted from nearest to farthest, ties by lower index.
    """
    _check_inputs(train_features, None, test_features)
    if k < 1:
        raise ValueError(f"k must be a positive integer; got {k}.")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive; got {chunk_size}.")
    n_train = train_features.shape[0]
    if k > n_train:
        warnings.warn(f"k={k} exceeds the {n_train} training rows; using k={n_train}.", stacklevel=2)
        k = n_train
    if train_chunk_size is None:
        train_chunk_size = max(k, _MAX_BLOCK_ELEMENTS // chunk_size)
    if train_chunk_size < 1:
        raise ValueError(f"train_chunk_size must be positive; got {train_chunk_size}.")

    # float32 at least: half-precision cosine similarities tie far too often to rank neighbours.
    dtype = torch.promote_types(train_features.dtype, torch.float32)
    train = train_features.to(dtype)
    test = test_features.to(device=train.device, dtype=dtype)
    if normalize:
        train = F.normalize(train, dim=1)
        test = F.normalize(test, dim=1)

    out_sim, out_idx = [], []
    for start in range(0, test.shape[0], chunk_size):
        query = test[start : start + chunk_size]
        best_sim = query.new_empty(query.shape[0], 0)
        best_idx = torch.empty(query.shape[0], 0, dtype=torch.long, device=query.device)
        for t0 in range(0, n_train, train_chunk_size):
            block = train[t0 : t0 + train_chunk_size]
            sim = query @ block.T
            idx = torch.arange(t0, t0 + block.shape[0], device=query.device).expand_as(sim)
            # Earlier blocks hold lower indices, so concatenation keeps indices ascending along each row.
            best_sim, best_idx = _select_topk(
                torch.cat([best_sim, sim], dim=1), torch.cat([best_idx, idx], dim=1), k
            )
        # Stable sort of index-ascending rows: equal similarities stay ordered by training index.
        order = best_sim.sort(dim=1, descending=True, stable=True).indices
        out_sim.append(best_sim.gather(1, order))
        out_idx.append(best_idx.gather(1, order))
    if not out_sim:
        return test.new_empty(0, k), torch.empty(0, k, dtype=torch.long, device=test.device)
    return torch.cat(out_sim), torch.cat(out_idx)


def _vote(
    sim: torch.Tensor,
    idx: torch.Tensor,
    train_labels: torch.Tensor,
    k: int,
    temperature: float,
    num_classes: int,
) -> torch.Tensor:
    weights = (sim[:, :k] / temperature).exp()
    labels = train_labels.to(idx.device)[idx[:, :k]]
    scores = sim.new_zeros(sim.shape[0], num_classes)
    return scores.scatter_add_(1, labels, weights)


@torch.no_grad()
def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    k: int = 20,
    temperature: float = 0.07,
    *,
    num_classes: int | None = None,
    chunk_size: int = 256,
    train_chunk_size: int | None = None,
) -> torch.Tensor:
    """Class scores ``(M, C)`` of the weighted kNN vote: ``score_c = sum_{i in topk, y_i = c} exp(s_i / T)``.

    Args:
        train_features, train_labels: ``(N, D)`` features and ``(N,)`` integer labels of the memory bank.
        test_features: ``(M, D)`` query features.
        k: Neighbours that vote (clamped to ``N``).
        temperature: ``T`` of the vote weights ``exp(s / T)``.
        num_classes: ``C``; default ``max(train_labels) + 1``.
        chunk_size, train_chunk_size: Block sizes, see :func:`knn_neighbors`.
    """
    _check_inputs(train_features, train_labels, test_features)
    if temperature <= 0:
        raise ValueError(f"temperature must be positive; got {temperature}.")
    train_labels = train_labels.long()
    num_classes = int(train_labels.max()) + 1 if num_classes is None else num_classes
    sim, idx = knn_neighbors(
        train_features, test_features, k, chunk_size=chunk_size, train_chunk_size=train_chunk_size
    )
    return _vote(sim, idx, train_labels, sim.shape[1], temperature, num_classes)


def _topk_correct(scores: torch.Tensor, labels: torch.Tensor, topk: int) -> int:
    # Stable descending sort: a tie between classes goes to the lower class index, as argmax does.
    ranked = scores.sort(dim=1, descending=True, stable=True).indices[:, :topk]
    return int((ranked == labels.to(ranked.device)[:, None]).any(dim=1).sum())


@torch.no_grad()
def knn_evaluate(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    ks: Sequence[int] = (20, 200),
    temperature: float = 0.07,
    *,
    chunk_size: int = 256,
    train_chunk_size: int | None = None,
) -> dict[str, float]:
    """Top-1 and top-5 accuracy (percent) for several ``k`` from one neighbour search.

    Returns ``{"knn_top1_k20": ..., "knn_top5_k20": ..., "knn_top1_k200": ...}``.
    """
    _check_inputs(train_features, train_labels, test_features)
    if test_labels.shape != (test_features.shape[0],):
        raise ValueError(
            f"test_labels must have shape ({test_features.shape[0]},); got {tuple(test_labels.shape)}."
        )
    if not ks:
        raise ValueError("ks must name at least one k.")
    train_labels = train_labels.long()
    test_labels = test_labels.long()
    num_classes = int(max(train_labels.max(), test_labels.max() if test_labels.numel() else 0)) + 1
    sim, idx = knn_neighbors(
        train_features, test_features, max(ks), chunk_size=chunk_size, train_chunk_size=train_chunk_size
    )
    n = max(test_labels.numel(), 1)
    out = {}
    for k in ks:
        scores = _vote(sim, idx, train_labels, min(k, sim.shape[1]), temperature, num_classes)
        out[f"knn_top1_k{k}"] = 100.0 * _topk_correct(scores, test_labels, 1) / n
        out[f"knn_top5_k{k}"] = 100.0 * _topk_correct(scores, test_labels, min(5, num_classes)) / n
    return out


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    k: int = 20,
    temperature: float = 0.07,
    *,
    chunk_size: int = 256,
    train_chunk_size: int | None = None,
) -> float:
    """Weighted kNN top-1 accuracy in percent (see the module docstring for the protocol)."""
    res = knn_evaluate(
        train_features,
        train_labels,
        test_features,
        test_labels,
        ks=(k,),
        temperature=temperature,
        chunk_size=chunk_size,
        train_chunk_size=train_chunk_size,
    )
    return res[f"knn_top1_k{k}"]
