"""Layers for self-supervised training: global-batch BatchNorm."""

from sslzoo.nn.batchnorm import GlobalBatchNorm, GlobalBatchNormAct2d, convert_sync_batchnorm, has_batchnorm

__all__ = ["GlobalBatchNorm", "GlobalBatchNormAct2d", "convert_sync_batchnorm", "has_batchnorm"]
