"""``create_model``: resolve a registry name to a timm encoder, optionally with pretrained weights.

Shaped after timm's ``_builder.py``: the registry says what a name is, :mod:`sslzoo.hub` finds and
verifies the weight file, and this module builds the timm model and puts the two together.
"""

from __future__ import annotations

import os
from typing import Any

import torch.nn as nn

from .backbones import ARCHS, create_backbone
from .registry import get_entry

__all__ = ["create_model"]


def create_model(name: str, pretrained: bool | str | os.PathLike = False, **kwargs: Any) -> nn.Module:
    """Create the timm encoder registered as ``name``.

    Args:
        name: ``{arch}_{method}`` with an optional ``.{tag}``, e.g. ``"resnet50_simclust.in1k"``.
        pretrained: ``False`` for random init; ``True`` for the named (or default) tag's weights; or a
            path to a weights file or a :func:`sslzoo.save_pretrained` directory.
        **kwargs: passed to ``timm.create_model`` unchanged; ``num_classes`` defaults to 0 (the encoder),
            ``num_classes=N`` gives a freshly initialised N-way classifier for fine-tuning.

    Returns:
        A timm model whose ``pretrained_cfg`` records the sslzoo name, method and tag.

    Example:
        >>> enc = sslzoo.create_model("resnet18_cifar_simclust")
        >>> enc(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 512])
    """
    entry, tag = get_entry(name)
    if pretrained is True and tag is None:
        tag = entry.default_tag
    kwargs.setdefault("num_classes", 0)

    if not pretrained:
        model = create_backbone(entry.arch, **kwargs)
    else:
        from .hub import load_pretrained

        # Load strictly into the plain encoder first (the layout the weights were saved in), then let timm
        # adapt them to the requested construction (classifier, in_chans, img_size, features_only, ...).
        encoder = create_backbone(entry.arch)
        load_pretrained(encoder, entry=entry, tag=tag, source=pretrained, num_classes=0)
        if set(kwargs) == {"num_classes"}:
            model = encoder
            if kwargs["num_classes"]:
                model.reset_classifier(kwargs["num_classes"])
        else:
            import timm

            spec = ARCHS[entry.arch]
            model = timm.create_model(
                spec.timm_name,
                pretrained=True,
                pretrained_cfg_overlay={"state_dict": encoder.state_dict(), "num_classes": 0},
                **{**spec.model_args, **kwargs},
            )

    model.pretrained_cfg = {
        **model.pretrained_cfg,
        "tag": tag or "",
        "sslzoo_name": f"{entry.name}.{tag}" if tag else entry.name,
        "sslzoo_method": entry.method,
    }
    if hasattr(model, "default_cfg"):
        model.default_cfg = model.pretrained_cfg
    return model
