"""BatchNorm over the global batch: torch's SyncBatchNorm on NCCL, an autograd-aware stand-in elsewhere.

torch's ``SyncBatchNorm`` only runs on GPU (and DDP refuses it on CPU modules), yet every statistic
a self-supervised method defines over the batch must be over the global batch, BatchNorm included
(SimCLR, Chen et al. 2020, Sec. B.3: "global BN"). ``GlobalBatchNorm`` is a drop-in ``_BatchNorm``
whose training-mode moments are all-reduced with autograd-aware collectives
(``sslzoo.distributed.all_reduce_sum``), so it runs on CPU/gloo, keeps the exact BatchNorm gradient,
and with N processes × B rows equals ``nn.BatchNorm*`` on N·B rows (running statistics included,
with the unbiased variance over the global count). Outside ``torch.distributed`` it is plain BatchNorm.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from sslzoo import distributed as sdist

__all__ = ["GlobalBatchNorm", "GlobalBatchNormAct2d", "convert_sync_batchnorm", "has_batchnorm"]


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm for inputs of shape (N, C) or (N, C, *spatial) whose batch statistics span all processes.

    Same arguments, parameters and buffers (so the same state_dict keys) as ``nn.BatchNorm2d``.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"GlobalBatchNorm expects (N, C, ...) input, got shape {tuple(input.shape)}")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        if not (use_batch_stats and sdist.is_distributed()):
            return super().forward(input)

        factor = 0.0
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum

        dims = [0, *range(2, input.dim())]
        shape = [1, input.shape[1]] + [1] * (input.dim() - 2)
        local_count = input.new_full((1,), input.numel() // input.shape[1])
        # Two passes (mean, then centred squares) keep float32 variance accurate; both sums carry gradient.
        sums = sdist.all_reduce_sum(torch.cat([input.sum(dims), local_count]))
        count = sums[-1].detach()
        mean = sums[:-1] / count
        centred = input - mean.view(shape)
        var = sdist.all_reduce_sum((centred * centred).sum(dims)) / count
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)

        if self.training and self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                unbiased = var.detach() * (count / (count - 1).clamp_min(1))
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), factor)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        return out


class GlobalBatchNormAct2d(GlobalBatchNorm):
    """``GlobalBatchNorm`` followed by the dropout and activation of a timm ``BatchNormAct2d`` it replaces."""

    def __init__(self, num_features: int, *, drop: nn.Module, act: nn.Module, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.drop = drop
        self.act = act

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(super().forward(input)))


def _to_global(bn: _BatchNorm) -> GlobalBatchNorm:
    kwargs = dict(
        eps=bn.eps, momentum=bn.momentum, affine=bn.affine, track_running_stats=bn.track_running_stats
    )
    if hasattr(bn, "act") and hasattr(bn, "drop"):  # timm BatchNormAct2d
        new: GlobalBatchNorm = GlobalBatchNormAct2d(bn.num_features, drop=bn.drop, act=bn.act, **kwargs)
    else:
        new = GlobalBatchNorm(bn.num_features, **kwargs)
    new = new.to(device=bn.weight.device if bn.affine else None)
    if bn.affine:
        # Reuse the Parameter objects so optimisers built before the conversion still see them.
        new.weight, new.bias = bn.weight, bn.bias
    if bn.track_running_stats:
        new.running_mean, new.running_var = bn.running_mean, bn.running_var
        new.num_batches_tracked = bn.num_batches_tracked
    new.train(bn.training)
    return new


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Make every BatchNorm in ``module`` use global-batch statistics; returns the (possibly new) module.

    With an NCCL process group this is timm's ``convert_sync_batchnorm`` (torch ``SyncBatchNorm``, also
    handling timm's ``BatchNormAct2d``); otherwise (CPU, gloo, or no process group yet) each BatchNorm
    becomes a ``GlobalBatchNorm`` sharing the original parameters and buffers.
    """
    if sdist.backend() == "nccl":
        from timm.layers import convert_sync_batchnorm as timm_convert

        return timm_convert(module)
    if isinstance(module, _BatchNorm) and not isinstance(module, (GlobalBatchNorm, nn.SyncBatchNorm)):
        return _to_global(module)
    for name, child in module.named_children():
        new = convert_sync_batchnorm(child)
        if new is not child:
            setattr(module, name, new)
    return module


def has_batchnorm(module: nn.Module) -> bool:
    """True if ``module`` contains any BatchNorm layer (plain, sync or global)."""
    return any(isinstance(m, _BatchNorm) for m in module.modules())
