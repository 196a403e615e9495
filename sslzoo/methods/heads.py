"""MLP heads (projectors, predictors) in the layouts the SSL papers use.

Hidden layers are ``Linear → norm → activation``; the output layer is ``Linear`` optionally followed by
a BatchNorm (SimSiam and MoCo v3 put a BatchNorm without affine parameters on the projector output).
A Linear followed by BatchNorm has no bias (the BatchNorm's shift makes it redundant).

Example (SimSiam's ImageNet projector and predictor, Chen & He, CVPR 2021, Sec. 4):
    >>> projector = build_mlp([2048, 2048, 2048, 2048], last_norm=True, last_affine=False)
    >>> predictor = build_mlp([2048, 512, 2048])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

__all__ = ["build_mlp", "mlp_dims"]


def _norm(kind: str | None, dim: int, affine: bool = True) -> nn.Module | None:
    if kind is None:
        return None
    if kind == "bn":
        return nn.BatchNorm1d(dim, affine=affine)
    if kind == "ln":
        return nn.LayerNorm(dim, elementwise_affine=affine)
    raise ValueError(f"Unknown norm {kind!r}; use 'bn', 'ln' or None")


def build_mlp(
    dims: Sequence[int],
    *,
    norm: str | None = "bn",
    act: Callable[[], nn.Module] = nn.ReLU,
    last_norm: bool = False,
    last_affine: bool = True,
) -> nn.Sequential:
    """MLP with ``len(dims) - 1`` Linear layers mapping ``dims[0]`` to ``dims[-1]``.

    Args:
        dims: layer widths, input first, output last (e.g. ``[2048, 4096, 256]`` for BYOL's projector).
        norm: normalisation after each hidden Linear: "bn" (BatchNorm1d), "ln" or None.
        act: activation factory after each hidden normalisation (``nn.ReLU``, ``nn.GELU``...).
        last_norm: also normalise the output (same kind as ``norm``; "bn" if ``norm`` is None).
        last_affine: whether that output normalisation has learnable affine parameters.
    """
    dims = [int(d) for d in dims]
    if len(dims) < 2 or min(dims) < 1:
        raise ValueError(f"build_mlp needs at least an input and an output width, all positive; got {dims}")
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        last = i == len(dims) - 2
        kind = (norm or "bn") if last and last_norm else (None if last else norm)
        layers.append(nn.Linear(d_in, d_out, bias=kind is None))
        norm_layer = _norm(kind, d_out, affine=last_affine if last else True)
        if norm_layer is not None:
            layers.append(norm_layer)
        if not last:
            layers.append(act())
    return nn.Sequential(*layers)


def mlp_dims(in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> list[int]:
    """Widths of a ``num_layers``-layer MLP: ``[in_dim, hidden_dim × (num_layers − 1), out_dim]``."""
    if num_layers < 1:
        raise ValueError(f"num_layers must be ≥ 1, got {num_layers}")
    return [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
