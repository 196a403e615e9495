"""NT-Xent, the contrastive loss of SimCLR, with negatives from the global batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sslzoo import distributed as sdist

__all__ = ["nt_xent_loss"]


def nt_xent_loss(
    z1: torch.Tensor, z2: torch.Tensor, *, temperature: float = 0.1, gather_distributed: bool = True
) -> torch.Tensor:
    """Normalised temperature-scaled cross-entropy (NT-Xent) of SimCLR.

    - SimCLR, Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations",
      https://arxiv.org/abs/2002.05709, Eq. (1).
    - Informed by lightly's ``NTXentLoss`` (https://github.com/lightly-ai/lightly).

    The 2N projections ``u = [z1; z2]`` of the global batch (N rows over all processes) are
    L2-normalised; for every row ``i`` with positive ``j(i)`` (the other view of the same image)::

        ℓ_i = −log  exp(sim(u_i, u_j(i)) / τ) / Σ_{k ≠ i} exp(sim(u_i, u_k) / τ)
        L   = 1/(2N) Σ_i ℓ_i

    With ``gather_distributed`` (default) every process contrasts its own rows against the rows of all
    processes, gathered **with gradient** (``sslzoo.distributed.gather``), and averages over its own rows;
    with DDP's gradient averaging, N processes × B rows give the loss and gradients of one process with
    N·B rows. Set it to False to use only the local batch as negatives (the loss then depends on the
    world size).

    Example:
        >>> z1, z2 = torch.randn(8, 128), torch.randn(8, 128)
        >>> loss = nt_xent_loss(z1, z2, temperature=0.1)

    Args:
        z1: Projections of the first view, shape (B, D).
        z2: Projections of the second view, shape (B, D); row b is the positive of ``z1[b]``.
        temperature: τ, the softmax temperature (0.1 for SimCLR at batch 4096 with LARS; 0.5 at small batch).
        gather_distributed: Use the negatives of all processes.

    Returns:
        The scalar loss (mean over this process's 2B rows).
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(
            f"nt_xent_loss expects z1 and z2 of the same shape (B, D), got {tuple(z1.shape)} "
            f"and {tuple(z2.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    batch = z1.shape[0]
    z1 = F.normalize(z1, dim=1)
    z2 = F.normalize(z2, dim=1)
    world, offset = 1, 0
    if gather_distributed and sdist.is_distributed():
        world, offset = sdist.world_size(), sdist.rank() * batch
        all1, all2 = sdist.gather(z1), sdist.gather(z2)
    else:
        all1, all2 = z1, z2
    total = world * batch
    queries = torch.cat([z1, z2])  # (2B, D): this process's rows
    keys = torch.cat([all1, all2])  # (2N, D): all rows, first views then second views
    logits = queries @ keys.T / temperature
    idx = torch.arange(batch, device=z1.device) + offset
    self_cols = torch.cat([idx, idx + total])
    rows = torch.arange(2 * batch, device=z1.device)
    # A row is never its own negative.
    logits = logits.index_put((rows, self_cols), logits.new_tensor(float("-inf")))
    targets = torch.cat([idx + total, idx])
    return F.cross_entropy(logits, targets)
