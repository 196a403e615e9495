"""Small helpers for ``torch.distributed`` that are safe to call in a single process.

Every statistic that a method defines over the batch (BatchNorm moments, SimClust's marginal ``q̄``,
negatives, cross-correlations, centres) must be taken over the **global** batch. Two kinds of
collectives are provided:

- with gradient (``gather``, ``all_reduce_sum``): autograd functions (the semantics of
  ``torch.distributed.nn.functional``, without its deprecated all_reduce or gloo all-to-all) whose
  backward *sums* the incoming gradients of all processes. Together with the gradient averaging that DDP
  (or Accelerate) applies, this makes N processes × batch B produce the loss and gradients of one
  process × batch N·B, provided each process's loss averages to the global loss over processes (a
  global term computed identically on every process, or a per-process mean over an equal share).
- without gradient (``gather_no_grad``, ``all_reduce_sum_no_grad``, ``mean_over_processes``): for
  statistics that are detached anyway (teacher targets, PCA bases, logs).

A plain ``torch.distributed.all_reduce`` inside a differentiable computation is a bug: it passes the
gradient of the local share only, which after DDP's averaging is the global gradient divided by the
world size (the bug lightly fixed in its Barlow Twins loss and that the reference SimClust code has in
its uniformity term).

All functions are the identity (or return 1 / 0) when ``torch.distributed`` is not initialised.

Example:
    >>> import torch
    >>> from sslzoo import distributed as sdist
    >>> x = torch.randn(4, 3, requires_grad=True)
    >>> sdist.gather(x).shape  # (world_size * 4, 3); (4, 3) in a single process
    torch.Size([4, 3])
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = [
    "is_distributed",
    "world_size",
    "rank",
    "backend",
    "gather",
    "gather_no_grad",
    "all_reduce_sum",
    "all_reduce_sum_no_grad",
    "mean_over_processes",
]


def is_distributed() -> bool:
    """True when ``torch.distributed`` is available, initialised and has more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """Rank of this process (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def backend() -> str | None:
    """Name of the default process group's backend ("nccl", "gloo", ...) or None."""
    if dist.is_available() and dist.is_initialized():
        return str(dist.get_backend())
    return None


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; backward sums the gradients of all processes and keeps this rank's rows."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rows = x.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = dist.get_rank() * ctx.rows
        return grad[start : start + ctx.rows]


class _AllReduceSumWithGrad(torch.autograd.Function):
    """Sum over processes; the backward is again a sum over processes (d(Σ_r x_r)/dx_r = 1 on every rank)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` of all processes along dim 0, keeping the gradient to every shard.

    Rows are ordered by rank, so process r's rows sit at ``[r * B, (r + 1) * B)``. The backward sums
    the gradients that all processes send to this process's shard (see the module docstring for why
    that is the right scaling under DDP). All processes must pass tensors of the same shape.
    """
    if not is_distributed():
        return x
    return _GatherWithGrad.apply(x)


@torch.no_grad()
def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` of all processes along dim 0, without gradient."""
    if not is_distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum ``x`` over processes, differentiably (the backward sums the gradients of all processes)."""
    if not is_distributed():
        return x
    return _AllReduceSumWithGrad.apply(x)


@torch.no_grad()
def all_reduce_sum_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Sum ``x`` over processes without gradient; returns a new tensor (``x`` is left unchanged)."""
    x = x.detach().clone()
    if is_distributed():
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


@torch.no_grad()
def mean_over_processes(x: torch.Tensor) -> torch.Tensor:
    """Average a (detached) tensor over processes, e.g. a loss value for logging."""
    return all_reduce_sum_no_grad(x) / world_size()
