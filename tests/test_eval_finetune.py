"""Fine-tuning pieces: layer-wise lr decay groups and a few optimisation steps."""

import pytest
import timm
import torch
from torch.utils.data import DataLoader, TensorDataset

from sslzoo.eval import build_finetune_optimizer, evaluate_classifier, finetune_one_epoch, param_groups_lrd


def _tiny_vit(num_classes=3):
    torch.manual_seed(0)
    return timm.create_model(
        "vit_tiny_patch16_224",
        img_size=16,
        patch_size=4,
        depth=3,
        embed_dim=48,
        num_heads=3,
        num_classes=num_classes,
        pretrained=False,
    )


def test_layer_decay_scales_follow_depth():
    model = _tiny_vit()
    groups = param_groups_lrd(model, lr=1e-3, weight_decay=0.05, layer_decay=0.5)
    by_param = {id(p): g for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    # timm numbers layers: 0 = patch embedding / tokens, 1..depth = blocks, depth + 1 = final norm / head.
    assert by_param[id(named["head.weight"])]["lr"] == pytest.approx(1e-3)
    assert by_param[id(named["blocks.2.mlp.fc1.weight"])]["lr"] == pytest.approx(1e-3 * 0.5)
    assert by_param[id(named["blocks.0.mlp.fc1.weight"])]["lr"] == pytest.approx(1e-3 * 0.5**3)
    assert by_param[id(named["patch_embed.proj.weight"])]["lr"] == pytest.approx(1e-3 * 0.5**4)
    assert by_param[id(named["blocks.0.mlp.fc1.bias"])]["weight_decay"] == 0.0
    assert by_param[id(named["pos_embed"])]["weight_decay"] == 0.0
    assert by_param[id(named["blocks.0.mlp.fc1.weight"])]["weight_decay"] == 0.05
    assert sum(len(g["params"]) for g in groups) == len(named)
    flat = param_groups_lrd(model, lr=1e-3, layer_decay=None)
    assert {g["lr"] for g in flat} == {1e-3}


def _synthetic(n=48, num_classes=3):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % num_classes
    colours = torch.eye(3)[y][:, :, None, None]  # class = dominant colour channel
    return colours + 0.3 * torch.randn(n, 3, 16, 16, generator=g), y


def test_a_few_steps_lower_the_loss():
    x, y = _synthetic()
    model, lr, decay = _tiny_vit(), 3e-3, 0.75
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=False)
    eval_loader = DataLoader(TensorDataset(x, y), batch_size=48)
    before = evaluate_classifier(model, eval_loader)["loss"]
    opt, sched = build_finetune_optimizer(
        model, lr, weight_decay=0.05, layer_decay=decay, total_steps=12, warmup_steps=2
    )
    losses = []
    for _ in range(4):
        losses += finetune_one_epoch(model, loader, opt, sched, label_smoothing=0.1, max_grad_norm=5.0)
    after = evaluate_classifier(model, eval_loader)
    assert len(losses) == 12
    assert after["loss"] < before - 0.2, (before, after)
    assert after["top1"] > 60.0
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)  # cosine reached its end
