"""The six baseline methods on the frame: defaults, training steps, collapse logs, schedules and state."""

from __future__ import annotations

import inspect
import math

import pytest
import timm
import torch

from sslzoo.data import VIEW_RECIPES
from sslzoo.methods import METHODS, create_method, method_defaults

BASELINES = ["simclr", "mocov3", "swav", "dino", "barlowtwins", "vicreg"]
TINY = {
    "simclr": {"proj_hidden_dim": 32, "proj_dim": 16},
    "mocov3": {"proj_hidden_dim": 32, "proj_dim": 16, "pred_hidden_dim": 32, "temperature": 0.2},
    "swav": {"proj_hidden_dim": 32, "proj_dim": 16, "num_prototypes": 10, "freeze_prototypes_iters": 0},
    "dino": {"out_dim": 32, "hidden_dim": 32, "bottleneck_dim": 8, "freeze_last_layer_epochs": 0},
    "barlowtwins": {"proj_hidden_dim": 32, "proj_dim": 16},
    "vicreg": {"proj_hidden_dim": 32, "proj_dim": 16},
}
MULTICROP = {"swav", "dino"}


def _backbone() -> torch.nn.Module:
    return timm.create_model("test_resnet", num_classes=0)


def _views(method: str, batch: int = 8, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    views = [torch.randn(batch, 3, 16, 16, generator=g) for _ in range(2)]
    if method in MULTICROP:
        views += [torch.randn(batch, 3, 8, 8, generator=g) for _ in range(2)]
    return views


@pytest.mark.parametrize("method", BASELINES)
@pytest.mark.parametrize("arch", ["resnet50", "resnet18_cifar", "vit_small_patch16_224"])
def test_defaults_are_constructor_arguments_and_known_views(method: str, arch: str) -> None:
    hp = method_defaults(method, arch)
    assert hp.pop("views") in VIEW_RECIPES
    # Every default must be accepted by the constructor (building the real heads is too slow here).
    inspect.signature(METHODS[method]).bind("backbone", **hp)


def test_paper_defaults() -> None:
    assert method_defaults("simclr", "resnet50")["temperature"] == 0.1
    assert method_defaults("mocov3", "resnet50")["temperature"] == 1.0
    vit = method_defaults("mocov3", "vit_small_patch16_224")
    assert vit["temperature"] == 0.2 and vit["freeze_patch_embed"]
    assert method_defaults("swav", "resnet50")["num_prototypes"] == 3000
    dino_vit = method_defaults("dino", "vit_small_patch16_224")
    assert dino_vit["teacher_temp"] == 0.07 and dino_vit["warmup_teacher_temp_epochs"] == 30
    assert not dino_vit["use_bn_in_head"]
    assert method_defaults("barlowtwins", "resnet50")["lambda_"] == 0.0051
    assert method_defaults("vicreg", "resnet50")["proj_dim"] == 8192


@pytest.mark.parametrize("method", BASELINES)
def test_a_few_steps_lower_the_loss_and_log_collapse_signals(method: str) -> None:
    torch.manual_seed(0)
    model = create_method(method, _backbone(), **TINY[method])
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    views = _views(method)
    losses = []
    for step in range(4):
        out = model(views)
        assert torch.isfinite(out["loss"]), out
        for key, value in out.items():
            assert key == "loss" or not value.requires_grad, key
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        model.on_step_end((step + 1) / 10, 10.0)
        losses.append(out["loss"].item())
    assert 0 < out["emb_std"].item() <= 1 and 1 <= out["emb_rank"].item() <= 8
    assert losses[-1] < 0.97 * losses[0], losses
    assert all(math.isfinite(v) for v in losses)
    heads = [k for k in model.state_dict() if not k.startswith("backbone.")]
    assert heads


def test_swav_prototypes_frozen_then_trained_and_normalised() -> None:
    torch.manual_seed(0)
    model = create_method("swav", _backbone(), **{**TINY["swav"], "freeze_prototypes_iters": 1})
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for step in range(2):
        out = model(_views("swav"))
        before = model.prototypes.weight.detach().clone()
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        changed = not torch.equal(before, model.prototypes.weight)
        assert changed == (step == 1), f"step {step}: frozen={out['prototypes_frozen']}"
        model.on_step_end(step + 1, 10)
    model(_views("swav"))  # a training forward re-normalises the prototypes
    torch.testing.assert_close(model.prototypes.weight.norm(dim=1), torch.ones(10))


def test_swav_queue_fills_then_enters_sinkhorn() -> None:
    torch.manual_seed(0)
    model = create_method("swav", _backbone(), **{**TINY["swav"], "queue_length": 16, "queue_start_epoch": 1})
    model.set_progress(0.5, 10)
    assert model(_views("swav"))["queue_used"] == 0 and model._queue is None  # before queue_start_epoch
    model.set_progress(1.0, 10)
    used = [model(_views("swav", seed=s))["queue_used"].item() for s in range(3)]
    assert used == [0.0, 0.0, 1.0]  # 8 rows per batch: full after two batches
    assert model._queue.shape == (2, 16, 16)


def test_dino_centre_temperature_and_last_layer_freeze() -> None:
    torch.manual_seed(0)
    hp = dict(TINY["dino"], freeze_last_layer_epochs=1, teacher_temp=0.07, warmup_teacher_temp_epochs=2)
    model = create_method("dino", _backbone(), **hp)
    views = _views("dino")
    with torch.no_grad():  # the teacher sees the two global crops only; c = 0.9·0 + 0.1·their mean
        expected = 0.1 * model.teacher_head(model.teacher_backbone(torch.cat(views[:2]))).mean(
            0, keepdim=True
        )
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    out = model(views)
    torch.testing.assert_close(model.center, expected)
    assert out["teacher_temp"].item() == pytest.approx(0.04) and out["last_layer_frozen"] == 1
    v_before = model.head.last_layer.weight_v.detach().clone()
    opt.zero_grad()
    out["loss"].backward()
    opt.step()
    assert torch.equal(v_before, model.head.last_layer.weight_v)
    teacher_before = [p.detach().clone() for p in model.teacher_head.parameters()]
    model.on_step_end(1.0, 10)
    assert any(
        not torch.equal(a, b) for a, b in zip(teacher_before, model.teacher_head.parameters(), strict=True)
    )
    out = model(views)
    assert out["teacher_temp"].item() == pytest.approx(0.055) and out["last_layer_frozen"] == 0


def test_mocov3_momentum_schedule_and_frozen_patch_embedding() -> None:
    vit = timm.create_model("test_vit", num_classes=0)
    model = create_method("mocov3", vit, **TINY["mocov3"], freeze_patch_embed=True)
    assert not any(p.requires_grad for p in model.backbone.patch_embed.parameters())
    model.set_progress(5, 10)
    assert model.momentum == pytest.approx(1 - (1 - 0.99) * 0.5)
    online = [p.detach().clone() for p in model.projector.parameters()]
    with torch.no_grad():
        for p in model.projector.parameters():
            p.add_(1.0)
    model.on_step_end(5, 10)
    m = 1 - (1 - 0.99) * 0.5
    for target, before in zip(model.momentum_projector.parameters(), online, strict=True):
        torch.testing.assert_close(target, m * before + (1 - m) * (before + 1.0))


def test_multicrop_requires_global_views_first() -> None:
    model = create_method("dino", _backbone(), **TINY["dino"])
    views = _views("dino")
    with pytest.raises(ValueError, match="global"):
        model(views[2:] + views[:2])


def test_barlow_and_vicreg_log_their_terms() -> None:
    for method, terms in [
        ("barlowtwins", {"invariance", "redundancy"}),
        ("vicreg", {"invariance", "variance"}),
    ]:
        out = create_method(method, _backbone(), **TINY[method])(_views(method))
        assert terms <= set(out)


def test_simclr_embedding_is_normalised_inside_the_loss() -> None:
    # Scaling the projector output must not change NT-Xent (cosine similarity).
    torch.manual_seed(0)
    model = create_method("simclr", _backbone(), **TINY["simclr"]).eval()
    views = _views("simclr")
    loss = model(views)["loss"]
    with torch.no_grad():
        model.projector[-1].weight.mul_(3.0)
        model.projector[-1].bias.mul_(3.0)
    torch.testing.assert_close(model(views)["loss"], loss)
