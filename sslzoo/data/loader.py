"""A DataLoader factory for multi-view training: decoding, bad-input handling, seeding.

``create_dataloader`` yields ``(views, labels)``: ``views`` a list of float tensors ``[B, 3, H, W]`` (one
per view; a list of one for a transform that returns a single tensor) and ``labels`` a ``long`` tensor
``[B]`` (``-1`` where the source has no label).

Seeding (what is guaranteed): every sample's augmentation is drawn from a torch RNG seeded with
``(seed, epoch, dataset index)`` right before its transform runs. The views of an image therefore depend
only on ``seed``, the epoch and the index: not on ``num_workers``, worker scheduling, the number of
processes, or what ran before (so resuming at an epoch reproduces it). The order of samples is a permutation
drawn from ``(seed, epoch)``, the same on every process; which samples a process sees then depends on the
number of processes (Accelerate gives process ``r`` of ``N`` the batches ``r, r+N, ...``). Same seed + same
number of processes + same batch size = the same batches. Call ``set_epoch(dataloader, epoch)`` (Accelerate's
prepared loader does this itself on each new iteration) to get new permutations and new views each epoch.
For streamed (iterable) sources the sample index is the position in the stream of this process and worker,
so reproducibility there additionally needs the same ``num_workers``.

With Accelerate: pass the loader (built with the *per-process* batch size, ``shuffle=True``) through
``accelerator.prepare``; it shards batches and calls ``set_epoch``. Do not also pass ``shard=True``. For a
streamed source, ``load_source`` already splits the stream per process: keep that loader out of
``accelerator.prepare`` (or load with ``split_by_node=False``) and move batches with ``.to(accelerator.device)``.

Bad input: an image that cannot be decoded is skipped with a warning and replaced by the next readable
sample (so batches keep their size, which global-batch statistics rely on); :func:`skipped_images` reads the
count, summed over worker processes, for the recipe to report at the end of each epoch.
"""

from __future__ import annotations

import io
import math
import multiprocessing
import random
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from PIL import Image as PILImage
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

__all__ = [
    "EpochSampler",
    "ViewDataset",
    "create_dataloader",
    "decode_image",
    "pil_to_rgb",
    "set_epoch",
    "skipped_images",
]

_MAX_CONSECUTIVE_BAD = 64
_JPEG_MAGIC = b"\xff\xd8"


class UnreadableImageError(RuntimeError):
    """An image that could not be read or decoded."""


def pil_to_rgb(image: PILImage.Image) -> PILImage.Image:
    """Grey, palette, CMYK, RGBA, 16-bit and float images as 8-bit RGB (alpha composited on white)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(image, dtype=np.float32)
        hi = float(arr.max()) if arr.size else 0.0
        arr = arr * (255.0 / hi) if hi > 255 else arr
        return PILImage.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PILImage.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _decode_bytes(data: bytes, min_size: int | None) -> Tensor:
    with PILImage.open(io.BytesIO(data)) as img:
        if data[:2] == _JPEG_MAGIC and img.mode in ("RGB", "L", "CMYK"):
            w, h = img.size
            # Ask libjpeg for a 1/2, 1/4 or 1/8 scaled decode when the views need no more; the size given to
            # draft() is a lower bound on the result, on the shorter side here.
            if min_size is not None and min(w, h) >= 2 * min_size:
                scale = min(w, h) / min_size
                img.draft("RGB", (math.ceil(w / scale), math.ceil(h / scale)))
        img.load()
        rgb = pil_to_rgb(img)
        return torch.from_numpy(np.array(rgb, dtype=np.uint8, copy=True)).permute(2, 0, 1)


def decode_image(obj: Any, min_size: int | None = None) -> Tensor:
    """Decode an image cell (``{"bytes", "path"}`` dict, bytes, path, PIL image, array) to RGB ``uint8 [3, H, W]``.

    ``min_size``: the shorter side the caller needs; JPEGs at least twice as large are decoded at a reduced
    scale. Raises :class:`UnreadableImageError` for anything that cannot be decoded.
    """
    from .views import to_uint8_tensor

    try:
        if isinstance(obj, dict):
            data, path = obj.get("bytes"), obj.get("path")
            if data is None:
                if path is None:
                    raise UnreadableImageError("image cell has neither bytes nor path")
                with open(path, "rb") as f:
                    data = f.read()
            return _decode_bytes(data, min_size)
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return _decode_bytes(bytes(obj), min_size)
        if isinstance(obj, str):
            with open(obj, "rb") as f:
                return _decode_bytes(f.read(), min_size)
        return to_uint8_tensor(obj)
    except UnreadableImageError:
        raise
    except (
        OSError,
        SyntaxError,
        ValueError,
        TypeError,
        RuntimeError,
        PILImage.DecompressionBombError,
    ) as err:
        raise UnreadableImageError(f"{type(err).__name__}: {err}") from err


def _describe(obj: Any) -> str:
    if isinstance(obj, dict) and obj.get("path"):
        return str(obj["path"])
    if isinstance(obj, str):
        return obj
    return f"<{type(obj).__name__}>"


def _sample_seed(seed: int, epoch: int, index: int) -> int:
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, index]).generate_state(1, np.uint64)[0] >> 1)


def _split_item(item: Any) -> tuple[Any, int]:
    if isinstance(item, dict):
        if "image" not in item:
            raise KeyError(
                f"Sample has no 'image' key (keys: {sorted(item)}); load it with sslzoo.data.load_source."
            )
        label = item.get("label")
    elif isinstance(item, (tuple, list)) and len(item) >= 1:
        item, label = item[0], (item[1] if len(item) > 1 else None)
        return item, -1 if label is None else int(label)
    else:
        return item, -1
    return item["image"], -1 if label is None else int(label)


class _Counter:
    """A process-shared integer (DataLoader workers inherit it when they start)."""

    def __init__(self) -> None:
        self._value = multiprocessing.get_context().Value("q", 0)

    def add(self, n: int = 1) -> None:
        with self._value.get_lock():
            self._value.value += n

    @property
    def value(self) -> int:
        return int(self._value.value)

    def reset(self) -> int:
        with self._value.get_lock():
            old, self._value.value = self._value.value, 0
        return int(old)


def _apply(transform: Callable, image: Tensor, seed: int) -> list[Tensor]:
    # fork_rng restores the caller's RNG state, which matters when num_workers=0 (the training process).
    # Ops on one small image gain nothing from intra-op threads and lose a lot to their wake-ups on a busy
    # machine (100x on 32 px images), so transforms run single-threaded, as they do in DataLoader workers.
    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(1)
    with torch.random.fork_rng(devices=[]):
        # Only the CPU generator: torch.manual_seed would also queue lazy CUDA/XPU seeding (slow, per sample).
        torch.default_generator.manual_seed(seed)
        py_state = random.getstate()
        random.seed(seed)
        try:
            out = transform(image)
        finally:
            random.setstate(py_state)
            if threads > 1:
                torch.set_num_threads(threads)
    return [out] if isinstance(out, Tensor) else list(out)


class ViewDataset(Dataset):
    """Map-style wrapper: decode, skip unreadable images, and apply ``transform`` with a per-sample seed.

    Indices are ``epoch * len(dataset) + i`` (see :class:`EpochSampler`), so the epoch reaches worker
    processes with the index itself and persistent workers need no notification.
    """

    def __init__(self, dataset: Any, transform: Callable, seed: int = 0):
        self.dataset = _undecoded(dataset)
        self.transform = transform
        self.seed = seed
        self.min_size = getattr(transform, "decode_size", None)
        self.skipped = _Counter()
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, global_index: int) -> tuple[list[Tensor], int]:
        n = len(self.dataset)
        epoch, index = divmod(int(global_index), n)
        for attempt in range(min(n, _MAX_CONSECUTIVE_BAD)):
            i = (index + attempt) % n
            image, label = _split_item(self.dataset[i])
            try:
                decoded = decode_image(image, self.min_size)
            except UnreadableImageError as err:
                self._skip(image, err)
                continue
            return _apply(self.transform, decoded, _sample_seed(self.seed, epoch, i)), label
        raise RuntimeError(
            f"{_MAX_CONSECUTIVE_BAD} consecutive images from index {index} could not be decoded; the source looks "
            "broken (see the warnings above)."
        )

    def _skip(self, image: Any, err: Exception) -> None:
        self.skipped.add(1)
        where = _describe(image)
        if where not in self._warned:
            self._warned.add(where)
            warnings.warn(f"Skipping unreadable image {where}: {err}", RuntimeWarning, stacklevel=2)


class IterableViewDataset(IterableDataset):
    """Iterable (streamed) counterpart of :class:`ViewDataset`; the index is the position in this stream."""

    def __init__(self, dataset: Any, transform: Callable, seed: int = 0):
        self.dataset = _undecoded(dataset)
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        self.min_size = getattr(transform, "decode_size", None)
        self.skipped = _Counter()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[list[Tensor], int]]:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        for position, item in enumerate(self.dataset):
            image, label = _split_item(item)
            try:
                decoded = decode_image(image, self.min_size)
            except UnreadableImageError as err:
                self.skipped.add(1)
                warnings.warn(
                    f"Skipping unreadable image {_describe(image)}: {err}", RuntimeWarning, stacklevel=2
                )
                continue
            seed = _sample_seed(self.seed, self.epoch, (rank << 40) + (worker << 32) + position)
            yield _apply(self.transform, decoded, seed), label


def _undecoded(dataset: Any) -> Any:
    """A ``datasets`` data set with its image column left encoded, so that the loader decodes it (fast path,
    draft mode, and a bad file becomes a skipped sample instead of an exception inside ``datasets``)."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a dependency
        return dataset
    if isinstance(dataset, (datasets.Dataset, datasets.IterableDataset)):
        feature = (dataset.features or {}).get("image")
        if isinstance(feature, datasets.Image) and feature.decode:
            return dataset.cast_column("image", datasets.Image(decode=False))
    return dataset


class EpochSampler(Sampler[int]):
    """Shuffled (or ordered) indices from ``(seed, epoch)``, identical on every process, offset by the epoch.

    ``shard=True`` keeps every ``num_replicas``-th index for this ``rank`` (for plain ``torch.distributed``
    without Accelerate); the list is first cut to a multiple of ``num_replicas`` so all ranks get as many.
    """

    def __init__(self, n: int, *, shuffle: bool = True, seed: int = 0, rank: int = 0, num_replicas: int = 1):
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.rank, self.num_replicas = rank, num_replicas
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n // self.num_replicas

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(_sample_seed(self.seed, self.epoch, -1 & 0xFFFFFFFF))
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        order = order[: len(self) * self.num_replicas][self.rank :: self.num_replicas]
        return iter((order + self.epoch * self.n).tolist())


def collate_views(batch: list[tuple[list[Tensor], int]]) -> tuple[list[Tensor], Tensor]:
    """Stack per-view tensors across the batch; labels become a ``long`` tensor."""
    num_views = len(batch[0][0])
    views = [torch.stack([sample[0][v] for sample in batch]) for v in range(num_views)]
    return views, torch.tensor([sample[1] for sample in batch], dtype=torch.long)


def _worker_init(worker_id: int) -> None:
    # Per-sample seeding covers torch and random; seed numpy too for user transforms that use it.
    np.random.seed(torch.initial_seed() % 2**32)


def create_dataloader(
    dataset: Any,
    transform: Callable,
    batch_size: int,
    *,
    shuffle: bool = True,
    drop_last: bool = True,
    num_workers: int = 0,
    seed: int = 0,
    pin_memory: bool | None = None,
    persistent_workers: bool | None = None,
    prefetch_factor: int | None = None,
    shard: bool = False,
    multiprocessing_context: str | None = None,
) -> DataLoader:
    """A ``DataLoader`` yielding ``(views: list[Tensor], labels: Tensor)`` (see the module docstring).

    Args:
        dataset: A ``datasets.Dataset`` / ``IterableDataset`` from :func:`load_source` (``image`` and optional
            ``label`` columns), or any sequence / iterable of ``(image, label)`` pairs or ``{"image", "label"}``.
        transform: ``image -> list[Tensor]`` (:func:`build_views`) or ``image -> Tensor``
            (:func:`build_eval_transform`); it receives an RGB ``uint8`` tensor ``[3, H, W]``.
        batch_size: Per-process batch size.
        shuffle, drop_last: As in ``DataLoader`` (``shuffle`` draws a new permutation each epoch).
        num_workers: Worker processes; results do not depend on it (map-style sources).
        seed: Seeds the permutation and every sample's augmentation.
        pin_memory: Default: when CUDA is available.
        persistent_workers: Default: when ``num_workers > 0``.
        prefetch_factor: Batches prefetched per worker (``DataLoader`` default when ``None``).
        shard: Split samples across ``torch.distributed`` processes here (only without Accelerate).
        multiprocessing_context: e.g. ``"spawn"``; default: the platform's.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
    persistent_workers = (
        num_workers > 0 if persistent_workers is None else persistent_workers and num_workers > 0
    )
    # Own generator: the DataLoader draws its workers' base seed from it instead of the global RNG.
    extra: dict[str, Any] = {"generator": torch.Generator().manual_seed(seed)}
    if num_workers > 0:
        extra.update(persistent_workers=persistent_workers, worker_init_fn=_worker_init)
        if prefetch_factor is not None:
            extra["prefetch_factor"] = prefetch_factor
        if multiprocessing_context is not None:
            extra["multiprocessing_context"] = multiprocessing_context

    if _is_iterable(dataset):
        # Workers hold a copy of the wrapper made when they start; only fresh workers see a new epoch.
        extra.pop("persistent_workers", None)
        if shuffle and hasattr(dataset, "shuffle"):
            dataset = dataset.shuffle(seed=seed, buffer_size=1000)
        wrapped = IterableViewDataset(dataset, transform, seed)
        return DataLoader(
            wrapped, batch_size=batch_size, drop_last=drop_last, num_workers=num_workers,
            collate_fn=collate_views, pin_memory=pin_memory, **extra,
        )  # fmt: skip

    wrapped = ViewDataset(dataset, transform, seed)
    if len(wrapped) == 0:
        raise ValueError("The data set is empty.")
    rank, replicas = 0, 1
    if shard and torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, replicas = torch.distributed.get_rank(), torch.distributed.get_world_size()
    sampler = EpochSampler(len(wrapped), shuffle=shuffle, seed=seed, rank=rank, num_replicas=replicas)
    if drop_last and len(sampler) < batch_size:
        raise ValueError(
            f"drop_last=True with batch_size={batch_size} but only {len(sampler)} samples per process: no batch "
            "would be produced. Lower the batch size or pass drop_last=False."
        )
    return DataLoader(
        wrapped, batch_size=batch_size, sampler=sampler, drop_last=drop_last, num_workers=num_workers,
        collate_fn=collate_views, pin_memory=pin_memory, **extra,
    )  # fmt: skip


def _is_iterable(dataset: Any) -> bool:
    return isinstance(dataset, IterableDataset) or (
        type(dataset).__name__ == "IterableDataset" and not hasattr(dataset, "__getitem__")
    )


def _view_dataset(dataloader: Any) -> Any:
    ds = getattr(dataloader, "dataset", None)
    # Accelerate may wrap the dataset (IterableDatasetShard); look one level down.
    inner = getattr(ds, "dataset", None)
    if not isinstance(ds, (ViewDataset, IterableViewDataset)) and isinstance(
        inner, (ViewDataset, IterableViewDataset)
    ):
        ds = inner
    if not isinstance(ds, (ViewDataset, IterableViewDataset)):
        raise TypeError("Expected a DataLoader made by sslzoo.data.create_dataloader (or prepared from one).")
    return ds


def skipped_images(dataloader: Any, *, reset: bool = False) -> int:
    """How many unreadable images the loader skipped (all worker processes), optionally resetting the count."""
    counter = _view_dataset(dataloader).skipped
    return counter.reset() if reset else counter.value


def set_epoch(dataloader: Any, epoch: int) -> None:
    """Select the epoch (permutation and augmentations) for the next iteration of the loader."""
    if hasattr(dataloader, "set_epoch"):  # Accelerate's DataLoaderShard forwards to the sampler
        dataloader.set_epoch(epoch)
    sampler = getattr(dataloader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    batch_sampler = getattr(dataloader, "batch_sampler", None)
    if hasattr(getattr(batch_sampler, "sampler", None), "set_epoch"):
        batch_sampler.sampler.set_epoch(epoch)
    ds = _view_dataset(dataloader)
    if isinstance(ds, IterableViewDataset):
        ds.set_epoch(epoch)
