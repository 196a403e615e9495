"""Each method lowers its loss on a fixed batch in a few steps, without NaN, and logs its signals."""

from __future__ import annotations

import pytest
import timm
import torch

from sslzoo.methods import create_method

TINY = {"proj_hidden_dim": 64, "proj_dim": 32, "pred_hidden_dim": 32}
CASES = {
    "simsiam": ("simsiam", TINY, {"emb_std", "emb_rank"}),
    "byol": ("byol", TINY, {"emb_std", "emb_rank", "momentum"}),
    "simclust_simsiam": (
        "simclust",
        {**TINY, "variant": "simsiam", "adaptive_temperature": True, "pca": True, "ramp_epochs": (0, 2)},
        {"emb_std", "emb_rank", "similarity", "cross_entropy", "uniformity", "q_entropy", "scale"},
    ),
    "simclust_momentum": (
        "simclust",
        {**TINY, "variant": "momentum", "ramp_epochs": (0, 2)},
        {
            "emb_std",
            "emb_rank",
            "similarity",
            "cross_entropy",
            "uniformity",
            "q_entropy",
            "scale",
            "momentum",
        },
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_few_steps_lower_loss(name):
    method_name, hparams, log_keys = CASES[name]
    torch.manual_seed(0)
    method = create_method(method_name, timm.create_model("test_resnet", num_classes=0), **hparams)
    method.set_progress(1, 10)  # SimClust: scale 0.5, so every term is trained
    g = torch.Generator().manual_seed(0)
    views = [torch.randn(16, 3, 16, 16, generator=g) for _ in range(2)]
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    losses = []
    for step in range(6):
        out = method(views)
        assert log_keys <= set(out), f"missing logs {log_keys - set(out)}"
        assert all(not v.requires_grad for k, v in out.items() if k != "loss")
        assert all(torch.isfinite(v).all() for v in out.values())
        losses.append(out["loss"].item())
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        method.on_step_end(1 + step / 100, 10)
    assert losses[-1] < losses[0], losses
