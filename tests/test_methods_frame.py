"""The method frame: registry, defaults, heads, schedules, global BatchNorm, collapse metrics."""

from __future__ import annotations

import math

import pytest
import timm
import torch
from torch import nn

from sslzoo.eval.collapse import effective_rank, embedding_std
from sslzoo.methods import METHODS, create_method, mean_over_pairs, method_defaults, view_pairs
from sslzoo.methods.heads import build_mlp
from sslzoo.methods.momentum import cosine_schedule, ema_update_, linear_ramp, momentum_copy
from sslzoo.nn import GlobalBatchNorm, convert_sync_batchnorm

VIEW_RECIPES = {"simclust", "byol", "simclr", "multicrop"}


@pytest.mark.parametrize("method", ["simsiam", "byol", "simclust"])
@pytest.mark.parametrize("arch", ["resnet50", "resnet18", "resnet18_cifar"])
def test_defaults_build_and_name_views(method, arch):
    hp = method_defaults(method, arch)
    assert hp["views"] in VIEW_RECIPES
    assert method in METHODS


def test_simclust_defaults_follow_the_paper():
    imnet = method_defaults("simclust", "resnet50")
    assert imnet["variant"] == "momentum" and imnet["uniformity_weight"] == 5.0
    assert imnet["ramp_epochs"] == (150.0, 180.0) and imnet["base_momentum"] == 0.99
    assert (imnet["proj_hidden_dim"], imnet["proj_dim"], imnet["pred_hidden_dim"]) == (4096, 512, 4096)
    nette = method_defaults("simclust", "resnet18")
    assert nette["variant"] == "simsiam" and nette["adaptive_temperature"] and nette["pca"]
    assert nette["ramp_epochs"] == (500.0, 600.0)
    assert method_defaults("simclust", "resnet18_cifar", variant="momentum")["variant"] == "momentum"


def test_create_method_from_arch_uses_defaults_and_ignores_views():
    m = create_method("simsiam", "resnet18_cifar", **method_defaults("simsiam", "resnet18_cifar"))
    assert m.projector[0].in_features == m.backbone.num_features == 512
    with pytest.raises(ValueError, match="Unknown method"):
        create_method("simsiamx", "resnet18_cifar")
    with pytest.raises(TypeError, match="list of view"):
        m(torch.randn(2, 3, 32, 32))


def test_heads_layout():
    proj = build_mlp([8, 16, 16, 4], last_norm=True, last_affine=False)
    kinds = [type(x).__name__ for x in proj]
    assert kinds == [
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Linear",
        "BatchNorm1d",
    ]
    assert proj[-1].weight is None and proj[0].bias is None and proj[-2].bias is None
    pred = build_mlp([4, 8, 4])
    assert pred[-1].bias is not None and pred(torch.randn(3, 4)).shape == (3, 4)


def test_view_pairs_and_mean():
    assert view_pairs(3) == [(0, 1), (0, 2), (1, 2)]
    assert view_pairs(4, ordered=True, num_targets=2) == [(1, 0), (2, 0), (3, 0), (0, 1), (2, 1), (3, 1)]
    out = mean_over_pairs(lambda i, j: {"x": torch.tensor(float(i + j))}, view_pairs(3))
    assert out["x"].item() == pytest.approx((1 + 2 + 3) / 3)


def test_schedules_and_ema():
    assert cosine_schedule(0, 0.99, 1.0) == pytest.approx(0.99)
    assert cosine_schedule(0.5, 0.99, 1.0) == pytest.approx(0.995)
    assert cosine_schedule(1, 0.99, 1.0) == pytest.approx(1.0)
    assert [linear_ramp(e, 150, 180) for e in (0, 150, 165, 180, 300)] == [0, 0, 0.5, 1, 1]
    online = nn.Linear(3, 2)
    target = momentum_copy(online)
    assert not any(p.requires_grad for p in target.parameters())
    with torch.no_grad():
        online.weight.add_(1.0)
    before = target.weight.clone()
    ema_update_(target, online, 0.9)
    assert torch.allclose(target.weight, 0.9 * before + 0.1 * online.weight)


def test_global_batchnorm_is_batchnorm_in_one_process():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(4)
    model = convert_sync_batchnorm(nn.Sequential(nn.Conv2d(3, 4, 3), bn))
    assert isinstance(model[1], GlobalBatchNorm) and model[1].weight is bn.weight
    ref = nn.BatchNorm2d(4)
    x = torch.randn(5, 4, 6, 6)
    assert torch.allclose(model[1](x), ref(x), atol=1e-6)
    assert torch.allclose(model[1].running_var, ref.running_var)


def test_methods_sync_batchnorm_flag():
    m = create_method(
        "byol",
        timm.create_model("test_resnet", num_classes=0),
        proj_hidden_dim=8,
        proj_dim=4,
        pred_hidden_dim=8,
        sync_batchnorm=True,
    )
    bns = [x for x in m.modules() if isinstance(x, nn.modules.batchnorm._BatchNorm)]
    assert bns and all(isinstance(x, GlobalBatchNorm) for x in bns)


def test_collapse_metrics():
    eye = torch.eye(8)
    assert effective_rank(eye).item() == pytest.approx(8, rel=1e-4)
    assert effective_rank(torch.ones(8, 8)).item() == pytest.approx(1, rel=1e-4)
    assert embedding_std(torch.ones(8, 4)).item() == pytest.approx(0, abs=1e-7)
    # rows ±e_k: normalised, each dimension has values {1, -1, 0...}; compare with an explicit std.
    z = torch.cat([eye, -eye])
    expected = math.sqrt(2 / (16 - 1))
    assert embedding_std(z).item() == pytest.approx(expected, rel=1e-5)
