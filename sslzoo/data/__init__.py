"""Data for self-supervised training: sources, multi-view recipes and a seeded, fault-tolerant loader.

>>> from sslzoo.data import load_source, build_views, create_dataloader
>>> ds = load_source("digits")                         # embedded, no network
>>> loader = create_dataloader(ds, build_views("simclust", size=32), batch_size=64, seed=0)
>>> views, labels = next(iter(loader))                 # 2 x [64, 3, 32, 32], [64]
"""

from .loader import (
    EpochSampler,
    UnreadableImageError,
    ViewDataset,
    collate_views,
    create_dataloader,
    decode_image,
    pil_to_rgb,
    set_epoch,
    skipped_images,
)
from .sources import IMAGE_COLUMNS, LABEL_COLUMNS, load_digits_dataset, load_source
from .views import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VIEW_RECIPES,
    BYOLViews,
    EvalTransform,
    LinearProbeViews,
    MultiCropViews,
    SimCLRViews,
    SimClustViews,
    ViewRecipe,
    build_eval_transform,
    build_views,
)

__all__ = [
    "BYOLViews",
    "EpochSampler",
    "EvalTransform",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_COLUMNS",
    "LABEL_COLUMNS",
    "LinearProbeViews",
    "MultiCropViews",
    "SimCLRViews",
    "SimClustViews",
    "UnreadableImageError",
    "VIEW_RECIPES",
    "ViewDataset",
    "ViewRecipe",
    "build_eval_transform",
    "build_views",
    "collate_views",
    "create_dataloader",
    "decode_image",
    "load_digits_dataset",
    "load_source",
    "pil_to_rgb",
    "set_epoch",
    "skipped_images",
]
