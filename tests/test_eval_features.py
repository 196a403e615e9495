"""Feature extraction: eval mode, no grad, gathering, safetensors cache."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from sslzoo.eval import extract_features, load_feature_cache


class _Views(Dataset):
    """Mimics sslzoo.data's eval loader: (list of one view, label)."""

    def __init__(self, n=37):
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(n, 3, 4, 4, generator=g), torch.arange(n) % 4

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return [self.x[i]], self.y[i]


def _encoder():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(48, 8), nn.BatchNorm1d(8), nn.Dropout(0.5))


def test_extract_matches_direct_forward_in_eval_mode(tmp_path):
    ds, enc = _Views(), _encoder()
    enc.train()
    feats, labels = extract_features(enc, DataLoader(ds, batch_size=10))
    assert enc.training  # mode restored
    with torch.no_grad():
        expected = enc.eval()(ds.x)
    torch.testing.assert_close(feats, expected)
    assert torch.equal(labels, ds.y) and feats.dtype == torch.float32 and not feats.requires_grad


def test_cache_roundtrip_is_safetensors_and_reused(tmp_path):
    ds, enc = _Views(), _encoder()
    path = tmp_path / "cache" / "train.safetensors"
    feats, labels = extract_features(enc, DataLoader(ds, batch_size=16), cache_path=path)
    assert path.read_bytes()[8:9] == b"{"  # safetensors header (8-byte length + JSON), not a pickle
    cached = load_feature_cache(path)
    assert torch.equal(cached[0], feats) and torch.equal(cached[1], labels)
    other = nn.Sequential(nn.Flatten(), nn.Linear(48, 8))  # a different model: the cache must win
    again, _ = extract_features(other, DataLoader(ds, batch_size=16), cache_path=path)
    assert torch.equal(again, feats)
    with pytest.warns(UserWarning, match="recomputing"):  # stale cache (different data set length)
        fresh, _ = extract_features(other, DataLoader(_Views(20), batch_size=16), cache_path=path)
    assert fresh.shape == (20, 8)


def test_accelerator_single_process_and_method_backbone():
    from accelerate import Accelerator

    ds, enc = _Views(), _encoder()
    acc = Accelerator(cpu=True)
    loader = acc.prepare(DataLoader(ds, batch_size=8))
    feats, labels = extract_features(enc, loader, acc)
    with torch.no_grad():
        expected = enc.eval()(ds.x)
    torch.testing.assert_close(feats, expected)
    assert torch.equal(labels, ds.y)


def test_bad_batches_raise_clear_errors():
    enc = _encoder()
    with pytest.raises(ValueError, match="one"):
        extract_features(enc, [([torch.zeros(2, 3, 4, 4)] * 2, torch.zeros(2))])
    with pytest.raises(ValueError, match="num_classes=0"):
        extract_features(nn.Identity(), [(torch.zeros(2, 3, 4, 4), torch.zeros(2))])
