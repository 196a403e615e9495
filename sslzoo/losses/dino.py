"""DINO: cross-entropy between a centred, sharpened teacher and the student, over all view pairs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from sslzoo import distributed as sdist

__all__ = ["dino_loss", "dino_batch_center", "dino_update_center"]


def dino_loss(
    student_out: Sequence[torch.Tensor],
    teacher_out: Sequence[torch.Tensor],
    center: torch.Tensor,
    *,
    tau_student: float = 0.1,
    tau_teacher: float = 0.04,
) -> torch.Tensor:
    """Self-distillation loss of DINO with multi-crop.

    - DINO, Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers",
      https://arxiv.org/abs/2104.14294, Eq. (2)-(3) and Algorithm 1; the averaging over view pairs follows
      the authors' code (https://github.com/facebookresearch/dino) and lightly's ``DINOLoss``.

    Teacher outputs (global crops only) are centred by ``c`` and sharpened by τ_t; student outputs (all
    crops, the global ones first and in the teacher's order) are softened by τ_s::

        P_t = softmax((g_t − c) / τ_t)   (stop-gradient)
        P_s = softmax(g_s / τ_s)
        L   = 1/|pairs| Σ_{t} Σ_{s ≠ t} mean_b  −Σ_k P_t^(k) log P_s^(k)

    The batch mean is over this process's rows; it averages to the global-batch loss over processes.
    The centre is a state of the method, updated by ``dino_update_center`` after each step.

    Example:
        >>> student = [torch.randn(8, 64) for _ in range(4)]  # 2 global + 2 local crops
        >>> teacher = [torch.randn(8, 64) for _ in range(2)]
        >>> loss = dino_loss(student, teacher, torch.zeros(1, 64), tau_student=0.1, tau_teacher=0.04)

    Args:
        student_out: Student head outputs g_s, one (B, K) tensor per crop; the first ``len(teacher_out)``
            are the global crops.
        teacher_out: Teacher head outputs g_t of the global crops, each (B, K).
        center: The centre c, shape (1, K) or (K,).
        tau_student: τ_s (0.1).
        tau_teacher: τ_t (0.04, warmed up to 0.07 in the ViT recipes).
    """
    student, teacher = list(student_out), list(teacher_out)
    if not teacher or len(student) < 2 or len(teacher) > len(student):
        raise ValueError(
            f"dino_loss needs 1 <= len(teacher_out) <= len(student_out) and >= 2 student crops, "
            f"got {len(teacher)} teacher and {len(student)} student crops"
        )
    if tau_student <= 0 or tau_teacher <= 0:
        raise ValueError(
            f"temperatures must be > 0, got tau_student={tau_student}, tau_teacher={tau_teacher}"
        )
    center = center.reshape(1, -1).to(teacher[0].dtype)
    targets = [F.softmax((t.detach() - center) / tau_teacher, dim=-1) for t in teacher]
    log_probs = [F.log_softmax(s / tau_student, dim=-1) for s in student]
    total, n_terms = student[0].new_zeros(()), 0
    for t, p_t in enumerate(targets):
        for s, log_p_s in enumerate(log_probs):
            if s == t:  # the same crop seen by both networks is not a prediction task
                continue
            total = total - (p_t * log_p_s).sum(dim=-1).mean()
            n_terms += 1
    return total / n_terms


@torch.no_grad()
def dino_batch_center(
    teacher_out: Sequence[torch.Tensor], *, gather_distributed: bool = True
) -> torch.Tensor:
    """Mean teacher output over all global crops and all samples of the **global** batch, shape (1, K)."""
    stacked = torch.cat([t.detach() for t in teacher_out])
    total = stacked.sum(dim=0, keepdim=True)
    count = stacked.new_tensor(float(stacked.shape[0]))
    if gather_distributed:
        total, count = sdist.all_reduce_sum_no_grad(total), sdist.all_reduce_sum_no_grad(count)
    return total / count


@torch.no_grad()
def dino_update_center(
    center: torch.Tensor,
    teacher_out: Sequence[torch.Tensor],
    *,
    momentum: float = 0.9,
    gather_distributed: bool = True,
) -> torch.Tensor:
    """EMA of the global-batch teacher mean, DINO Eq. (4): ``c ← m·c + (1−m)·mean_b g_t``; returns the new c.

    Args:
        center: Current centre c, (1, K).
        teacher_out: Teacher outputs of this step's global crops, each (B, K).
        momentum: m, the centre momentum (0.9).
        gather_distributed: Average over the samples of all processes (needed for N × B = 1 × N·B).
    """
    batch_center = dino_batch_center(teacher_out, gather_distributed=gather_distributed)
    return center * momentum + batch_center.to(center.dtype) * (1 - momentum)
