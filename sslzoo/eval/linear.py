"""Linear probing of frozen representations.

A single linear layer, without BatchNorm, is trained on top of a frozen encoder with SGD (or LARS) and a
cosine learning-rate schedule -- the protocol of Chen et al., "An Empirical Study of Training
Self-Supervised Vision Transformers" (MoCo v3, ICCV 2021) and Caron et al. (DINO, ICCV 2021); the head is
initialised with N(0, 0.01) weights and zero bias, as in those papers' code.

Two modes:

- :func:`train_linear_head` / :func:`linear_probe` -- the fast mode on cached features (no augmentation,
  one embedding pass). Features are standardised with the training set's mean and standard deviation during
  optimisation (which conditions the problem; MAE uses a non-affine BatchNorm for the same reason), and that
  affine map is folded into the returned :class:`torch.nn.Linear`, so the head applies to raw features.
- :func:`train_linear_probe` -- the usual protocol: images pass through random-resized-crop + flip
  augmentations (build them with ``sslzoo.data``) and the frozen encoder at every step.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sslzoo.eval.features import encoder_of, split_batch
from sslzoo.eval.metrics import topk_correct
from sslzoo.optim import build_optimizer, lr_at_step

__all__ = [
    "FrozenEncoderClassifier",
    "cosine_schedule",
    "linear_probe",
    "train_linear_head",
    "train_linear_probe",
]


def cosine_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step linear warm-up then cosine decay to 0, as :func:`sslzoo.optim.lr_at_step` defines it.

    A ``LambdaLR`` scales each parameter group's own initial lr, so layer-wise lr scales already applied to
    the groups are kept.
    """
    total_steps = max(int(total_steps), 1)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_at_step(step, total_steps, 1.0, warmup_steps=warmup_steps)
    )


def _new_head(in_features: int, num_classes: int) -> nn.Linear:
    head = nn.Linear(in_features, num_classes)
    nn.init.normal_(head.weight, std=0.01)
    nn.init.zeros_(head.bias)
    return head


def train_linear_head(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int | None = None,
    epochs: int = 100,
    lr: float = 0.1,
    batch_size: int | None = 256,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    optimizer: str = "sgd",
    standardize: bool = True,
    seed: int = 0,
) -> nn.Linear:
    """Fit a linear classifier on fixed features (the fast linear-probe mode).

    Args:
        features: ``(N, D)`` training features (e.g. from :func:`sslzoo.eval.extract_features`).
        labels: ``(N,)`` integer labels.
        num_classes: Output classes; default ``max(labels) + 1``.
        epochs: Passes over the features.
        lr: Peak learning rate of the cosine schedule.
        batch_size: Mini-batch size; ``None`` is full-batch gradient descent.
        weight_decay, momentum: Of the optimiser (biases get no weight decay).
        optimizer: ``"sgd"`` (momentum) or ``"lars"`` (:class:`sslzoo.optim.LARS`).
        standardize: Optimise on standardised features and fold the map into the head.
        seed: Seeds the head initialisation and the shuffling.

    Returns:
        An ``nn.Linear`` on CPU that maps raw features to logits.
    """
    if features.ndim != 2 or labels.shape != (features.shape[0],):
        raise ValueError(
            f"expected (N, D) features and (N,) labels; got {tuple(features.shape)} and {tuple(labels.shape)}."
        )
    if features.shape[0] == 0:
        raise ValueError("cannot train a linear probe on zero samples.")
    x = features.detach().float().cpu()
    y = labels.detach().long().cpu()
    num_classes = int(y.max()) + 1 if num_classes is None else num_classes
    if standardize:
        mean = x.mean(0)
        std = x.std(0, unbiased=False).clamp_min(1e-6)
        x = (x - mean) / std
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = _new_head(x.shape[1], num_classes)
    n = x.shape[0]
    bs = n if batch_size is None else min(batch_size, n)
    steps_per_epoch = math.ceil(n / bs)
    opt = build_optimizer(head, optimizer, lr, momentum=momentum, weight_decay=weight_decay)
    sched = cosine_schedule(opt, epochs * steps_per_epoch)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen) if bs < n else torch.arange(n)
        for i in range(steps_per_epoch):
            idx = order[i * bs : (i + 1) * bs]
            loss = F.cross_entropy(head(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    if standardize:
        # W((x - mu) / sigma) + b  ==  (W / sigma) x + (b - (W / sigma) mu)
        with torch.no_grad():
            w = head.weight / std
            head.bias.sub_(w @ mean)
            head.weight.copy_(w)
    return head


@torch.no_grad()
def _head_accuracy(head: nn.Linear, features: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    logits = head(features.float().cpu())
    c1, c5 = topk_correct(logits, labels.long().cpu(), (1, 5))
    n = max(labels.numel(), 1)
    return {"top1": 100.0 * c1 / n, "top5": 100.0 * c5 / n}


def linear_probe(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    **kwargs: Any,
) -> dict[str, float]:
    """Train with :func:`train_linear_head` (``kwargs`` pass through) and report test top-1/top-5 (percent)."""
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    kwargs.setdefault("num_classes", num_classes)
    head = train_linear_head(train_features, train_labels, **kwargs)
    test = _head_accuracy(head, test_features, test_labels)
    train = _head_accuracy(head, train_features, train_labels)
    return {"top1": test["top1"], "top5": test["top5"], "train_top1": train["top1"]}


class FrozenEncoderClassifier(nn.Module):
    """A frozen encoder (always in eval mode, no gradients) followed by a trainable linear head."""

    def __init__(self, encoder: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.encoder = encoder.requires_grad_(False)
        self.head = head

    def train(self, mode: bool = True) -> FrozenEncoderClassifier:
        super().train(mode)
        self.encoder.eval()  # BatchNorm statistics and dropout stay frozen
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            feats = self.encoder(x)
        return self.head(feats)


def train_linear_probe(
    model: nn.Module,
    train_loader: Any,
    *,
    num_classes: int,
    epochs: int = 90,
    lr: float = 0.1,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    optimizer: str = "sgd",
    accelerator: Any = None,
    log_every: int = 0,
    log_fn: Any = print,
) -> FrozenEncoderClassifier:
    """The usual linear-probe protocol: augmented images through the frozen encoder at every step.

    Args:
        model: An encoder (``num_classes=0``) or an SSL method (its ``.backbone`` is probed).
        train_loader: Yields ``(views, labels)`` with one augmented view (random-resized-crop + flip, e.g.
            ``sslzoo.data.build_views("linear_probe", ...)`` or an equivalent transform) or ``(images, labels)``.
        num_classes: Output classes.
        epochs, lr, weight_decay, momentum, optimizer: SGD/LARS with per-step cosine decay.
        accelerator: An ``accelerate.Accelerator``; the head, optimiser and loader are prepared with it.
        log_every: Print the loss every this many steps (0: only at epoch ends on the main process).

    Returns:
        The classifier (frozen encoder + trained head); evaluate it with
        :func:`sslzoo.eval.evaluate_classifier`.
    """
    encoder = encoder_of(model)
    clf = FrozenEncoderClassifier(encoder, _new_head(encoder.num_features, num_classes))
    opt = build_optimizer(clf.head, optimizer, lr, momentum=momentum, weight_decay=weight_decay)
    if accelerator is not None:
        encoder.to(accelerator.device)
        # Only the head trains; DDP over it keeps the gradient average across processes.
        clf.head, opt, train_loader = accelerator.prepare(clf.head, opt, train_loader)
        device = accelerator.device
        is_main = accelerator.is_main_process
    else:
        param = next(encoder.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        clf.head.to(device)
        is_main = True
    sched = cosine_schedule(opt, epochs * len(train_loader))
    clf.train()
    step = 0
    for epoch in range(epochs):
        total, count = 0.0, 0
        for batch in train_loader:
            images, labels = split_batch(batch)
            logits = clf(images.to(device))
            loss = F.cross_entropy(logits, labels.to(device).long())
            opt.zero_grad(set_to_none=True)
            if accelerator is not None:
                accelerator.backward(loss)
            else:
                loss.backward()
            opt.step()
            sched.step()
            step += 1
            total, count = total + loss.item(), count + 1
            if log_every and step % log_every == 0 and is_main and log_fn is not None:
                log_fn(f"linear probe step {step} loss {loss.item():.4f} lr {sched.get_last_lr()[0]:.4g}")
        if is_main and log_fn is not None:
            log_fn(f"linear probe epoch {epoch + 1}/{epochs} loss {total / max(count, 1):.4f}")
    if accelerator is not None:
        clf.head = accelerator.unwrap_model(clf.head)
    clf.eval()
    return clf
