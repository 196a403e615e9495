"""sslzoo.data sources: digits, image folders (with bad and odd images), parquet, error messages."""

import numpy as np
import pytest
from PIL import Image

from sslzoo.data import load_source
from sslzoo.data.sources import DIGITS_TEST_SIZE


def _write_folder(root, n_per_class=3, size=(40, 30)):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(n_per_class):
            arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"{i}.jpg", quality=90)
    rgb = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    rgb.convert("L").save(root / "cat" / "gray.png")
    rgb.convert("P").save(root / "cat" / "palette.png")
    rgb.convert("CMYK").save(root / "dog" / "cmyk.jpg")
    rgb.convert("RGBA").save(root / "dog" / "rgba.png")
    (root / "dog" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    return root


@pytest.fixture()
def image_folder(tmp_path):
    return _write_folder(tmp_path / "imgs")


def test_digits_fixed_split():
    from sklearn.datasets import load_digits

    train, test = load_source("digits", "train"), load_source("digits", "test")
    assert len(test) == DIGITS_TEST_SIZE and len(train) + len(test) == 1797
    assert train.features["label"].num_classes == 10
    img = train[0]["image"]
    assert img.mode == "RGB" and img.size == (8, 8)
    # The split is stratified: every class is in both splits in proportion.
    counts = np.bincount(test["label"], minlength=10)
    assert counts.min() >= 30 and counts.max() <= 40
    # Pixels are the original 0..16 levels scaled to 0..255, and labels match the original images.
    digits = load_digits()
    arr = np.asarray(img)[..., 0].astype(np.float64)
    matches = np.where(np.all(np.abs(digits.images * 255 / 16 - arr) <= 0.5, axis=(1, 2)))[0]
    assert len(matches) >= 1 and digits.target[matches[0]] == train[0]["label"]
    # Same split every time.
    assert load_source("digits", "test")["label"] == test["label"]


def test_digits_missing_split_names_found():
    with pytest.raises(ValueError, match=r"no split 'validation'.*\['test', 'train'\]"):
        load_source("digits", "validation")


def test_image_folder_resolves_with_labels(image_folder):
    ds = load_source(str(image_folder))
    assert set(ds.column_names) == {"image", "label"}
    assert ds.features["label"].names == ["cat", "dog"]
    assert len(ds) == 3 + 3 + 2 + 3  # 3 + gray + palette, 3 + cmyk + rgba + corrupt


def test_explicit_and_missing_columns(tmp_path):
    import datasets

    rows = {"img": [Image.new("RGB", (8, 8), (i, 0, 0)) for i in range(4)], "fine_label": [0, 1, 0, 1]}
    feats = datasets.Features({"img": datasets.Image(), "fine_label": datasets.Value("int64")})
    path = tmp_path / "data.parquet"
    datasets.Dataset.from_dict(rows, features=feats).to_parquet(str(path))
    ds = load_source(str(path))  # columns detected: img -> image, fine_label -> label
    assert ds.column_names == ["image", "label"] and ds["label"] == [0, 1, 0, 1]
    assert ds[1]["image"].getpixel((0, 0)) == (1, 0, 0)
    with pytest.raises(ValueError, match=r"no label column 'y'; columns found: \['img', 'fine_label'\]"):
        load_source(str(path), label_column="y")
    unlabelled = tmp_path / "u.parquet"
    datasets.Dataset.from_dict(
        {"img": rows["img"]}, features=datasets.Features({"img": datasets.Image()})
    ).to_parquet(str(unlabelled))
    assert load_source(str(unlabelled)).column_names == ["image"]
    with pytest.raises(ValueError, match=r"no label column .*columns found: \['img'\]"):
        load_source(str(unlabelled), require_labels=True)


def test_empty_folder_and_missing_split(tmp_path, image_folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"without images.*1 files found: notes.txt"):
        load_source(str(empty))
    with pytest.raises(ValueError, match=r"no split 'test'; splits found: \['train'\]"):
        load_source(str(image_folder), "test")


def test_unknown_hub_name_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True, raising=False)
    with pytest.raises(
        FileNotFoundError, match=r"Could not resolve source 'sslzoo-no-such/dataset'.*Offline"
    ):
        load_source("sslzoo-no-such/dataset")
