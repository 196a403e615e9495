"""Weight files: save, resolve, verify, load and publish sslzoo encoders.

The on-disk format is timm's Hugging Face Hub format (``timm.models._hub.save_config_for_hf``), so a
published folder loads with timm alone (``timm.create_model("hf-hub:ORG/NAME", pretrained=True)``) and
with sslzoo (``sslzoo.create_model(name, pretrained=True | path)``):

- ``model.safetensors``: the encoder's state dict, timm key names, ``num_classes=0``;
- ``config.json``: timm's keys (``architecture``, ``num_classes``, ``num_features``, ``pretrained_cfg``,
  ``model_args``) plus an ``sslzoo`` block (name, method, tag, data set, epochs, recipe config, metrics,
  version, sha256 of the weights);
- ``README.md``: the model card (:mod:`sslzoo.cards`);
- ``ssl_heads.safetensors`` (optional): the SSL method's projector/predictor/prototypes, so pretraining can
  continue.

``pretrained=True`` resolves, in order, the local hub folder (``$SSLZOO_HOME``, default
``~/.cache/sslzoo``) and then the Hugging Face Hub through ``huggingface_hub.hf_hub_download`` (which
honours ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and the HF cache). This module only moves, loads and verifies
files; building models is :mod:`sslzoo.builder`'s job. Pickle files are never loaded implicitly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
import torch.nn as nn

__all__ = [
    "CONFIG_NAME",
    "HEADS_NAME",
    "HubError",
    "PretrainedNotFoundError",
    "Resolved",
    "WEIGHTS_NAME",
    "file_sha256",
    "hub_home",
    "load_pretrained",
    "load_state_dict_file",
    "local_hub_dir",
    "publish",
    "publish_local",
    "push_to_hub",
    "read_config",
    "resolve_pretrained",
    "save_pretrained",
    "verify_folder",
]

WEIGHTS_NAME = "model.safetensors"
HEADS_NAME = "ssl_heads.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
_PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".pkl")
# Files a save directory may hold that belong on the Hub; everything else (checkpoints/, logs) stays local.
_HUB_FILES = (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME, HEADS_NAME)


class HubError(RuntimeError):
    """A weight file is corrupt, does not match its pinned sha256, or does not fit the model."""


class PretrainedNotFoundError(FileNotFoundError):
    """No weights were found; the message lists every place that was tried."""


# ----------------------------------------------------------------------------------------------- paths


def hub_home() -> Path:
    """The local hub folder: ``$SSLZOO_HOME``, else ``$XDG_CACHE_HOME/sslzoo``, else ``~/.cache/sslzoo``."""
    home = os.environ.get("SSLZOO_HOME")
    if home:
        return Path(home).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "sslzoo"


def local_hub_dir(name: str, tag: str | None = None) -> Path:
    """Where ``name.tag`` lives in the local hub folder (a save directory)."""
    full = f"{name}.{tag}" if tag else name
    return hub_home() / "models" / full


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` of a save directory (``{}`` when there is none)."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise HubError(
            f"{path} is not valid JSON ({e}); re-export the folder with sslzoo.save_pretrained."
        ) from e


# ------------------------------------------------------------------------------------------ atomic I/O


@contextmanager
def _staging_dir(near: Path):
    """A temporary directory on the same file system as ``near`` (so ``os.replace`` is atomic), removed on
    exit unless its contents were moved away."""
    near.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{near.name}.tmp-", dir=near.parent))
    # mkdtemp makes the folder 0700; the published folder should get the usual umask-derived mode.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _commit_dir(staged: Path, directory: Path, names: Iterable[str]) -> None:
    """Move staged files into ``directory``, each with one atomic ``os.replace``.

    A fresh directory is renamed into place whole. Into an existing directory (a recipe's output dir also
    holds checkpoints and logs) the files move one by one, ``config.json`` last: it carries the weights'
    sha256, so a reader never pairs a new config with old weights it would accept.
    """
    names = [n for n in names if (staged / n).exists()]
    if not directory.exists():
        try:
            os.rename(staged, directory)
            return
        except OSError:
            directory.mkdir(parents=True, exist_ok=True)
    for name in sorted(names, key=lambda n: n == CONFIG_NAME):
        os.replace(staged / name, directory / name)


# ------------------------------------------------------------------------------------------------ save


def _split_model(model_or_method: nn.Module) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """(timm encoder, head tensors) of a timm model or an SSL method (``.backbone`` + heads)."""
    if hasattr(model_or_method, "pretrained_cfg"):
        return model_or_method, {}
    backbone = getattr(model_or_method, "backbone", None)
    if isinstance(backbone, nn.Module) and hasattr(backbone, "pretrained_cfg"):
        heads = {k: v for k, v in model_or_method.state_dict().items() if not k.startswith("backbone.")}
        return backbone, heads
    raise TypeError(
        f"save_pretrained needs a timm model or an SSL method with a timm `.backbone`, got "
        f"{type(model_or_method).__name__}. Build encoders with sslzoo.create_model or sslzoo.create_method."
    )


def _tensors_for_file(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses views that share storage and non-contiguous tensors; a clone of each is cheap
    # next to the file write and keeps the saved bytes independent of the live model.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


@contextmanager
def _timm_pretrained_cfg(model: nn.Module):
    """Temporarily keep only timm's ``PretrainedCfg`` fields in ``model.pretrained_cfg``.

    sslzoo records its own keys there (name, method); timm's loader rebuilds a ``PretrainedCfg`` from
    config.json and rejects unknown fields, so they must not reach the exported ``pretrained_cfg``.
    """
    from timm.models._pretrained import PretrainedCfg

    original = model.pretrained_cfg
    fields = PretrainedCfg.__dataclass_fields__
    model.pretrained_cfg = {k: v for k, v in original.items() if k in fields and k not in ("file", "source")}
    try:
        yield model
    finally:
        model.pretrained_cfg = original


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def save_pretrained(
    model_or_method: nn.Module,
    directory: str | os.PathLike,
    *,
    name: str | None = None,
    tag: str | None = None,
    method: str | None = None,
    dataset: str | None = None,
    epochs: float | None = None,
    recipe_config: Any = None,
    metrics: Mapping[str, float] | None = None,
    license: str = "apache-2.0",
    save_heads: bool = True,
    data_config: dict[str, Any] | None = None,
    **extra: Any,
) -> Path:
    """Write ``model_or_method``'s encoder to ``directory`` in timm's Hub format (see module docstring).

    Every file is written to a staging directory first and moved into place with ``os.replace``, so a
    failure never leaves a half-written file behind.

    Args:
        model_or_method: a timm encoder (e.g. from :func:`sslzoo.create_model`) or an SSL method whose
            ``.backbone`` is one; a method's other state-dict entries go to ``ssl_heads.safetensors``.
        directory: the save directory (created; existing sslzoo files in it are replaced).
        name: the sslzoo name (``{arch}_{method}``, optionally ``.tag``); fills arch/method from the registry.
        tag, method, dataset, epochs, recipe_config, metrics: recorded in the ``sslzoo`` block of
            ``config.json`` and in the card. ``recipe_config`` is the resolved recipe config (a dict) or its path.
        license: the card's license.
        save_heads: write ``ssl_heads.safetensors`` when a method is given.
        data_config: preprocessing passed to timm's config writer (input size, mean/std, ...).
        **extra: further JSON-serialisable fields for the ``sslzoo`` block (e.g. ``eval_command``).

    Returns:
        The directory.
    """
    from timm.models._hub import save_config_for_hf

    from . import __version__
    from .cards import render_card_from_config

    directory = Path(directory)
    encoder, heads = _split_model(model_or_method)
    if name and "." in name and tag is None:
        name, tag = name.split(".", 1)
    arch = None
    if name:
        from .registry import get_entry

        try:
            entry, _ = get_entry(name)
            arch, method = entry.arch, method or entry.method
        except ValueError:
            pass
    if getattr(encoder, "num_classes", 0):
        # The published artefact is the encoder; a fine-tuned classifier is not part of it.
        encoder = deepcopy(encoder)
        encoder.reset_classifier(0)

    weights = safetensors.torch.save(_tensors_for_file(encoder.state_dict()), metadata={"format": "pt"})
    block = {
        "name": name,
        "arch": arch,
        "tag": tag,
        "method": method,
        "dataset": dataset,
        "epochs": epochs,
        "recipe_config": recipe_config,
        "metrics": dict(metrics or {}),
        "license": license,
        "version": __version__,
        "weights": WEIGHTS_NAME,
        "sha256": hashlib.sha256(weights).hexdigest(),
        "heads": HEADS_NAME if heads and save_heads else None,
        **extra,
    }
    block = _jsonable(block)

    with _staging_dir(directory) as staged:
        (staged / WEIGHTS_NAME).write_bytes(weights)
        # timm's own writer: architecture, num_classes, num_features, pretrained_cfg and model_args exactly
        # as timm.create_model("hf-hub:...") / ("local-dir:...") read them back.
        with _timm_pretrained_cfg(encoder):
            save_config_for_hf(
                encoder, staged / CONFIG_NAME, model_config={"sslzoo": block}, data_config=data_config
            )
        if heads and save_heads:
            safetensors.torch.save_file(
                _tensors_for_file(heads), staged / HEADS_NAME, metadata={"format": "pt"}
            )
        config = json.loads((staged / CONFIG_NAME).read_text(encoding="utf-8"))
        (staged / CARD_NAME).write_text(render_card_from_config(config), encoding="utf-8")
        _commit_dir(staged, directory, _HUB_FILES)
    return directory


# --------------------------------------------------------------------------------------------- resolve


@dataclass
class Resolved:
    """Where weights were found.

    Attributes:
        path: the weights file.
        origin: ``"path"``, ``"local-hub"`` or ``"hf-hub"``.
        sha256: the digest the file must have (the registry's pin), or None.
        tried: every place looked at, in order, with what happened.
    """

    path: Path
    origin: str
    sha256: str | None = None
    tried: list[str] = field(default_factory=list)


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _weights_in_dir(directory: Path, allow_pickle: bool) -> Path:
    safe = directory / WEIGHTS_NAME
    if safe.is_file():
        return safe
    candidates = sorted(p for p in directory.glob("*.safetensors") if p.name != HEADS_NAME)
    if len(candidates) == 1:
        return candidates[0]
    pickles = sorted(p for p in directory.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickles:
        return pickles[0]  # refused later unless allow_pickle
    raise PretrainedNotFoundError(
        f"No weights file in {directory}: expected {WEIGHTS_NAME} (as written by sslzoo.save_pretrained)."
    )


def _tag_of(entry: Any, tag: Any) -> Any:
    """The PretrainedTag object for ``tag`` (a tag name, a PretrainedTag or None)."""
    if tag is None or not isinstance(tag, str):
        return tag
    if entry is None or tag not in entry.tags:
        raise ValueError(f"Unknown pretrained tag {tag!r} for {getattr(entry, 'name', None)!r}.")
    return entry.tags[tag]


def resolve_pretrained(
    entry: Any = None,
    tag: Any = None,
    source: bool | str | os.PathLike = True,
    *,
    allow_pickle: bool = False,
    download: bool = True,
) -> Resolved:
    """Find the weights file for ``entry``/``tag`` (or the explicit ``source`` path) without loading it.

    Args:
        entry: a :class:`sslzoo.registry.ModelEntry` (needed when ``source`` is True).
        tag: the tag name or :class:`~sslzoo.registry.PretrainedTag`.
        source: True (local hub folder, then the HF Hub) or a path to a weights file or save directory.
        allow_pickle: accept ``.pth``/``.bin`` files (loaded with ``weights_only=True``).
        download: False only looks at local files (the local hub folder and the HF cache).

    Raises:
        PretrainedNotFoundError: nothing found; the message says what was tried, whether the machine is
            offline, and for unpublished weights the recipe command that trains them.
    """
    if source is not True:
        path = Path(source).expanduser()
        if path.is_dir():
            return Resolved(_weights_in_dir(path, allow_pickle), "path", tried=[f"directory {path}"])
        if path.is_file():
            return Resolved(path, "path", tried=[f"file {path}"])
        raise PretrainedNotFoundError(f"pretrained={str(source)!r}: no such file or directory.")

    if entry is None:
        raise ValueError("pretrained=True needs a registry entry; pass a path to load a file or folder.")
    ptag = _tag_of(entry, tag)
    if ptag is None:
        raise PretrainedNotFoundError(
            f"{entry.name!r} has no pretrained weight sets. Train it with:\n  {entry.train_command()}\n"
            f"then load the run's output with pretrained='<output-dir>' or publish it with --publish local."
        )
    full = f"{entry.name}.{ptag.tag}"
    tried: list[str] = []

    local = local_hub_dir(entry.name, ptag.tag)
    local_file = local / ptag.filename
    if local_file.is_file():
        return Resolved(
            local_file, "local-hub", ptag.sha256, tried + [f"local hub folder {local_file}: found"]
        )
    tried.append(f"local hub folder {local_file}: not found (set SSLZOO_HOME to use another folder)")

    offline = _offline()
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    where = f"Hugging Face Hub {ptag.hf_hub_id}@{ptag.revision} ({ptag.filename}) via {constants.ENDPOINT}"
    if not ptag.hf_hub_id:
        tried.append("Hugging Face Hub: this weight set names no repo")
    elif not getattr(ptag, "published", True):
        # Declared but never uploaded: asking the Hub would only cost a network round-trip (or a timeout).
        tried.append(f"{where}: skipped, the registry marks these weights as not published")
    else:
        try:
            path = hf_hub_download(
                ptag.hf_hub_id,
                ptag.filename,
                revision=ptag.revision,
                local_files_only=not download,
                library_name="sslzoo",
            )
            return Resolved(Path(path), "hf-hub", ptag.sha256, tried + [f"{where}: found"])
        except LocalEntryNotFoundError:
            why = (
                "offline (HF_HUB_OFFLINE=1) and"
                if offline
                else ("download disabled and" if not download else "")
            )
            reason = (
                f"{why} not in the HF cache {constants.HF_HUB_CACHE}"
                if why
                else "the Hub could not be reached"
            )
            tried.append(f"{where}: {reason.strip()}")
        except EntryNotFoundError:
            tried.append(f"{where}: the repo has no file {ptag.filename}")
        except HfHubHTTPError as e:
            tried.append(f"{where}: {type(e).__name__}: {str(e).splitlines()[0]}")
        except (OSError, ValueError) as e:
            tried.append(f"{where}: {type(e).__name__}: {e}")

    lines = [f"No pretrained weights found for {full!r}. Tried:"]
    lines += [f"  {i}. {t}" for i, t in enumerate(tried, 1)]
    lines.append(f"Offline mode: {'yes (HF_HUB_OFFLINE=1)' if offline else 'no'}.")
    if not getattr(ptag, "published", True):
        lines.append("These weights are not published yet. Train them with:")
        lines.append(f"  {entry.train_command(ptag.tag)} --publish local")
    else:
        lines.append(
            "Connect to the Hub (or set HF_ENDPOINT to a mirror), or pass pretrained='<file or folder>'."
        )
    raise PretrainedNotFoundError("\n".join(lines))


# ------------------------------------------------------------------------------------------------ load


def load_state_dict_file(path: str | os.PathLike, *, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Read a weights file onto the CPU: safetensors always; a pickle (``.pth``/``.bin``) only when
    ``allow_pickle=True``, and then with ``torch.load(weights_only=True)``.

    Raises:
        HubError: a truncated or corrupt safetensors file, or a pickle that is not a tensor dict.
        ValueError: a pickle file without ``allow_pickle=True``.
    """
    path = Path(path)
    if path.suffix in _PICKLE_SUFFIXES or path.suffix != ".safetensors" and not _looks_like_safetensors(path):
        if not allow_pickle:
            raise ValueError(
                f"Refusing to load {path}: it is a pickle file, and unpickling can run arbitrary code. Convert it "
                f"to safetensors (sslzoo.save_pretrained), or pass allow_pickle=True to load it with "
                f"torch.load(weights_only=True)."
            )
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises UnpicklingError / RuntimeError variants
            raise HubError(f"Could not load {path} with torch.load(weights_only=True): {e}") from e
        for key in ("state_dict", "model"):
            if isinstance(obj, dict) and isinstance(obj.get(key), dict):
                obj = obj[key]
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise HubError(f"{path} does not hold a state dict of tensors.")
        return obj
    try:
        return safetensors.torch.load_file(path, device="cpu")
    except Exception as e:  # safetensors raises SafetensorError (not exported as a stable class)
        raise HubError(
            f"{path} is not a valid safetensors file (truncated or corrupt: {e}). Delete it and download or "
            f"export it again."
        ) from e


def _looks_like_safetensors(path: Path) -> bool:
    # An 8-byte little-endian header length followed by a JSON object.
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{"


def _classifier_prefixes(model: nn.Module) -> tuple[str, ...]:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    clf = cfg.get("classifier") or ()
    clf = (clf,) if isinstance(clf, str) else tuple(clf)
    return tuple(f"{c}." for c in clf)


def _load_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], origin: str) -> None:
    """``load_state_dict`` that tolerates only a classifier whose size differs (or is absent)."""
    prefixes = _classifier_prefixes(model)
    own = model.state_dict()

    def is_clf(key: str) -> bool:
        return bool(prefixes) and key.startswith(prefixes)

    state_dict = {
        k: v for k, v in state_dict.items() if not (is_clf(k) and (k not in own or own[k].shape != v.shape))
    }
    wrong = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and own[k].shape != v.shape
    ]
    missing = [k for k in own if k not in state_dict and not is_clf(k)]
    unexpected = [k for k in state_dict if k not in own]
    if wrong or missing or unexpected:
        parts = []
        for label, keys in (
            ("shape mismatch", wrong),
            ("missing keys", missing),
            ("unexpected keys", unexpected),
        ):
            if keys:
                parts.append(f"{label} ({len(keys)}): {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}")
        arch = getattr(model, "pretrained_cfg", {}).get("architecture", type(model).__name__)
        raise HubError(
            f"The weights from {origin} do not fit the {arch} model: "
            + "; ".join(parts)
            + ". Check that the name/arch matches the checkpoint."
        )
    model.load_state_dict(state_dict, strict=False)


def load_pretrained(
    model: nn.Module,
    *,
    entry: Any = None,
    tag: Any = None,
    source: bool | str | os.PathLike = True,
    num_classes: int | None = None,
    allow_pickle: bool = False,
    check_hash: bool | None = None,
) -> nn.Module:
    """Resolve, verify and load pretrained weights into ``model`` (in place; also returned).

    Args:
        model: the timm encoder to fill.
        entry, tag: the registry entry and tag (name or PretrainedTag) when ``source`` is True.
        source: True to resolve by name (:func:`resolve_pretrained`), or a file / save-directory path.
        num_classes: the classifier size the caller asked for; only the classifier may be absent from, or
            differ in size from, the file.
        allow_pickle: opt in to ``.pth``/``.bin`` files (read with ``torch.load(weights_only=True)``).
        check_hash: verify the sha256 (default: when the registry pins one; for a save directory True also
            checks the digest its ``config.json`` records).

    Raises:
        PretrainedNotFoundError, HubError, ValueError: see :func:`resolve_pretrained` and
            :func:`load_state_dict_file`; a sha256 mismatch or missing/unexpected keys raise HubError.
    """
    resolved = resolve_pretrained(entry, tag, source, allow_pickle=allow_pickle)
    expected = resolved.sha256
    if check_hash and expected is None and resolved.origin == "path":
        expected = (read_config(resolved.path.parent).get("sslzoo") or {}).get("sha256")
    if expected and check_hash is not False:
        actual = file_sha256(resolved.path)
        if actual != expected:
            raise HubError(
                f"sha256 mismatch for {resolved.path} ({resolved.origin}): expected {expected}, got {actual}. "
                f"The file is corrupt or was replaced; delete it and download or publish it again."
            )
    state_dict = load_state_dict_file(resolved.path, allow_pickle=allow_pickle)
    _load_strict(model, state_dict, f"{resolved.origin} {resolved.path}")
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    cfg.update({"file": str(resolved.path), "source": resolved.origin})
    model.pretrained_cfg = cfg
    return model


# ------------------------------------------------------------------------------------- verify / publish


def verify_folder(directory: str | os.PathLike, *, atol: float = 0.0) -> dict[str, Any]:
    """Re-load a save directory the way users will and check the round-trip.

    Checks: the weights' sha256 equals the one in ``config.json``; ``timm.create_model("local-dir:...")``
    loads the folder strictly and every tensor equals the file's; a model built from the config by sslzoo's
    loader gives the same forward pass as timm's on a fixed input.

    Returns:
        A summary (architecture, number of tensors, sha256, input size, max abs forward difference).

    Raises:
        HubError: on any mismatch.
    """
    import timm

    directory = Path(directory)
    config = read_config(directory)
    weights = directory / WEIGHTS_NAME
    if not config or not weights.is_file():
        raise HubError(f"{directory} is not a save directory: it needs {CONFIG_NAME} and {WEIGHTS_NAME}.")
    block = config.get("sslzoo") or {}
    sha = file_sha256(weights)
    if block.get("sha256") and block["sha256"] != sha:
        raise HubError(
            f"{weights}: sha256 {sha} differs from the {block['sha256']} recorded in {CONFIG_NAME}."
        )
    state = load_state_dict_file(weights)

    try:
        timm_model = timm.create_model(f"local-dir:{directory.resolve()}", pretrained=True).eval()
    except Exception as e:
        raise HubError(f"timm could not load {directory}: {e}") from e
    timm_state = timm_model.state_dict()
    if set(timm_state) != set(state):
        raise HubError(f"timm's model and {WEIGHTS_NAME} have different keys.")
    differ = [k for k, v in state.items() if not torch.equal(timm_state[k], v)]
    if differ:
        raise HubError(f"timm loaded different values for {len(differ)} tensors, e.g. {differ[:3]}.")

    ours = timm.create_model(config["architecture"], pretrained=False, **config.get("model_args", {}))
    load_pretrained(ours, source=directory)
    ours.eval()
    input_size = tuple(config.get("pretrained_cfg", {}).get("input_size", (3, 224, 224)))
    x = torch.randn((2, *input_size), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = timm_model(x), ours(x)
    diff = (a - b).abs().max().item()
    if a.shape != b.shape or diff > atol:
        raise HubError(
            f"Forward pass differs between timm's and sslzoo's load of {directory} (max |diff| {diff})."
        )
    return {
        "architecture": config["architecture"],
        "tensors": len(state),
        "sha256": sha,
        "input_size": input_size,
        "max_abs_diff": diff,
    }


def publish_local(
    directory: str | os.PathLike, name: str | None = None, tag: str | None = None, *, verify: bool = True
) -> Path:
    """Copy a save directory into the local hub folder as ``name.tag`` (read from its config by default).

    The copy is staged next to the destination, verified (sha256 and round-trip, see :func:`verify_folder`)
    and only then renamed into place, replacing any previous version; a failure leaves the local hub as it
    was.

    Returns:
        The published directory, which ``sslzoo.create_model("name.tag", pretrained=True)`` now finds.
    """
    directory = Path(directory)
    block = read_config(directory).get("sslzoo") or {}
    name = name or block.get("name")
    tag = tag or block.get("tag")
    if not name:
        raise ValueError(f"publish_local: pass name= (the config in {directory} records none).")
    dest = local_hub_dir(name, tag)
    with _staging_dir(dest) as staged:
        for fname in _HUB_FILES:
            if (directory / fname).is_file():
                shutil.copy2(directory / fname, staged / fname)
        if verify:
            verify_folder(staged)
        if dest.exists():
            # Swap: the old version moves aside, the new one takes its name, then the old one is removed.
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
            os.replace(dest, old / "d")
            try:
                os.rename(staged, dest)
            except OSError:
                os.replace(old / "d", dest)
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staged, dest)
    return dest


def _card_for_repo(directory: Path, repo_id: str) -> str:
    """The folder's card re-rendered so its timm usage names the repo it is pushed to."""
    from .cards import render_card_from_config

    config = read_config(directory)
    config["sslzoo"] = {**(config.get("sslzoo") or {}), "hf_hub_id": repo_id}
    return render_card_from_config(config)


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def push_to_hub(
    directory: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    dry_run: bool = False,
) -> Any:
    """Publish a save directory to the Hugging Face Hub (``HfApi.create_repo`` + ``upload_folder``).

    The folder is re-loaded and checked first (:func:`verify_folder`). Only the hub files
    (``model.safetensors``, ``config.json``, ``README.md``, ``ssl_heads.safetensors``) are uploaded. The
    token is passed to ``huggingface_hub`` only; it is never printed, logged or written.

    Args:
        directory: a :func:`save_pretrained` directory.
        repo_id: ``ORG/NAME`` on the Hub.
        token: a Hub token; None uses ``HF_TOKEN`` or the stored login.
        private, revision, commit_message: as in ``huggingface_hub``; a missing branch is created.
        dry_run: print the file list, sizes and the card instead of uploading.

    Returns:
        The ``CommitInfo`` of the upload, or with ``dry_run`` a dict describing what would be uploaded.
    """
    directory = Path(directory)
    check = verify_folder(directory)
    card = _card_for_repo(directory, repo_id)
    files = [(n, (directory / n).stat().st_size) for n in _HUB_FILES if (directory / n).is_file()]
    if CARD_NAME not in dict(files):
        files.append((CARD_NAME, len(card.encode("utf-8"))))
    if dry_run:
        target = f"{repo_id}@{revision or 'main'}{' (private)' if private else ''}"
        print(f"[dry run] would upload {directory} to {target}:")
        for fname, size in files:
            print(f"  {fname:24s} {size:>14,d} bytes")
        print(f"round-trip check passed: {check['tensors']} tensors, sha256 {check['sha256']}")
        print("---- README.md ----")
        print(card)
        return {"repo_id": repo_id, "revision": revision, "files": dict(files), "check": check}

    from huggingface_hub import HfApi

    _write_text_atomic(directory / CARD_NAME, card)
    api = HfApi(token=token, library_name="sslzoo")
    repo = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    repo_id = repo.repo_id
    if revision:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    name = (read_config(directory).get("sslzoo") or {}).get("name") or directory.name
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=directory,
        revision=revision,
        commit_message=commit_message or f"Upload {name} (sslzoo)",
        allow_patterns=[f for f, _ in files],
    )


def publish(directory: str | os.PathLike, target: str, **kwargs: Any) -> Any:
    """The recipe's ``--publish``: ``"local"`` → :func:`publish_local`, ``"ORG/NAME"`` → :func:`push_to_hub`."""
    if target == "local":
        return publish_local(directory, **kwargs)
    if "/" not in target:
        raise ValueError(f"--publish takes 'local' or a Hub repo id 'ORG/NAME', got {target!r}.")
    return push_to_hub(directory, target, **kwargs)
