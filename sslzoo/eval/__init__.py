"""Evaluation protocols for frozen and fine-tuned encoders.

- :mod:`~sslzoo.eval.features`: embed a data set with a frozen encoder (Accelerate-aware, cached on disk).
- :mod:`~sslzoo.eval.knn`: weighted kNN (InstDisc / DINO), chunked for ImageNet-sized banks.
- :mod:`~sslzoo.eval.linear`: linear probe, fast (cached features) and augmented (the usual protocol).
- :mod:`~sslzoo.eval.finetune`: layer-wise lr decay, AdamW + warm-up/cosine, one fine-tuning epoch.
- :mod:`~sslzoo.eval.metrics`: top-k accuracy, classifier evaluation, the metrics JSON the cards read.
- :mod:`~sslzoo.eval.collapse`: collapse signals of embeddings.
"""

from .collapse import effective_rank, embedding_std
from .features import encoder_of, extract_features, load_feature_cache, save_feature_cache
from .finetune import build_finetune_optimizer, finetune_one_epoch, param_groups_lrd
from .knn import knn_accuracy, knn_evaluate, knn_neighbors, knn_predict
from .linear import (
    FrozenEncoderClassifier,
    cosine_schedule,
    linear_probe,
    train_linear_head,
    train_linear_probe,
)
from .metrics import PROTOCOLS, evaluate_classifier, topk_correct, write_metrics

__all__ = [
    "PROTOCOLS",
    "FrozenEncoderClassifier",
    "build_finetune_optimizer",
    "cosine_schedule",
    "effective_rank",
    "embedding_std",
    "encoder_of",
    "evaluate_classifier",
    "extract_features",
    "finetune_one_epoch",
    "knn_accuracy",
    "knn_evaluate",
    "knn_neighbors",
    "knn_predict",
    "linear_probe",
    "load_feature_cache",
    "param_groups_lrd",
    "save_feature_cache",
    "topk_correct",
    "train_linear_head",
    "train_linear_probe",
    "write_metrics",
]
