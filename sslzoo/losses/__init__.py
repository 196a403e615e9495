"""Loss functions of the self-supervised methods: pure functions, one per file, distributed-correct
(statistics over the batch use the gradient-carrying collectives of :mod:`sslzoo.distributed`)."""

from sslzoo.losses.barlowtwins import barlow_twins_loss
from sslzoo.losses.byol import byol_loss
from sslzoo.losses.dino import dino_batch_center, dino_loss, dino_update_center
from sslzoo.losses.mocov3 import info_nce, mocov3_loss
from sslzoo.losses.negative_cosine import negative_cosine_similarity
from sslzoo.losses.simclr import nt_xent_loss
from sslzoo.losses.simclust import simclust_loss
from sslzoo.losses.swav import sinkhorn_knopp, swav_loss
from sslzoo.losses.vicreg import vicreg_loss

__all__ = [
    "barlow_twins_loss",
    "byol_loss",
    "dino_batch_center",
    "dino_loss",
    "dino_update_center",
    "info_nce",
    "mocov3_loss",
    "negative_cosine_similarity",
    "nt_xent_loss",
    "simclust_loss",
    "sinkhorn_knopp",
    "swav_loss",
    "vicreg_loss",
]
