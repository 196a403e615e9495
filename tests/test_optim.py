"""LARS, parameter groups, linear lr scaling and the warm-up + cosine schedule."""

import math

import pytest
import torch
from torch import nn

from sslzoo.optim import LARS, build_optimizer, lr_at_step, param_groups, scale_lr, set_lr


def _model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 2 * 2, 2), nn.LayerNorm(2)
    )


def test_param_groups_exclude_bias_and_norm():
    model = _model()
    model[0].weight.requires_grad_(False)  # frozen parameters (momentum targets) are left out
    groups = param_groups(model, weight_decay=0.1)
    decay, no_decay = groups
    assert {id(p) for p in decay["params"]} == {id(model[3].weight)}
    expected = {
        id(p) for p in (model[0].bias, model[1].weight, model[1].bias, model[3].bias, model[4].weight)
    }
    expected.add(id(model[4].bias))
    assert {id(p) for p in no_decay["params"]} == expected
    assert (decay["weight_decay"], decay["lars_adaptation"]) == (0.1, True)
    assert (no_decay["weight_decay"], no_decay["lars_adaptation"]) == (0.0, False)
    everything = param_groups(model, 0.1, exclude_bias_and_norm=False)
    assert len(everything) == 1 and len(everything[0]["params"]) == 7


def test_param_groups_follow_timm_no_weight_decay():
    import timm

    vit = timm.create_model("vit_tiny_patch16_224", num_classes=0, img_size=32, patch_size=16)
    wrapper = nn.Module()
    wrapper.backbone = vit
    _, no_decay = param_groups(wrapper, 0.05)
    ids = {id(p) for p in no_decay["params"]}
    assert id(vit.pos_embed) in ids and id(vit.cls_token) in ids


def _lars_reference(w, g, buf, lr, wd, eta, momentum, adapt):
    """Independent LARS update (You et al. 2017, as in BYOL / SimSiam)."""
    u = g + wd * w
    if adapt and w.norm() > 0 and u.norm() > 0:
        u = u * (eta * w.norm() / u.norm())
    buf = u if buf is None else momentum * buf + u
    return w - lr * buf, buf


def test_lars_matches_reference_update():
    torch.manual_seed(1)
    w = nn.Parameter(torch.randn(5, 3))
    b = nn.Parameter(torch.randn(5))
    opt = LARS(
        [{"params": [w], "weight_decay": 1e-2, "lars_adaptation": True},
         {"params": [b], "weight_decay": 0.0, "lars_adaptation": False}],
        lr=0.5, momentum=0.9, trust_coefficient=0.02,
    )  # fmt: skip
    rw, rb, bw, bb = w.detach().clone(), b.detach().clone(), None, None
    for _ in range(3):
        gw, gb = torch.randn(5, 3), torch.randn(5)
        w.grad, b.grad = gw.clone(), gb.clone()
        opt.step()
        rw, bw = _lars_reference(rw, gw, bw, 0.5, 1e-2, 0.02, 0.9, True)
        rb, bb = _lars_reference(rb, gb, bb, 0.5, 0.0, 0.02, 0.9, False)
        torch.testing.assert_close(w.detach(), rw)
        torch.testing.assert_close(b.detach(), rb)


def test_lars_zero_weight_is_not_stuck():
    w = nn.Parameter(torch.zeros(3))
    opt = LARS([{"params": [w], "weight_decay": 0.0, "lars_adaptation": True}], lr=1.0, momentum=0.0)
    w.grad = torch.ones(3)
    opt.step()
    torch.testing.assert_close(w.detach(), -torch.ones(3))  # trust ratio falls back to 1


def test_scale_lr():
    assert scale_lr(0.3, 2048) == pytest.approx(2.4)
    assert scale_lr(0.05, 128) == pytest.approx(0.025)
    assert scale_lr(2.0, 512, scaling="none") == 2.0
    with pytest.raises(ValueError, match="linear"):
        scale_lr(1.0, 256, scaling="sqrt")


def test_warmup_cosine_schedule():
    total, warm, peak, floor = 100, 10, 1.0, 0.1
    lrs = [lr_at_step(s, total, peak, warmup_steps=warm, min_lr=floor) for s in range(total)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10], strict=False))
    for s in (10, 40, 99):
        t = (s - warm) / (total - warm)
        assert lrs[s] == pytest.approx(floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * t)))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lr_at_step(50, total, peak, warmup_steps=warm, schedule="constant") == peak


@pytest.mark.parametrize(
    "name, cls", [("lars", LARS), ("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)]
)
def test_build_optimizer_and_set_lr(name, cls):
    model = _model()
    opt = build_optimizer(model, name, 0.2, weight_decay=1e-4)
    assert isinstance(opt, cls)
    assert [g["weight_decay"] for g in opt.param_groups] == [1e-4, 0.0]
    set_lr(opt, 0.05)
    assert all(g["lr"] == 0.05 for g in opt.param_groups)
    x = torch.randn(2, 3, 4, 4)
    model(x).sum().backward()
    before = model[3].weight.detach().clone()
    opt.step()
    assert not torch.equal(before, model[3].weight)
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer(model, "adam", 0.1)
