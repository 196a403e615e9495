"""Linear probe (fast mode on features, and the augmented protocol on a frozen encoder)."""

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from sslzoo.eval import (
    evaluate_classifier,
    linear_probe,
    train_linear_head,
    train_linear_probe,
    write_metrics,
)


def _blobs(n_per_class, num_classes=5, dim=20, noise_seed=0):
    centres = torch.randn(num_classes, dim, generator=torch.Generator().manual_seed(0)) * 4
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    x = centres[y] + torch.randn(len(y), dim, generator=torch.Generator().manual_seed(100 + noise_seed))
    # Badly scaled, offset coordinates: the probe must cope (standardisation folded into the head).
    return x * torch.logspace(-2, 2, dim) + 50.0, y


def test_fast_probe_is_near_perfect_on_separable_features():
    x, y = _blobs(60)
    xt, yt = _blobs(20, noise_seed=1)
    res = linear_probe(x, y, xt, yt, epochs=30, lr=0.1, batch_size=64)
    assert res["top1"] >= 99.0 and res["train_top1"] >= 99.0
    assert res["top5"] == 100.0


def test_folded_head_applies_to_raw_features_and_full_batch_works():
    x, y = _blobs(40)
    head = train_linear_head(x, y, epochs=100, lr=0.5, batch_size=None)
    acc = (head(x).argmax(1) == y).float().mean().item()
    assert acc >= 0.99
    # The standardisation is folded in: a plain Linear on raw, badly scaled inputs.
    assert isinstance(head, nn.Linear) and head.weight.shape == (5, 20)


def test_probe_cannot_fit_unrelated_labels():
    x, y = _blobs(40)
    yr = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(3))]  # labels unrelated to x
    xt, yt = _blobs(40, noise_seed=5)
    res = linear_probe(x, yr, xt, yt, epochs=20, lr=0.1)
    assert res["top1"] < 60.0


def test_augmented_protocol_trains_head_only():
    torch.manual_seed(0)
    x, y = _blobs(30, dim=12)
    x = (x - x.mean(0)) / x.std(0)
    encoder = nn.Sequential(nn.Linear(12, 16), nn.BatchNorm1d(16), nn.Dropout(0.5))
    encoder.num_features = 16
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    clf = train_linear_probe(encoder, loader, num_classes=5, epochs=15, lr=0.5, log_fn=None)
    for k, v in encoder.state_dict().items():  # frozen: weights and BN running statistics unchanged
        assert torch.equal(v, before[k]), k
    res = evaluate_classifier(clf, DataLoader(TensorDataset(x, y), batch_size=50))
    assert res["top1"] >= 95.0 and res["num_samples"] == len(y)


def test_metrics_json_schema(tmp_path):
    rec = write_metrics(
        tmp_path / "m.json",
        protocol="linear",
        dataset="digits",
        top1=91.234567,
        top5=99.0,
        model="resnet18_cifar_simclust",
        command="python recipes/linear_probe.py",
        epochs=3,
    )
    assert json.loads((tmp_path / "m.json").read_text()) == rec
    assert rec["protocol"] == "linear" and rec["top1"] == rec["linear_top1"] == 91.2346 and rec["epochs"] == 3
    with pytest.raises(ValueError, match="protocol"):
        write_metrics(tmp_path / "x.json", protocol="probe", dataset="digits", top1=1.0)
