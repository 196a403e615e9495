"""Resolve a source string to a Hugging Face ``datasets`` data set with ``image`` and ``label`` columns.

A source is one of:

- ``"digits"``: scikit-learn's handwritten digits (Alpaydin & Kaynak 1998; 1,797 8x8 images, 10 classes),
  embedded so that tests and the README's main job need no network. The train/test split is fixed
  (stratified, seed 0, 360 test images) so that every run and every machine sees the same split.
- a local folder of images (class sub-folders become labels; ``train/``, ``test/`` sub-folders become
  splits), read with the ``imagefolder`` builder of ``datasets``;
- a local folder saved with ``Dataset.save_to_disk``, or local ``.parquet`` / ``.arrow`` files (a file,
  a glob, or a folder holding them);
- anything else: a data set on the Hugging Face Hub (``cifar10``, ``frgfm/imagenette``, ...) loaded with
  ``datasets.load_dataset``, optionally streamed.

Whatever the source, the result has an ``image`` column (``datasets.Image``, decoding to PIL) and, when
the source has labels, a ``label`` column; other columns are dropped so that the rest of the pipeline sees
one shape of data.
"""

from __future__ import annotations

import functools
import glob
import os
from collections.abc import Sequence
from typing import Any

import datasets
import numpy as np
from PIL import Image as PILImage

__all__ = ["IMAGE_COLUMNS", "LABEL_COLUMNS", "DIGITS_TEST_SIZE", "load_source", "load_digits_dataset"]

IMAGE_COLUMNS: tuple[str, ...] = ("image", "img", "jpg", "jpeg", "png", "webp")
"""Column names tried, in order, when ``image_column`` is not given."""
LABEL_COLUMNS: tuple[str, ...] = ("label", "labels", "fine_label", "target", "cls", "coarse_label")
"""Column names tried, in order, when ``label_column`` is not given (``fine_label`` before ``coarse_label``)."""

DIGITS_TEST_SIZE = 360
_DIGITS_SEED = 0
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
_TABLE_EXTENSIONS = {".parquet": "parquet", ".arrow": "arrow"}


@functools.cache
def _digits_dataset_dict() -> datasets.DatasetDict:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # 16 grey levels (0..16) spread over the full 8-bit range so that ImageNet normalisation is sensible.
    pixels = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    labels = digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=DIGITS_TEST_SIZE, stratify=labels, random_state=_DIGITS_SEED
    )
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=[str(i) for i in range(10)])}
    )

    def split(indices: np.ndarray) -> datasets.Dataset:
        indices = np.sort(indices)  # keep the original order inside a split
        images = [PILImage.fromarray(pixels[i], mode="L").convert("RGB") for i in indices]
        return datasets.Dataset.from_dict(
            {"image": images, "label": labels[indices].tolist()}, features=features
        )

    return datasets.DatasetDict({"train": split(train_idx), "test": split(test_idx)})


def load_digits_dataset(split: str = "train") -> datasets.Dataset:
    """The embedded ``digits`` data set (8x8 RGB PIL images, ``label`` a ``ClassLabel`` of 10 digits)."""
    dd = _digits_dataset_dict()
    if split not in dd:
        raise ValueError(f"Source 'digits' has no split {split!r}; splits found: {sorted(dd)}.")
    return dd[split]


def _find_column(
    columns: Sequence[str], explicit: str | None, candidates: Sequence[str], what: str, source: str
) -> str | None:
    if explicit is not None:
        if explicit not in columns:
            raise ValueError(
                f"Source {source!r} has no {what} column {explicit!r}; columns found: {list(columns)}."
            )
        return explicit
    return next((c for c in candidates if c in columns), None)


def _column_names(ds: datasets.Dataset | datasets.IterableDataset) -> list[str]:
    names = ds.column_names
    if names is None:  # a streamed data set with unknown features: look at the first example
        first = next(iter(ds.take(1)), None)
        names = list(first) if first is not None else []
    return list(names)


def _normalise_columns(
    ds: datasets.Dataset | datasets.IterableDataset,
    source: str,
    image_column: str | None,
    label_column: str | None,
    require_labels: bool,
) -> datasets.Dataset | datasets.IterableDataset:
    columns = _column_names(ds)
    image = _find_column(columns, image_column, IMAGE_COLUMNS, "image", source)
    if image is None:
        raise ValueError(
            f"Source {source!r} has no image column (tried {list(IMAGE_COLUMNS)}); columns found: {columns}. "
            "Name it with image_column=..."
        )
    label = _find_column(columns, label_column, LABEL_COLUMNS, "label", source)
    if label is None and require_labels:
        raise ValueError(
            f"Source {source!r} has no label column (tried {list(LABEL_COLUMNS)}); columns found: {columns}. "
            "Name it with label_column=..., or use a labelled split for evaluation."
        )
    keep = [image] + ([label] if label is not None else [])
    ds = ds.select_columns(keep)
    renames = {old: new for old, new in zip(keep, ("image", "label"), strict=False) if old != new}
    if renames:
        ds = ds.rename_columns(renames)
    features = ds.features
    if features is not None and not isinstance(features.get("image"), datasets.Image):
        # e.g. a parquet column of {"bytes", "path"} structs or file paths: let datasets decode it.
        ds = ds.cast_column("image", datasets.Image())
    return ds


def _pick_split(dd: Any, split: str, source: str) -> Any:
    if split not in dd:
        raise ValueError(f"Source {source!r} has no split {split!r}; splits found: {sorted(dd)}.")
    return dd[split]


def _list_files(path: str) -> list[str]:
    out = []
    for root, _, files in os.walk(path):
        out.extend(os.path.join(root, f) for f in files if not f.startswith("."))
    return out


def _load_local(path: str, source: str, split: str, streaming: bool, load_kwargs: dict[str, Any]) -> Any:
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "dataset_dict.json")) or os.path.exists(
            os.path.join(path, "dataset_info.json")
        ):
            loaded = datasets.load_from_disk(path)
            if isinstance(loaded, datasets.DatasetDict):
                loaded = _pick_split(loaded, split, source)
            return loaded.to_iterable_dataset() if streaming else loaded
        files = _list_files(path)
        images = [f for f in files if f.lower().endswith(_IMAGE_EXTENSIONS)]
        tables = [f for f in files if os.path.splitext(f)[1].lower() in _TABLE_EXTENSIONS]
        if images:
            builder, kwargs = "imagefolder", {"data_dir": path}
        elif tables:
            ext = os.path.splitext(tables[0])[1].lower()
            builder, kwargs = (
                _TABLE_EXTENSIONS[ext],
                {"data_files": sorted(f for f in tables if f.endswith(ext))},
            )
        else:
            shown = [os.path.relpath(f, path) for f in files[:5]]
            raise ValueError(
                f"Source {source!r} is a folder without images or parquet/arrow files "
                f"({len(files)} files found{': ' + ', '.join(shown) if shown else ''}). "
                f"Image files need one of the extensions {list(_IMAGE_EXTENSIONS)}."
            )
    else:
        files = sorted(glob.glob(path)) if glob.has_magic(path) else [path]
        if not files:
            raise ValueError(f"Source {source!r} matches no files.")
        ext = os.path.splitext(files[0])[1].lower()
        if ext not in _TABLE_EXTENSIONS:
            raise ValueError(
                f"Source {source!r} is a file of an unknown kind ({ext or 'no extension'}); expected a folder "
                "of images, a saved data set folder, or .parquet/.arrow files."
            )
        builder, kwargs = _TABLE_EXTENSIONS[ext], {"data_files": files}
    dd = datasets.load_dataset(builder, **kwargs, streaming=streaming, **load_kwargs)
    return _pick_split(dd, split, source)


def _load_hub(
    name: str, config_name: str | None, split: str, streaming: bool, load_kwargs: dict[str, Any]
) -> Any:
    try:
        return datasets.load_dataset(name, config_name, split=split, streaming=streaming, **load_kwargs)
    except ValueError as err:
        if "split" in str(err).lower():
            raise ValueError(f"Source {name!r} (Hugging Face Hub) has no split {split!r}: {err}") from err
        raise
    except (FileNotFoundError, ConnectionError, OSError) as err:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "") or os.environ.get(
            "HF_DATASETS_OFFLINE", "0"
        ) not in ("0", "")
        hint = (
            "Offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE) and the data set is not in the local cache"
            if offline
            else "Check the name on https://huggingface.co/datasets and your network"
        )
        raise FileNotFoundError(
            f"Could not resolve source {name!r}: it is not 'digits', not an existing local path, and loading it "
            f"as a Hugging Face Hub data set failed ({type(err).__name__}: {err}). {hint}."
        ) from err


def load_source(
    source: str,
    split: str = "train",
    *,
    config_name: str | None = None,
    streaming: bool = False,
    image_column: str | None = None,
    label_column: str | None = None,
    require_labels: bool = False,
    split_by_node: bool = True,
    **load_kwargs: Any,
) -> datasets.Dataset | datasets.IterableDataset:
    """Resolve ``source`` to a data set with an ``image`` and (when labelled) a ``label`` column.

    Args:
        source: ``"digits"``, a local folder / parquet / arrow path (or glob), or a Hub data set name.
        split: The split to return (``"train"``, ``"test"``, ``"validation"``, or a ``datasets`` slice
            such as ``"train[:10%]"`` for Hub data sets).
        config_name: The Hub data set's configuration (its second ``load_dataset`` argument).
        streaming: Return a ``datasets.IterableDataset`` that reads as it goes (for data sets that do not fit
            on disk). When ``torch.distributed`` is initialised and ``split_by_node`` is true, each process
            gets its own part via ``datasets.distributed.split_dataset_by_node``.
        image_column, label_column: Column names; found automatically among :data:`IMAGE_COLUMNS` and
            :data:`LABEL_COLUMNS` when not given. They are renamed to ``image`` and ``label``.
        require_labels: Raise when no label column is found (evaluation needs labels; pretraining does not).
        split_by_node: See ``streaming``. Turn off when something else shards the stream.
        **load_kwargs: Passed to ``datasets.load_dataset`` (``cache_dir``, ``revision``, ``token``, ...).

    Returns:
        A ``datasets.Dataset`` (or ``IterableDataset`` when streaming) whose ``image`` decodes to PIL.

    Example:
        >>> ds = load_source("digits", "test")
        >>> len(ds), ds.features["label"].num_classes
        (360, 10)
    """
    if not isinstance(source, str) or not source:
        raise ValueError(f"A source must be a non-empty string, got {source!r}.")
    expanded = os.path.expanduser(source)
    if source == "digits":
        ds: Any = load_digits_dataset(split)
        if streaming:
            ds = ds.to_iterable_dataset()
    elif os.path.exists(expanded) or glob.has_magic(expanded):
        ds = _load_local(expanded, source, split, streaming, load_kwargs)
    else:
        ds = _load_hub(source, config_name, split, streaming, load_kwargs)

    if isinstance(ds, datasets.Dataset) and len(ds) == 0:
        raise ValueError(f"Source {source!r} split {split!r} is empty (0 rows).")
    ds = _normalise_columns(ds, source, image_column, label_column, require_labels)

    if isinstance(ds, datasets.IterableDataset) and split_by_node:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            from datasets.distributed import split_dataset_by_node

            ds = split_dataset_by_node(ds, rank=dist.get_rank(), world_size=dist.get_world_size())
    return ds
