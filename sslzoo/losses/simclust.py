"""SimClust loss (Ge et al., "Learning the Relation between Similarity Loss and Clustering Loss in
Self-Supervised Learning", IEEE TIP 2023, arXiv 2301.03041).

A similarity loss (SimSiam's negative cosine or BYOL's normalised MSE) plus a clustering loss over the
*feature dimensions*: each L2-normalised target row becomes a sharp teacher distribution over the K
dimensions, each normalised prediction a student distribution, and a cross-view cross-entropy pulls the
students to the teachers while a uniformity term keeps the batch marginal of the students close to
uniform (so the K "clusters" are all used).

With x̂ the L2-normalised row and batch means throughout:

    similarity  = −½[cos(p1, z2) + cos(p2, z1)]                  (variant="simsiam")
                = ‖p̂1 − ẑ2‖² + ‖p̂2 − ẑ1‖²                       (variant="momentum")
    m_i         = softmax(ẑ_i / τ_teacher)                         (detached)
    n_i         = softmax(p̂_i / τ_i),  τ_i = τ_student, or with adaptive temperature τ_1 = ‖m_2‖₂,
                  τ_2 = ‖m_1‖₂ per sample
    cross_entropy = −½[Σ_k m1 log n2 + Σ_k m2 log n1]
    q̄           = (Σ_b n1 + Σ_b n2) / (2B)   over the global batch (all processes)
    uniformity  = −(log K + mean_k log q̄_k) = KL(uniform ‖ q̄)
    loss        = scale · (uniformity_weight · uniformity + cross_entropy) + (1 − scale) · similarity

The targets ``z`` are treated as constants (stop-gradient / momentum branch). ``q̄`` is reduced over
processes with a gradient-carrying gather, so under DDP the uniformity gradient is that of the global
batch (the reference code's plain ``all_reduce`` scales it by 1/world_size).

Example:
    >>> import torch
    >>> p1, p2, z1, z2 = torch.randn(4, 8, 16).unbind(0)
    >>> out = simclust_loss(p1, p2, z1, z2, scale=0.5)
    >>> sorted(out)
    ['cross_entropy', 'loss', 'q_entropy', 'similarity', 'uniformity']
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sslzoo import distributed as sdist

__all__ = ["simclust_loss"]

_VARIANTS = ("simsiam", "momentum")


def simclust_loss(
    p1: torch.Tensor,
    p2: torch.Tensor,
    z1: torch.Tensor,
    z2: torch.Tensor,
    *,
    variant: str = "simsiam",
    tau_student: float = 0.1,
    tau_teacher: float = 0.07,
    uniformity_weight: float = 1.0,
    scale: float = 1.0,
    adaptive_temperature: bool = False,
) -> dict[str, torch.Tensor]:
    """SimClust loss of two views.

    Args:
        p1, p2: predictions of views 1 and 2 (online branch, after the predictor), shape (B, K).
        z1, z2: targets of views 1 and 2 (stop-gradient projections or momentum projections), (B, K).
        variant: "simsiam" (negative cosine similarity) or "momentum" (BYOL's squared distance).
        tau_student: τ_student, temperature of the student distributions n_i.
        tau_teacher: τ_teacher, temperature of the teacher distributions m_i.
        uniformity_weight: weight of the uniformity term inside the clustering loss.
        scale: weight of the clustering loss; the similarity loss gets 1 − scale.
        adaptive_temperature: per-sample student temperatures τ_1 = ‖m_2‖₂, τ_2 = ‖m_1‖₂.

    Returns:
        dict with ``loss`` (with gradient) and the detached terms ``similarity``, ``cross_entropy``,
        ``uniformity`` and ``q_entropy`` (entropy of q̄, a collapse signal: log K when all dimensions
        are used equally).
    """
    if variant not in _VARIANTS:
        raise ValueError(f"Unknown SimClust variant {variant!r}; use one of {_VARIANTS}")
    if not (p1.shape == p2.shape == z1.shape == z2.shape) or p1.dim() != 2:
        raise ValueError(
            "simclust_loss expects four (B, K) tensors of one shape, got "
            f"{[tuple(t.shape) for t in (p1, p2, z1, z2)]}"
        )
    if tau_student <= 0 or tau_teacher <= 0:
        raise ValueError(
            f"Temperatures must be positive, got τ_student={tau_student}, τ_teacher={tau_teacher}"
        )

    p1n, p2n = F.normalize(p1, dim=1), F.normalize(p2, dim=1)
    z1n, z2n = F.normalize(z1.detach(), dim=1), F.normalize(z2.detach(), dim=1)

    if variant == "simsiam":
        similarity = -0.5 * ((p1n * z2n).sum(1).mean() + (p2n * z1n).sum(1).mean())
    else:
        similarity = (p1n - z2n).pow(2).sum(1).mean() + (p2n - z1n).pow(2).sum(1).mean()

    m1 = torch.softmax(z1n / tau_teacher, dim=1)
    m2 = torch.softmax(z2n / tau_teacher, dim=1)
    if adaptive_temperature:
        tau1 = m2.norm(dim=1, keepdim=True)
        tau2 = m1.norm(dim=1, keepdim=True)
    else:
        tau1 = tau2 = tau_student
    log_n1 = torch.log_softmax(p1n / tau1, dim=1)
    log_n2 = torch.log_softmax(p2n / tau2, dim=1)
    cross_entropy = -0.5 * ((m1 * log_n2).sum(1).mean() + (m2 * log_n1).sum(1).mean())

    # log q̄ via log-sum-exp over this process's rows, then over processes (gradient-carrying gather).
    num_dims = p1.shape[1]
    local_lse = torch.logsumexp(torch.cat([log_n1, log_n2], dim=0), dim=0)
    global_lse = torch.logsumexp(sdist.gather(local_lse.unsqueeze(0)), dim=0)
    rows = sdist.all_reduce_sum_no_grad(torch.tensor(2.0 * p1.shape[0], dtype=p1.dtype, device=p1.device))
    log_q = global_lse - torch.log(rows)
    uniformity = -(math.log(num_dims) + log_q.mean())

    loss = scale * (uniformity_weight * uniformity + cross_entropy) + (1.0 - scale) * similarity
    with torch.no_grad():
        q_entropy = -(log_q.exp() * log_q).sum()
    return {
        "loss": loss,
        "similarity": similarity.detach(),
        "cross_entropy": cross_entropy.detach(),
        "uniformity": uniformity.detach(),
        "q_entropy": q_entropy,
    }
