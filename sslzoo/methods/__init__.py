"""Self-supervised methods: a registry of ``SSLMethod`` classes and the factory that builds them.

    >>> import sslzoo.methods as M
    >>> hp = M.method_defaults("simclust", "resnet18_cifar")      # includes "views"
    >>> method = M.create_method("simclust", "resnet18_cifar")   # paper/small-data defaults
    >>> out = method([view1, view2])                              # {"loss": ..., logs...}
    >>> out["loss"].backward(); optimizer.step(); method.on_step_end(epoch, max_epochs)

Method modules in this package register themselves with ``@register_method(name)``; every module
that is not a helper (``base``, ``heads``, ``momentum``) is imported when this package is imported,
so adding a method is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from torch import nn

from sslzoo.methods.base import SSLMethod, mean_over_pairs, view_pairs

__all__ = [
    "METHODS",
    "SSLMethod",
    "create_method",
    "list_methods",
    "mean_over_pairs",
    "method_defaults",
    "register_method",
    "view_pairs",
]

#: method name → SSLMethod subclass
METHODS: dict[str, type[SSLMethod]] = {}

_HELPER_MODULES = {"base", "heads", "momentum"}


def register_method(name: str):
    """Class decorator registering an ``SSLMethod`` subclass under ``name``."""

    def decorator(cls: type[SSLMethod]) -> type[SSLMethod]:
        if not (isinstance(cls, type) and issubclass(cls, SSLMethod)):
            raise TypeError(f"register_method({name!r}) decorates SSLMethod subclasses, got {cls!r}")
        if name in METHODS and METHODS[name] is not cls:
            raise ValueError(f"A method named {name!r} is already registered ({METHODS[name].__qualname__})")
        cls.method_name = name
        METHODS[name] = cls
        return cls

    return decorator


def list_methods() -> list[str]:
    return sorted(METHODS)


def _get(method: str) -> type[SSLMethod]:
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; known methods: {', '.join(list_methods())}.")
    return METHODS[method]


def method_defaults(method: str, arch: str, **overrides: Any) -> dict[str, Any]:
    """The method's hyper-parameters for ``arch``: the paper's for full-size archs, documented
    small-data defaults for ``*_cifar`` archs. Always includes ``"views"`` (a view recipe name of
    ``sslzoo.data``). ``overrides`` that select a recipe (SimClust's ``variant``) are taken into account
    and included in the result."""
    return dict(_get(method).defaults(arch, **overrides))


def create_method(method: str, backbone: nn.Module | str, **hparams: Any) -> SSLMethod:
    """Build a registered method around ``backbone`` (an arch name or a timm encoder module).

    With an arch name, the arch's ``method_defaults`` fill in what ``hparams`` leaves out; with a
    module, the method's constructor defaults do. The ``"views"`` entry (a data concern) is ignored here,
    so ``create_method(m, arch, **method_defaults(m, arch))`` works.
    """
    cls = _get(method)
    hparams = dict(hparams)
    hparams.pop("views", None)
    if isinstance(backbone, str):
        selectors = {k: hparams[k] for k in ("variant",) if k in hparams}
        defaults = cls.defaults(backbone, **selectors)
        defaults.pop("views", None)
        hparams = {**defaults, **hparams}
    try:
        return cls(backbone, **hparams)
    except TypeError as err:
        raise TypeError(f"create_method({method!r}): {err}") from err


def _import_methods() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name not in _HELPER_MODULES and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_methods()
