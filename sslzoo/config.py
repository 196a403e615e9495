"""Typed configuration for the pretraining recipe.

A run is described by one :class:`PretrainConfig`, a tree of dataclasses. YAML files map onto it key by key
(``optim: {name: lars, base_lr: 0.3}``) and command-line overrides use the same paths with dots::

    python recipes/pretrain.py --config recipes/configs/resnet18_simclust_cifar10.yaml \
        --optim.base_lr 0.1 --train.epochs 20 --output-dir runs/x --model.hparams.tau_teacher 0.05

Dashes in a key are read as underscores (``--output-dir`` is ``output_dir``). Values are parsed as YAML
scalars/flow collections (``true``, ``null``, ``1e-3``, ``[0.9, 0.999]``) and then checked against the field's
type. An unknown key is an error that lists the valid keys of its section. Free-form sections (``model.hparams``,
``data.view_params``, ``data.source_kwargs``) accept any sub-key; their values are handed to the library
(``create_method``, ``build_views``, ``load_source``), which reject what they do not know.

The layout follows the config trees of timm's ``train.py`` and lightly's benchmarks, with sections instead of
one flat namespace so that YAML files read like the paper's hyper-parameter tables.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ConfigError",
    "DataConfig",
    "KnnConfig",
    "ModelConfig",
    "OptimConfig",
    "PretrainConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "parse_cli",
    "save_config",
    "valid_keys",
]


class ConfigError(ValueError):
    """A configuration file or command-line override that does not fit :class:`PretrainConfig`."""


@dataclass
class DataConfig:
    """Where images come from and how views are made (see :mod:`sslzoo.data`)."""

    source: str = "digits"
    """A ``sslzoo.data.load_source`` string: ``digits``, a Hub data set name, a local folder or parquet file."""
    train_split: str = "train"
    image_size: int = 32
    views: str | None = None
    """View recipe for ``sslzoo.data.build_views``; ``null`` uses the method's default (``method_defaults``)."""
    view_params: dict[str, Any] = field(default_factory=lambda: {"min_scale": 0.4})
    """Extra keyword arguments for ``build_views``; the default's larger minimum crop keeps 8x8 digits legible."""
    source_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for ``load_source``."""
    batch_size: int = 128
    """Global batch per optimizer step: processes x per-process batch x gradient-accumulation steps."""
    num_workers: int = 0
    """DataLoader workers per process. Exact resume is only guaranteed with 0 (augmentation RNG in-process)."""


@dataclass
class ModelConfig:
    """The SSL method and its encoder (see :func:`sslzoo.methods.create_method`)."""

    method: str = "simclust"
    arch: str = "resnet18_cifar"
    hparams: dict[str, Any] = field(
        default_factory=lambda: {"ramp_epochs": [2.5, 3.5], "proj_last_bn": False}
    )
    """Overrides of ``sslzoo.methods.method_defaults(method, arch)``; the saved config holds the merged set."""
    sync_batchnorm: bool | None = None
    """Global-batch BatchNorm; ``null`` = automatic (on when several processes run)."""
    channels_last: bool = False


@dataclass
class OptimConfig:
    """Optimizer and learning-rate schedule (see :mod:`sslzoo.optim`)."""

    name: str = "sgd"
    """One of ``lars``, ``sgd``, ``adamw``."""
    base_lr: float = 0.1
    lr_scaling: str = "linear"
    """``linear``: lr = base_lr x batch_size / 256 (Goyal et al. 2017); ``none``: lr = base_lr."""
    weight_decay: float = 5e-4
    momentum: float = 0.9
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    trust_coefficient: float = 0.02
    """LARS trust coefficient eta (You et al. 2017): 1e-3 in the ImageNet papers; 0.02 (solo-learn's small-data
    value) lets short runs move the weights at all."""
    exclude_bias_and_norm: bool = True
    """Biases and normalisation parameters get no weight decay and no LARS adaptation."""
    schedule: str = "cosine"
    """``cosine`` (with linear warm-up) or ``constant`` (with linear warm-up)."""
    warmup_epochs: float = 0.5
    min_lr_ratio: float = 0.0
    """Final learning rate as a fraction of the peak learning rate."""


@dataclass
class TrainConfig:
    """The loop: length, precision, accumulation, clipping, checkpoints and logging."""

    epochs: int = 4
    max_steps: int | None = None
    """Stop (with a checkpoint) after this many optimizer steps in total; schedules still follow ``epochs``."""
    grad_accum_steps: int = 1
    clip_grad_norm: float | None = None
    mixed_precision: str = "no"
    """Accelerate mixed precision: ``no``, ``bf16`` or ``fp16`` (``fp16`` needs a GPU)."""
    cpu: bool = False
    """Force CPU even when an accelerator is present."""
    log_every: int = 10
    """Steps between tracker logs."""
    checkpoint_every: int = 1
    """Epochs between checkpoints (one is always written at the end); 0 = only at the end."""
    checkpoint_every_steps: int = 0
    """Additionally checkpoint every this many optimizer steps; 0 = off."""
    keep_checkpoints: int = 2
    tracker: str = "auto"
    """``auto`` (TensorBoard when installed, else JSON lines), ``tensorboard``, ``jsonl`` or ``none``."""
    progress_bar: bool = True
    find_unused_parameters: bool = False
    """Passed to DistributedDataParallel when several processes run."""


@dataclass
class KnnConfig:
    """The weighted kNN monitor (Wu et al. 2018): top-1 on ``test_split`` with ``train_split`` as memory bank."""

    every: int = 0
    """Epochs between kNN evaluations during training; 0 = only before and after training."""
    k: int = 20
    temperature: float = 0.07
    train_split: str = "train"
    test_split: str = "test"
    batch_size: int = 256
    enabled: bool = True


@dataclass
class PretrainConfig:
    """Everything one pretraining run needs.

    The defaults are the embedded default job (``python recipes/pretrain.py`` with no arguments, also
    ``recipes/configs/resnet18_cifar_simclust_digits.yaml``): SimClust on ``digits`` at 32 px with the
    small-image ResNet-18, batch 128, 4 epochs, SGD, on CPU. Config files start from these defaults, so the
    shipped ones set every key that matters for their recipe.
    """

    name: str = "resnet18_cifar_simclust_digits"
    """Run name; the output directory defaults to ``outputs/<name>-<time>``."""
    seed: int = 0
    output_dir: str | None = None
    resume: str | None = None
    """``latest`` (this run's newest checkpoint) or a run / checkpoints / checkpoint directory."""
    publish: str | None = None
    """After training: ``local`` (the local hub folder) or ``ORG/NAME`` (the Hugging Face Hub)."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    knn: KnnConfig = field(default_factory=KnnConfig)


_CHOICES: dict[str, tuple[str, ...]] = {
    "optim.name": ("lars", "sgd", "adamw"),
    "optim.lr_scaling": ("linear", "none"),
    "optim.schedule": ("cosine", "constant"),
    "train.mixed_precision": ("no", "bf16", "fp16"),
    "train.tracker": ("auto", "tensorboard", "jsonl", "none"),
}


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def valid_keys(cls: type = PretrainConfig, prefix: str = "") -> list[str]:
    """All dotted keys of a config class, e.g. ``["name", ..., "optim.base_lr", ...]``."""
    keys = []
    hints = _hints(cls)
    for name in _fields(cls):
        if _is_section(hints[name]):
            keys.extend(valid_keys(hints[name], f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def _unknown_key_error(key: str, section_cls: type, prefix: str) -> ConfigError:
    keys = valid_keys(section_cls, prefix)
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"unknown config key {key!r}.{hint} Valid keys: {', '.join(keys)}")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert where the conversion is lossless."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} fits none of {tp}")
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:  # PyYAML reads "1e-6" (no dot) as a string
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key} must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key} must be a string, got {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return [_coerce(yaml.safe_load(v) if isinstance(v, str) else v, item_tp, key) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
        return dict(value)
    raise ConfigError(f"{key}: unsupported annotation {tp}")  # pragma: no cover - a bug in this module


def _check_choice(key: str, value: Any) -> None:
    choices = _CHOICES.get(key)
    if choices is not None and value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {value!r}")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"section {prefix.rstrip('.') or '<root>'} must be a mapping, got {data!r}")
    fields = _fields(cls)
    hints = _hints(cls)
    kwargs = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            raise _unknown_key_error(f"{prefix}{name}", cls, prefix)
        tp = hints[name]
        if _is_section(tp):
            kwargs[name] = _build(tp, value or {}, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, tp, f"{prefix}{name}")
            _check_choice(f"{prefix}{name}", kwargs[name])
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any] | None) -> PretrainConfig:
    """Build a :class:`PretrainConfig` from a nested mapping (a parsed YAML file); missing keys keep defaults."""
    return _build(PretrainConfig, data or {}, "")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain nested dicts/lists (YAML- and JSON-serialisable)."""
    return dataclasses.asdict(cfg)


def load_config(path: str | Path) -> PretrainConfig:
    """Read a YAML file into a :class:`PretrainConfig`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist (configs live in recipes/configs/)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {e}") from e
    try:
        return config_from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def save_config(cfg: PretrainConfig, path: str | Path) -> None:
    """Write the config as YAML; ``load_config`` reads it back to an equal config."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _parse_for(text: Any, tp: Any) -> Any:
    """Parse command-line text for a field of type ``tp``: strings stay verbatim (``--name 1e3`` is "1e3")."""
    if not isinstance(text, str):
        return text
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    if str in args:
        if type(None) in args and text.strip().lower() in ("null", "none", "~"):
            return None
        return text
    return _parse_value(text)


def apply_overrides(
    cfg: PretrainConfig, overrides: dict[str, Any], *, from_text: bool = False
) -> PretrainConfig:
    """Return a copy of ``cfg`` with dotted ``key -> value`` overrides applied.

    With ``from_text=True`` the values are command-line strings, parsed according to each field's type.
    """
    data = config_to_dict(cfg)
    for raw_key, value in overrides.items():
        parts = raw_key.replace("-", "_").split(".")
        node, cls, prefix = data, PretrainConfig, ""
        for i, part in enumerate(parts):
            fields = _fields(cls)
            if part not in fields:
                raise _unknown_key_error(".".join(parts), cls, prefix)
            tp = _hints(cls)[part]
            last = i == len(parts) - 1
            if _is_section(tp):
                if last:
                    raise ConfigError(
                        f"{'.'.join(parts)} is a section; set one of its keys: "
                        f"{', '.join(valid_keys(tp, prefix + part + '.'))}"
                    )
                node, cls, prefix = node[part], tp, f"{prefix}{part}."
                continue
            if last:
                node[part] = _parse_for(value, tp) if from_text else value
            elif typing.get_origin(tp) is dict:
                # Free-form mapping (e.g. model.hparams.tau_teacher): nested keys are created as needed.
                sub = node.setdefault(part, {})
                for sub_key in parts[i + 1 : -1]:
                    sub = sub.setdefault(sub_key, {})
                sub[parts[-1]] = _parse_value(value) if from_text and isinstance(value, str) else value
            else:
                raise ConfigError(f"{prefix}{part} is a value, not a section; cannot set {raw_key!r}")
            break
    return config_from_dict(data)


_USAGE = """usage: pretrain.py [--config FILE.yaml] [--KEY VALUE ...] [--resume [PATH]]

Keys are dotted paths into the config (dashes read as underscores), for example
  --optim.base_lr 0.1 --train.epochs 20 --data.batch_size 128 --model.hparams.tau_teacher 0.05 --output-dir runs/x
With no arguments the embedded default runs (SimClust on digits, small-image ResNet-18, CPU).

valid keys:
  {keys}
"""


def usage() -> str:
    return _USAGE.format(keys="\n  ".join(valid_keys()))


def parse_cli(argv: list[str], base: PretrainConfig | None = None) -> tuple[PretrainConfig, dict[str, Any]]:
    """Parse ``[--config FILE] [--key value ...]`` into a config.

    ``--config`` is applied first (onto ``base`` or the defaults), then the other overrides in order.
    ``--resume`` may stand alone (meaning ``latest``). Returns the config and the raw overrides (text).
    """
    config_path = None
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            raise SystemExit(usage())
        if not arg.startswith("--"):
            raise ConfigError(f"expected --KEY VALUE, got {arg!r}.\n{usage()}")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            if key == "resume" and (nxt is None or nxt.startswith("--")):
                value = "latest"
            elif nxt is None:
                raise ConfigError(f"--{key} needs a value")
            else:
                value = nxt
                i += 1
        i += 1
        if key == "config":
            config_path = value
        else:
            overrides[key.replace("-", "_")] = value
    cfg = load_config(config_path) if config_path else (base or PretrainConfig())
    method = overrides.get("model.method")
    if method is not None and method != cfg.model.method:
        # The base's hparams tune the base's method (the default job's are SimClust's); another method
        # starts from its own method_defaults, plus whatever --model.hparams.* overrides follow.
        # A copy, so the caller's base config is left untouched.
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, hparams={}))
    return apply_overrides(cfg, overrides, from_text=True), overrides
