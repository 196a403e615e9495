"""Frozen-feature extraction for the kNN and linear-probe protocols.

The encoder runs in eval mode without gradients on the Accelerate device; with several processes each one
embeds its shard and :meth:`accelerate.Accelerator.gather_for_metrics` assembles the full matrix, dropping the
samples a distributed sampler duplicated to even out the shards. Features can be cached on disk as
safetensors (never pickle), so the linear probe's fast mode and repeated kNN runs embed a data set once.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = ["extract_features", "encoder_of", "split_batch", "load_feature_cache", "save_feature_cache"]


def encoder_of(model: nn.Module) -> nn.Module:
    """The module whose output is the representation: an SSL method's ``.backbone``, else ``model`` itself."""
    inner = getattr(model, "module", model)  # DDP / Accelerate wrappers
    try:
        from sslzoo.methods.base import SSLMethod
    except ImportError:  # methods package absent: any module is treated as the encoder
        SSLMethod = ()  # noqa: N806
    if SSLMethod and isinstance(inner, SSLMethod):
        return inner.backbone
    return model


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Accept ``(views, labels)`` from ``sslzoo.data.create_dataloader``, ``(images, labels)`` or a dict."""
    if isinstance(batch, dict):
        images = batch.get("image", batch.get("pixel_values"))
        labels = batch.get("label", batch.get("labels"))
    elif isinstance(batch, (list, tuple)) and len(batch) == 2:
        images, labels = batch
    else:
        raise TypeError(
            "extract_features expects batches of (images, labels) or (views, labels); got "
            f"{type(batch).__name__}. Build the loader with sslzoo.data.create_dataloader and an eval transform."
        )
    if isinstance(images, (list, tuple)):
        if len(images) != 1:
            raise ValueError(
                f"got {len(images)} views per sample; feature extraction needs one. Use "
                "sslzoo.data.build_eval_transform instead of a multi-view recipe."
            )
        images = images[0]
    if not torch.is_tensor(images) or not torch.is_tensor(labels):
        raise TypeError("batch images and labels must be tensors; did the loader apply a tensor transform?")
    return images, labels


def save_feature_cache(path: str | os.PathLike, features: torch.Tensor, labels: torch.Tensor) -> None:
    """Write ``features`` and ``labels`` to a safetensors file (atomically, via a temporary name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(
        {"features": features.contiguous().cpu(), "labels": labels.contiguous().cpu()},
        str(tmp),
        metadata={"format": "sslzoo-features", "num_samples": str(features.shape[0])},
    )
    os.replace(tmp, path)


def load_feature_cache(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a cache written by :func:`save_feature_cache`."""
    tensors = load_file(str(path))
    if set(tensors) != {"features", "labels"}:
        raise ValueError(
            f"{path} is not an sslzoo feature cache (keys {sorted(tensors)}); delete it to rebuild."
        )
    return tensors["features"], tensors["labels"]


@torch.no_grad()
def extract_features(
    model: nn.Module,
    dataloader: Any,
    accelerator: Any = None,
    *,
    cache_path: str | os.PathLike | None = None,
    show_progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Embed every sample of ``dataloader`` with ``model`` frozen.

    Args:
        model: An encoder (timm model with ``num_classes=0``) or an SSL method (its ``.backbone`` is used).
        dataloader: Yields ``(views, labels)`` with one view (``sslzoo.data.create_dataloader`` with
            ``build_eval_transform``), ``(images, labels)`` or dicts with ``image``/``label``. With several
            processes, pass the loader returned by ``accelerator.prepare`` so duplicated padding samples are
            dropped by ``gather_for_metrics``.
        accelerator: An ``accelerate.Accelerator``; None runs on the device of the model's parameters.
        cache_path: A ``.safetensors`` file: loaded if it exists (and matches the data set's length), written
            otherwise (by the main process).
        show_progress: Show a tqdm bar on the main process.

    Returns:
        ``(features, labels)`` on CPU: ``(N, D)`` float32 and ``(N,)`` int64, in loader order.
    """
    n_expected = (
        len(dataloader.dataset)
        if hasattr(dataloader, "dataset") and hasattr(dataloader.dataset, "__len__")
        else None
    )
    if cache_path is not None and Path(cache_path).is_file():
        features, labels = load_feature_cache(cache_path)
        if n_expected is None or features.shape[0] == n_expected:
            return features, labels
        warnings.warn(
            f"feature cache {cache_path} holds {features.shape[0]} rows but the data set has {n_expected}; "
            "recomputing and overwriting it.",
            stacklevel=2,
        )

    encoder = encoder_of(model)
    if accelerator is not None:
        device = accelerator.device
    else:
        param = next(encoder.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    was_training = encoder.training
    encoder.eval()
    is_main = accelerator is None or accelerator.is_main_process
    batches = dataloader
    if show_progress and is_main:
        from tqdm.auto import tqdm

        batches = tqdm(dataloader, desc="features", leave=False)

    feats, labs = [], []
    try:
        for batch in batches:
            images, labels = split_batch(batch)
            out = encoder(images.to(device, non_blocking=True))
            if not torch.is_tensor(out) or out.ndim != 2:
                raise ValueError(
                    "the encoder must return pooled (batch, dim) features; got "
                    f"{getattr(out, 'shape', type(out).__name__)}. Create it with num_classes=0."
                )
            out = out.float()
            labels = labels.to(device)
            if accelerator is not None:
                out, labels = accelerator.gather_for_metrics((out, labels))
            feats.append(out.cpu())
            labs.append(labels.cpu().long())
    finally:
        encoder.train(was_training)

    if not feats:
        raise ValueError("the dataloader yielded no batches; nothing to embed.")
    features, labels = torch.cat(feats), torch.cat(labs)
    if cache_path is not None:
        if is_main:
            save_feature_cache(cache_path, features, labels)
        if accelerator is not None:
            accelerator.wait_for_everyone()
    return features, labels
