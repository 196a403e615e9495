"""Encoders: the timm architectures sslzoo trains, plus small-image ResNets.

Every backbone is a plain timm model built with ``num_classes=0`` so that ``forward`` returns pooled
features of size ``model.num_features`` and ``reset_classifier``/``features_only``/``pretrained_cfg``
behave as in timm.

Small-image archs (``resnet18_cifar``, ``resnet50_cifar``) follow the CIFAR adaptation of ResNet used by
SimCLR (Chen et al., 2020, appendix B.9), solo-learn and lightly: a 3x3 stride-1 first convolution and no
max-pool, so 32-64 px inputs keep their spatial detail. They are registered as timm models when sslzoo is
imported, so ``timm.create_model("resnet18_cifar")`` works in a process that has imported sslzoo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import timm
import torch.nn as nn
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.resnet import BasicBlock, Bottleneck, ResNet

__all__ = ["ARCHS", "ArchSpec", "create_backbone", "list_archs"]


@dataclass(frozen=True)
class ArchSpec:
    """How to build one encoder with timm.

    Attributes:
        timm_name: the timm architecture name passed to ``timm.create_model``.
        model_args: extra constructor arguments (recorded as ``model_args`` in timm's ``config.json``).
        input_size: the (C, H, W) the arch is meant for; small-image archs default to 32 px.
        small_image: True for stems built for 32-64 px inputs.
    """

    timm_name: str
    model_args: dict[str, Any] = field(default_factory=dict)
    input_size: tuple[int, int, int] = (3, 224, 224)
    small_image: bool = False


ARCHS: dict[str, ArchSpec] = {
    "resnet18": ArchSpec("resnet18"),
    "resnet50": ArchSpec("resnet50"),
    "vit_small_patch16_224": ArchSpec("vit_small_patch16_224"),
    "resnet18_cifar": ArchSpec("resnet18_cifar", input_size=(3, 32, 32), small_image=True),
    "resnet50_cifar": ArchSpec("resnet50_cifar", input_size=(3, 32, 32), small_image=True),
}


def list_archs() -> list[str]:
    return sorted(ARCHS)


def create_backbone(arch: str, **timm_kwargs: Any) -> nn.Module:
    """Build the encoder for ``arch`` as a timm model (``num_classes=0`` unless given).

    Args:
        arch: a key of :data:`ARCHS`.
        **timm_kwargs: passed to ``timm.create_model`` unchanged (``num_classes``, ``in_chans``,
            ``drop_path_rate``, ``img_size``, ``features_only``, ...).
    """
    if arch not in ARCHS:
        raise ValueError(f"Unknown sslzoo arch {arch!r}; known archs: {', '.join(list_archs())}.")
    spec = ARCHS[arch]
    kwargs = {"num_classes": 0, **spec.model_args, **timm_kwargs}
    return timm.create_model(spec.timm_name, pretrained=False, **kwargs)


def _small_image_cfg(url: str = "") -> dict[str, Any]:
    return {
        "url": url,
        "num_classes": 0,
        "input_size": (3, 32, 32),
        "pool_size": (4, 4),
        "crop_pct": 1.0,
        "interpolation": "bicubic",
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
        "first_conv": "conv1",
        "classifier": "fc",
    }


class CifarResNet(ResNet):
    """timm ResNet whose stem is a single 3x3 stride-1 conv without max-pool (state-dict keys unchanged)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        in_chans = self.conv1.in_channels
        self.conv1 = nn.Conv2d(
            in_chans, self.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False
        )
        self.maxpool = nn.Identity()
        # timm's feature_info reductions describe the ImageNet stem; the small stem downsamples 4x less.
        for info in self.feature_info:
            info["reduction"] = max(1, info["reduction"] // 4)


def _create_cifar_resnet(
    variant: str, block: type[nn.Module], layers: tuple[int, ...], pretrained: bool = False, **kwargs: Any
) -> ResNet:
    # The default cfgs name no URL, so `pretrained` only loads when timm was given a source
    # ("hf-hub:"/"local-dir:" names, pretrained_cfg_overlay); weights come from sslzoo's hub.
    return build_model_with_cfg(CifarResNet, variant, pretrained, block=block, layers=layers, **kwargs)


# timm's register_model reads the defining module's `default_cfgs`.
default_cfgs = generate_default_cfgs(
    {"resnet18_cifar": _small_image_cfg(), "resnet50_cifar": _small_image_cfg()}
)


@register_model
def resnet18_cifar(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-18 with a CIFAR stem (3x3 stride-1 conv, no max-pool) for 32-64 px inputs."""
    return _create_cifar_resnet("resnet18_cifar", BasicBlock, (2, 2, 2, 2), pretrained, **kwargs)


@register_model
def resnet50_cifar(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-50 with a CIFAR stem (3x3 stride-1 conv, no max-pool) for 32-64 px inputs."""
    return _create_cifar_resnet("resnet50_cifar", Bottleneck, (3, 4, 6, 3), pretrained, **kwargs)
