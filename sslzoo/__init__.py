"""sslzoo: a timm-style model zoo and weight hub for self-supervised image encoders.

Its centre is SimClust (Ge et al., "Learning the Relation between Similarity Loss and Clustering Loss in
Self-Supervised Learning", IEEE TIP 2023), with the baselines that paper compares against.
"""

from . import backbones as backbones  # registers the small-image archs with timm
from .builder import create_model
from .registry import get_entry, list_models, list_pretrained, register_entry

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "create_method",
    "create_model",
    "get_entry",
    "list_models",
    "list_pretrained",
    "push_to_hub",
    "register_entry",
    "save_pretrained",
]


def __getattr__(name: str):
    # Methods and the hub pull in more than the registry needs; import them on first use.
    if name == "create_method":
        from .methods import create_method

        return create_method
    if name in ("save_pretrained", "push_to_hub"):
        from . import hub

        return getattr(hub, name)
    raise AttributeError(f"module 'sslzoo' has no attribute {name!r}")
