"""sslzoo.data.create_dataloader: batches, seeding, bad input, decoding."""

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from sslzoo.data import (
    build_eval_transform,
    build_views,
    create_dataloader,
    decode_image,
    load_source,
    set_epoch,
    skipped_images,
)


@pytest.fixture(scope="module")
def digits64():
    return load_source("digits").select(range(64))


def _all(loader):
    return [(torch.cat(views, 1), labels) for views, labels in loader]


def test_batches_shapes_labels(digits64):
    loader = create_dataloader(digits64, build_views("simclust", size=16), batch_size=16, shuffle=False)
    views, labels = next(iter(loader))
    assert len(views) == 2 and all(v.shape == (16, 3, 16, 16) and v.dtype == torch.float32 for v in views)
    assert labels.dtype == torch.long and labels.tolist() == digits64["label"][:16]
    assert not torch.equal(views[0], views[1])
    assert len(loader) == 4
    # The eval transform gives a list of one view.
    views, _ = next(iter(create_dataloader(digits64, build_eval_transform(16), batch_size=8, shuffle=False)))
    assert len(views) == 1 and views[0].shape == (8, 3, 16, 16)


def test_same_seed_same_batches_any_workers(digits64):
    tf = build_views("byol", size=16)
    state = torch.get_rng_state()
    a = _all(create_dataloader(digits64, tf, batch_size=16, seed=7))
    assert torch.equal(state, torch.get_rng_state())  # the caller's RNG is left alone
    b = _all(create_dataloader(digits64, tf, batch_size=16, seed=7, num_workers=2))
    c = _all(create_dataloader(digits64, tf, batch_size=16, seed=8))
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0][0], c[0][0])
    # A new epoch draws a new order and new views; going back to epoch 0 reproduces it.
    loader = create_dataloader(digits64, tf, batch_size=16, seed=7)
    set_epoch(loader, 1)
    e1 = _all(loader)
    assert not torch.equal(e1[0][1], a[0][1])
    set_epoch(loader, 0)
    assert torch.equal(_all(loader)[0][0], a[0][0])


def test_shuffle_is_a_permutation(digits64):
    loader = create_dataloader(digits64, build_eval_transform(8), batch_size=8, seed=1, drop_last=False)
    labels = torch.cat([lab for _, lab in loader])
    assert sorted(labels.tolist()) == sorted(digits64["label"]) and labels.tolist() != digits64["label"]


def _folder(root):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(root / cls / f"{i}.jpg")
    base = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    base.convert("L").save(root / "a" / "gray.png")
    base.convert("P").save(root / "a" / "palette.png")
    base.convert("CMYK").save(root / "b" / "cmyk.jpg")
    base.convert("RGBA").save(root / "b" / "rgba.png")
    (root / "a" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg at all")
    good = (root / "b" / "0.jpg").read_bytes()
    (root / "b" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    return root


@pytest.mark.parametrize("num_workers", [0, 2])
def test_corrupt_images_skipped_and_counted(tmp_path, num_workers):
    ds = load_source(str(_folder(tmp_path / "imgs")))
    assert len(ds) == 14
    loader = create_dataloader(ds, build_views("byol", size=16), batch_size=7, num_workers=num_workers)
    if num_workers == 0:
        with pytest.warns(RuntimeWarning, match="Skipping unreadable image .*(corrupt|truncated).jpg"):
            batches = _all(loader)
    else:  # worker processes warn on their own stderr (under pytest, into the worker's warning capture)
        batches = _all(loader)
    assert len(batches) == 2 and all(v.shape == (7, 6, 16, 16) for v, _ in batches)  # batches stay full
    assert skipped_images(loader) == 2
    assert skipped_images(loader, reset=True) == 2 and skipped_images(loader) == 0


def test_decode_modes_to_rgb(tmp_path):
    base = Image.fromarray(np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8))
    for mode, ext in (("L", "png"), ("P", "png"), ("CMYK", "jpg"), ("RGBA", "png"), ("I;16", "png")):
        path = tmp_path / f"x_{mode.replace(';', '')}.{ext}"
        base.convert(mode if mode != "I;16" else "L").convert(mode).save(path)
        img = decode_image(str(path))
        assert img.dtype == torch.uint8 and img.shape == (3, 30, 40), mode
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent: composited on white
    assert decode_image(rgba)[:, 0, 0].tolist() == [255, 255, 255]
    ref = np.asarray(base.convert("L"))
    gray = decode_image(str(tmp_path / "x_L.png"))
    assert torch.equal(gray[0], torch.from_numpy(ref.copy())) and torch.equal(gray[0], gray[2])


def test_jpeg_draft_decodes_large_images_smaller(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (800, 600), (200, 30, 60)).save(path, quality=90)
    full = decode_image(str(path))
    small = decode_image(str(path), min_size=150)
    assert full.shape == (3, 600, 800)
    assert small.shape[1] >= 150 and small.shape[1] < 600 and small.shape[2] * 3 == small.shape[1] * 4
    assert (small.float().mean((1, 2)) - torch.tensor([200.0, 30, 60])).abs().max() < 3


def test_unlabelled_and_plain_sequences():
    ds = datasets.Dataset.from_dict(
        {"image": [Image.new("RGB", (8, 8), (i * 20, 0, 0)) for i in range(6)]},
        features=datasets.Features({"image": datasets.Image()}),
    )
    _, labels = next(iter(create_dataloader(ds, build_eval_transform(8), batch_size=3)))
    assert labels.tolist() == [-1, -1, -1]
    pairs = [(Image.new("RGB", (8, 8)), i) for i in range(4)]
    _, labels = next(iter(create_dataloader(pairs, build_eval_transform(8), batch_size=4, shuffle=False)))
    assert labels.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="no batch would be produced"):
        create_dataloader(pairs, build_eval_transform(8), batch_size=8)


def test_streaming_source(digits64):
    stream = digits64.to_iterable_dataset()
    loader = create_dataloader(stream, build_views("byol", size=8), batch_size=16, shuffle=False, seed=0)
    batches = _all(loader)
    assert len(batches) == 4 and batches[0][0].shape == (16, 6, 8, 8)
    assert torch.cat([b[1] for b in batches]).tolist() == digits64["label"]
    again = _all(create_dataloader(stream, build_views("byol", size=8), batch_size=16, shuffle=False, seed=0))
    assert torch.equal(batches[2][0], again[2][0])
