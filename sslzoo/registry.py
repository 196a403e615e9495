"""The model registry: sslzoo names → (arch, method, pretrained weight sets).

A name is ``{arch}_{method}`` with an optional ``.{tag}`` that picks a pretrained weight set, as in timm's
``resnet50.a1_in1k``: ``resnet50_simclust``, ``resnet18_cifar_byol``, ``resnet50_simclust.in1k``.
The registry only describes; building lives in :mod:`sslzoo.builder`, files in :mod:`sslzoo.hub`.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any

from .backbones import ARCHS

__all__ = [
    "METHOD_NAMES",
    "ModelEntry",
    "PretrainedTag",
    "get_entry",
    "list_models",
    "list_pretrained",
    "register_entry",
    "split_name",
]

METHOD_NAMES: tuple[str, ...] = (
    "simclust",
    "simsiam",
    "byol",
    "simclr",
    "mocov3",
    "swav",
    "dino",
    "barlowtwins",
    "vicreg",
)

HF_ORG = "sslzoo"


@dataclass(frozen=True)
class PretrainedTag:
    """One pretrained weight set of an entry.

    Attributes:
        tag: the suffix after the dot in ``name.tag``.
        hf_hub_id: the Hugging Face Hub repo holding the save directory (timm's Hub format).
        revision: the pinned revision (branch, tag or commit) to download.
        filename: the weights file inside the repo.
        sha256: when set, the weights are verified against it before loading.
        dataset: the data set the weights were trained on.
        published: False for weight sets that are declared (with their recipe) but not trained yet.
        metrics: measured evaluation results, e.g. ``{"knn_top1": 91.2}``.
    """

    tag: str
    hf_hub_id: str
    revision: str = "main"
    filename: str = "model.safetensors"
    sha256: str | None = None
    dataset: str = ""
    published: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    recipe_config: str | None = None


@dataclass(frozen=True)
class ModelEntry:
    """A registered ``{arch}_{method}`` name.

    Attributes:
        name: the sslzoo name without tag.
        arch: a key of :data:`sslzoo.backbones.ARCHS`.
        method: one of :data:`METHOD_NAMES`.
        recipe_config: the recipe config (relative to the repository root) that trains this entry.
        tags: pretrained weight sets by tag.
        default_tag: the tag ``pretrained=True`` loads when the name carries none.
    """

    name: str
    arch: str
    method: str
    recipe_config: str
    tags: dict[str, PretrainedTag] = field(default_factory=dict)
    default_tag: str | None = None

    @property
    def hparams(self) -> dict[str, Any]:
        """The method's default hyper-parameters (head sizes, temperatures, views) for this arch."""
        from .methods import method_defaults

        return method_defaults(self.method, self.arch)

    @property
    def view_recipe(self) -> str:
        """The name of the default :mod:`sslzoo.data` view recipe for this entry."""
        return self.hparams["views"]

    def train_command(self, tag: str | None = None) -> str:
        """The recipe command that trains this entry (or the weight set ``tag``)."""
        config = self.recipe_config
        if tag is not None and self.tags[tag].recipe_config:
            config = self.tags[tag].recipe_config
        command = f"accelerate launch recipes/pretrain.py --config {config}"
        if (self.arch, self.method) not in _PAPER_CONFIGS and self.arch != _CONFIG_ARCH:
            command += f" --model.arch {self.arch}"
        return command


_ENTRIES: dict[str, ModelEntry] = {}


def register_entry(entry: ModelEntry, *, overwrite: bool = False) -> ModelEntry:
    """Add ``entry`` to the registry (tests use this to point an entry at a local Hub server)."""
    if entry.arch not in ARCHS:
        raise ValueError(f"Entry {entry.name!r} names unknown arch {entry.arch!r}; known: {sorted(ARCHS)}.")
    if entry.name in _ENTRIES and not overwrite:
        raise ValueError(f"{entry.name!r} is already registered; pass overwrite=True to replace it.")
    if entry.default_tag is not None and entry.default_tag not in entry.tags:
        raise ValueError(f"Entry {entry.name!r}: default_tag {entry.default_tag!r} is not one of its tags.")
    _ENTRIES[entry.name] = entry
    return entry


def split_name(name: str) -> tuple[str, str | None]:
    """``"resnet50_simclust.in1k"`` → ``("resnet50_simclust", "in1k")``."""
    base, _, tag = name.partition(".")
    return base, (tag or None)


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.6)
    if close:
        return "Did you mean " + " or ".join(repr(c) for c in close) + "?"
    return "See sslzoo.list_models() for every registered name."


def get_entry(name: str) -> tuple[ModelEntry, str | None]:
    """Resolve ``name`` (with optional ``.tag``) to its entry and tag.

    Raises:
        ValueError: for an unknown name (naming the closest registered ones) or an unknown tag (listing
            the entry's tags).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"A model name must be a non-empty string, got {name!r}.")
    base, tag = split_name(name)
    entry = _ENTRIES.get(base)
    if entry is None:
        raise ValueError(f"Unknown sslzoo model {base!r}. {_suggest(base, sorted(_ENTRIES))}")
    if tag is not None and tag not in entry.tags:
        known = ", ".join(f"{base}.{t}" for t in sorted(entry.tags)) or "none"
        raise ValueError(f"{base!r} has no pretrained tag {tag!r}. Tags that exist: {known}.")
    return entry, tag


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Registered names matching the fnmatch ``pattern``; with ``pretrained=True`` only those with tags,
    listed as ``name.tag`` (as timm's ``list_models(pretrained=True)`` does)."""
    if pretrained:
        return list_pretrained(pattern)
    return sorted(n for n in _ENTRIES if fnmatch.fnmatch(n, pattern))


def list_pretrained(pattern: str = "*") -> list[str]:
    """Every ``name.tag`` whose name or full ``name.tag`` matches ``pattern``."""
    names = []
    for entry in _ENTRIES.values():
        for tag in entry.tags:
            full = f"{entry.name}.{tag}"
            if fnmatch.fnmatch(full, pattern) or fnmatch.fnmatch(entry.name, pattern):
                names.append(full)
    return sorted(names)


# Recipe configs that train an arch other than resnet18_cifar; every other entry uses its method's CIFAR-10
# config with the arch overridden on the command line.
_PAPER_CONFIGS = {
    ("resnet50", "simclust"): "resnet50_simclust_in1k.yaml",
    ("resnet18", "simclust"): "resnet18_simclust_imagenette.yaml",
}
_CONFIG_ARCH = "resnet18_cifar"


def _recipe_config(arch: str, method: str) -> str:
    name = _PAPER_CONFIGS.get((arch, method), f"{_CONFIG_ARCH}_{method}_cifar10.yaml")
    return "recipes/configs/" + name


def _default_tags(arch: str, method: str) -> dict[str, PretrainedTag]:
    def tag(name: str, dataset: str, config: str) -> PretrainedTag:
        return PretrainedTag(
            tag=name,
            hf_hub_id=f"{HF_ORG}/{arch}_{method}.{name}",
            dataset=dataset,
            recipe_config=f"recipes/configs/{config}",
        )

    if method != "simclust":
        return {}
    return {
        "resnet50": {"in1k": tag("in1k", "imagenet-1k", "resnet50_simclust_in1k.yaml")},
        "resnet18": {
            "imagenette": tag("imagenette", "frgfm/imagenette", "resnet18_simclust_imagenette.yaml")
        },
        "resnet18_cifar": {"digits": tag("digits", "digits", "resnet18_cifar_simclust_digits.yaml")},
    }.get(arch, {})


def _register_defaults() -> None:
    for arch in ARCHS:
        for method in METHOD_NAMES:
            tags = _default_tags(arch, method)
            register_entry(
                ModelEntry(
                    name=f"{arch}_{method}",
                    arch=arch,
                    method=method,
                    recipe_config=_recipe_config(arch, method),
                    tags=tags,
                    default_tag=next(iter(tags), None),
                )
            )


_register_defaults()
