"""SwAV: Sinkhorn-Knopp codes over the global batch and the swapped-prediction loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from sslzoo import distributed as sdist

__all__ = ["sinkhorn_knopp", "swav_loss"]


@torch.no_grad()
def sinkhorn_knopp(
    scores: torch.Tensor, *, epsilon: float = 0.05, iterations: int = 3, gather_distributed: bool = True
) -> torch.Tensor:
    """Soft codes by the Sinkhorn-Knopp algorithm, equipartitioned over the **global** batch.

    - SwAV, Caron et al. 2020, "Unsupervised Learning of Visual Features by Contrasting Cluster
      Assignments", https://arxiv.org/abs/2006.09882, Sec. 3.1 and Algorithm 1 of the appendix.

    Solves ``max_Q Tr(Qᵀ Cᵀ Z) + ε H(Q)`` over the transportation polytope where each of the K prototypes
    receives 1/K of the N samples of the global batch and each sample has total mass 1/N. Starting from
    ``Q = exp(scores / ε)ᵀ`` (K × N), it alternately normalises rows (sums over the global batch, taken
    across processes) and columns (per sample, local); the returned codes sum to one per sample.

    Example:
        >>> q = sinkhorn_knopp(torch.randn(16, 30) * 0.1)  # (B, K), rows sum to 1

    Args:
        scores: Prototype scores ``z · c_k`` of this process's samples, shape (B, K).
        epsilon: ε, the entropy weight (0.05 in the paper).
        iterations: Sinkhorn iterations (3 in the paper).
        gather_distributed: Take the row sums over the samples of all processes.

    Returns:
        Codes Q of shape (B, K), detached.
    """
    if scores.dim() != 2:
        raise ValueError(f"sinkhorn_knopp expects scores of shape (B, K), got {tuple(scores.shape)}")
    if epsilon <= 0 or iterations < 1:
        raise ValueError(f"epsilon must be > 0 and iterations >= 1, got {epsilon} and {iterations}")
    # At least float32: exp(score / 0.05) overflows half precision.
    dtype = torch.promote_types(scores.dtype, torch.float32)
    reduce = sdist.all_reduce_sum_no_grad if gather_distributed else (lambda t: t)
    scores = scores.detach().to(dtype)
    # Subtracting the global maximum changes nothing after normalisation but keeps exp finite for
    # unnormalised scores.
    shift = scores.max()
    if gather_distributed and sdist.is_distributed():
        shift = shift.clone()
        torch.distributed.all_reduce(shift, op=torch.distributed.ReduceOp.MAX)
    q = torch.exp((scores - shift) / epsilon).T  # (K, B)
    n_protos = q.shape[0]
    n_samples = reduce(q.new_tensor(float(q.shape[1])))
    q = q / reduce(q.sum())
    for _ in range(iterations):
        q = q / reduce(q.sum(dim=1, keepdim=True)) / n_protos  # each prototype gets mass 1/K
        q = q / q.sum(dim=0, keepdim=True) / n_samples  # each sample gets mass 1/N
    return (q * n_samples).T


def _swapped_prediction(scores: torch.Tensor, codes: torch.Tensor, temperature: float) -> torch.Tensor:
    return -(codes * F.log_softmax(scores / temperature, dim=1)).sum(dim=1).mean()


def swav_loss(
    high_resolution_scores: Sequence[torch.Tensor],
    low_resolution_scores: Sequence[torch.Tensor] = (),
    queue_scores: Sequence[torch.Tensor] | None = None,
    *,
    temperature: float = 0.1,
    epsilon: float = 0.05,
    sinkhorn_iterations: int = 3,
    gather_distributed: bool = True,
) -> torch.Tensor:
    """Swapped-prediction loss of SwAV with multi-crop.

    - SwAV, Caron et al. 2020, https://arxiv.org/abs/2006.09882, Eq. (1)-(3); multi-crop as in the
      authors' code (https://github.com/facebookresearch/swav) and lightly's ``SwaVLoss``.

    For every high-resolution crop s, codes ``q_s`` are computed by Sinkhorn-Knopp (over the global batch,
    optionally prefixed by the scores of a queue of earlier embeddings) and predicted from every other
    crop t ≠ s, high or low resolution::

        ℓ(z_t, q_s) = −Σ_k q_s^(k) log softmax(z_tᵀ C / τ)^(k)
        L = 1/S Σ_s 1/(V−1) Σ_{t≠s} mean_b ℓ(z_t, q_s)

    where S is the number of high-resolution crops and V the number of all crops.

    Example:
        >>> globals_ = [torch.randn(8, 30) * 0.1 for _ in range(2)]
        >>> locals_ = [torch.randn(8, 30) * 0.1 for _ in range(4)]
        >>> loss = swav_loss(globals_, locals_)

    Args:
        high_resolution_scores: Prototype scores ``zᵀC`` of the crops that get codes, each (B, K).
        low_resolution_scores: Prototype scores of the other (local) crops, each (B, K).
        queue_scores: Optional prototype scores of queued embeddings, one (Q, K) per high-resolution crop;
            they enter Sinkhorn only (more samples for the equipartition when the batch is small).
        temperature: τ of the prediction softmax (0.1).
        epsilon: ε of Sinkhorn-Knopp (0.05).
        sinkhorn_iterations: Sinkhorn iterations (3).
        gather_distributed: Equipartition over the samples of all processes.
    """
    high, low = list(high_resolution_scores), list(low_resolution_scores)
    n_crops = len(high) + len(low)
    if not high or n_crops < 2:
        raise ValueError(
            f"swav_loss needs at least one high-resolution crop and two crops in total, got "
            f"{len(high)} high- and {len(low)} low-resolution crops"
        )
    if queue_scores is not None and len(queue_scores) != len(high):
        raise ValueError(
            f"queue_scores must have one entry per high-resolution crop ({len(high)}), got "
            f"{len(queue_scores)}"
        )
    loss = high[0].new_zeros(())
    for s, scores_s in enumerate(high):
        scores = scores_s.detach()
        if queue_scores is not None:
            scores = torch.cat([scores, queue_scores[s].detach()])
        codes = sinkhorn_knopp(
            scores, epsilon=epsilon, iterations=sinkhorn_iterations, gather_distributed=gather_distributed
        )[: scores_s.shape[0]]
        codes = codes.to(scores_s.dtype)
        others = [z for t, z in enumerate(high) if t != s] + low
        loss = loss + sum(_swapped_prediction(z, codes, temperature) for z in others) / (n_crops - 1)
    return loss / len(high)
