"""What each process of a torchrun job loads (tests/test_data_distributed.py).

``map``: digits through ``create_dataloader(..., shard=True)`` for two epochs; ``stream``: a parquet copy of
digits through ``load_source(..., streaming=True)`` (split with ``split_dataset_by_node``). Each sample comes
back as its decoded pixels (its identity), its two SimClust views and its label; saved as safetensors.
"""

from __future__ import annotations

import sys

import torch
from safetensors.torch import save_file

from sslzoo.data import build_views, create_dataloader, load_source, set_epoch


class PixelsAndViews:
    """The decoded image itself (to identify the sample) followed by its augmented views."""

    def __init__(self) -> None:
        self.views = build_views("simclust", size=16)

    def __call__(self, image: torch.Tensor) -> list[torch.Tensor]:
        return [image.float(), *self.views(image)]


def load(mode: str, parquet: str | None = None, epochs: int = 2) -> dict[str, torch.Tensor]:
    if mode == "map":
        dataset, shuffle, shard = load_source("digits", "train"), True, True
    else:
        dataset, shuffle, shard = load_source(parquet, streaming=True), False, False
    loader = create_dataloader(
        dataset, PixelsAndViews(), batch_size=50, shuffle=shuffle, drop_last=False, seed=7, shard=shard
    )
    out: dict[str, list[torch.Tensor]] = {"pixels": [], "view0": [], "view1": [], "label": [], "epoch": []}
    for epoch in range(epochs):
        set_epoch(loader, epoch)
        for (pixels, view0, view1), labels in loader:
            batch = {"pixels": pixels, "view0": view0, "view1": view1, "label": labels}
            batch["epoch"] = torch.full_like(labels, epoch)
            for key, value in batch.items():
                out[key].append(value)
    return {key: torch.cat(values) for key, values in out.items()}


def main() -> None:
    mode, out_dir = sys.argv[1], sys.argv[2]
    parquet = sys.argv[3] if len(sys.argv) > 3 else None
    torch.distributed.init_process_group("gloo")
    rank = torch.distributed.get_rank()
    save_file(
        load(mode, parquet, epochs=2 if mode == "map" else 1), f"{out_dir}/{mode}_rank{rank}.safetensors"
    )
    # Tear gloo down before exit: a process leaving with live gloo threads can abort.
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
