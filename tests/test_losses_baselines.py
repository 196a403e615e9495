"""Losses of the six baselines against independent computations (lightly's losses, or by hand)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from lightly.loss import BarlowTwinsLoss, DINOLoss, NTXentLoss, SwaVLoss, VICRegLoss

from sslzoo.losses.barlowtwins import barlow_twins_loss
from sslzoo.losses.dino import dino_loss, dino_update_center
from sslzoo.losses.mocov3 import mocov3_loss
from sslzoo.losses.simclr import nt_xent_loss
from sslzoo.losses.swav import sinkhorn_knopp, swav_loss
from sslzoo.losses.vicreg import vicreg_loss


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_nt_xent_matches_lightly_value_and_gradient(temperature: float) -> None:
    z1, z2 = _randn(6, 5, seed=0).requires_grad_(), _randn(6, 5, seed=1).requires_grad_()
    ours = nt_xent_loss(z1, z2, temperature=temperature)
    g_ours = torch.autograd.grad(ours, (z1, z2))
    ref = NTXentLoss(temperature=temperature)(z1, z2)
    g_ref = torch.autograd.grad(ref, (z1, z2))
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_nt_xent_by_hand_two_samples() -> None:
    # B=2 with orthonormal rows: u = [e1, e2, e1, e3]; positives (0,2), (1,3).
    e = torch.eye(3, dtype=torch.float64)
    z1, z2 = torch.stack([e[0], e[1]]), torch.stack([e[0], e[2]])
    tau = 0.5
    # rows 0 and 2 (e1): positive sim 1, the two negatives have sim 0.
    l_e1 = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2))
    # rows 1 (e2) and 3 (e3): positive sim 0, negatives sim 0 -> -log(1/3).
    l_other = math.log(3)
    expected = (2 * l_e1 + 2 * l_other) / 4
    assert nt_xent_loss(z1, z2, temperature=tau).item() == pytest.approx(expected, rel=1e-12)


def test_mocov3_by_hand() -> None:
    q1, q2, k1, k2 = (_randn(4, 3, seed=s) for s in range(4))
    tau = 0.2

    def ctr(q: torch.Tensor, k: torch.Tensor) -> float:
        total = 0.0
        for b in range(q.shape[0]):
            qb = q[b] / q[b].norm()
            sims = [float(qb @ (k[n] / k[n].norm())) / tau for n in range(k.shape[0])]
            total += -(sims[b] - math.log(sum(math.exp(s) for s in sims)))
        return 2 * tau * total / q.shape[0]

    expected = ctr(q1, k2) + ctr(q2, k1)
    assert mocov3_loss(q1, q2, k1, k2, temperature=tau).item() == pytest.approx(expected, rel=1e-12)


def test_mocov3_keys_get_no_gradient() -> None:
    q1, q2 = _randn(4, 3, seed=0).requires_grad_(), _randn(4, 3, seed=1).requires_grad_()
    k1, k2 = _randn(4, 3, seed=2).requires_grad_(), _randn(4, 3, seed=3).requires_grad_()
    mocov3_loss(q1, q2, k1, k2).backward()
    assert q1.grad is not None and k1.grad is None and k2.grad is None


def test_sinkhorn_is_equipartitioned() -> None:
    scores = F.normalize(_randn(12, 5, seed=0), dim=1) @ F.normalize(_randn(4, 5, seed=1), dim=1).T
    q = sinkhorn_knopp(scores, epsilon=0.5, iterations=200)
    torch.testing.assert_close(q.sum(dim=1), torch.ones(12, dtype=torch.float64))
    # After many iterations every prototype receives N/K samples' worth of mass.
    torch.testing.assert_close(q.sum(dim=0), torch.full((4,), 3.0, dtype=torch.float64), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n_low", [0, 3])
@pytest.mark.parametrize("queue", [False, True])
def test_swav_matches_lightly(n_low: int, queue: bool) -> None:
    protos = F.normalize(_randn(7, 5, seed=100), dim=1)

    def scores(seed: int, n: int = 6) -> torch.Tensor:
        return F.normalize(_randn(n, 5, seed=seed), dim=1) @ protos.T

    high = [scores(0).requires_grad_(), scores(1).requires_grad_()]
    low = [scores(10 + i).requires_grad_() for i in range(n_low)]
    queue_scores = [scores(20, 9), scores(21, 9)] if queue else None
    ours = swav_loss(high, low, queue_scores, temperature=0.1, epsilon=0.05, sinkhorn_iterations=3)
    ref = SwaVLoss(temperature=0.1, sinkhorn_iterations=3, sinkhorn_epsilon=0.05)(high, low, queue_scores)
    torch.testing.assert_close(ours, ref.reshape(()), rtol=1e-10, atol=1e-12)
    g_ours = torch.autograd.grad(ours, high + low)
    g_ref = torch.autograd.grad(ref.sum(), high + low)
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n_local", [0, 4])
def test_dino_matches_lightly_including_centre(n_local: int) -> None:
    k = 9
    teacher = [_randn(5, k, seed=s) for s in range(2)]
    student = [_randn(5, k, seed=10 + s).requires_grad_() for s in range(2 + n_local)]
    center = _randn(1, k, seed=99) * 0.1
    ref_loss_fn = DINOLoss(output_dim=k, teacher_temp=0.07, student_temp=0.1, center_momentum=0.9)
    ref_loss_fn.center = center.clone()
    ours = dino_loss(student, teacher, center, tau_student=0.1, tau_teacher=0.07)
    ref = ref_loss_fn(teacher, student, teacher_temp=0.07)
    # lightly holds the teacher temperature as a float32 tensor, hence the 1e-8 tolerance.
    torch.testing.assert_close(ours, ref, rtol=1e-8, atol=1e-10)
    g_ours = torch.autograd.grad(ours, student)
    g_ref = torch.autograd.grad(ref, student)
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10)
    new_center = dino_update_center(center, teacher, momentum=0.9)
    torch.testing.assert_close(new_center, ref_loss_fn.center.reshape(1, k), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("lambda_", [0.0051, 0.5])
def test_barlow_twins_matches_lightly(lambda_: float) -> None:
    z1, z2 = _randn(8, 6, seed=0).requires_grad_(), _randn(8, 6, seed=1).requires_grad_()
    out = barlow_twins_loss(z1, z2, lambda_=lambda_)
    ref = BarlowTwinsLoss(lambda_param=lambda_)(z1, z2)
    torch.testing.assert_close(out["loss"], ref, rtol=1e-10, atol=1e-12)
    g_ours = torch.autograd.grad(out["loss"], (z1, z2))
    g_ref = torch.autograd.grad(ref, (z1, z2))
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(out["loss"], out["invariance"] + lambda_ * out["redundancy"])


def test_barlow_twins_identical_views_have_zero_invariance() -> None:
    z = _randn(16, 4, seed=0)
    out = barlow_twins_loss(z, z.clone())
    assert out["invariance"].item() == pytest.approx(0.0, abs=1e-8)


def test_vicreg_matches_lightly() -> None:
    z1, z2 = _randn(8, 6, seed=0).requires_grad_(), _randn(8, 6, seed=1).requires_grad_()
    out = vicreg_loss(z1, z2)
    ref = VICRegLoss(lambda_param=25.0, mu_param=25.0, nu_param=1.0, eps=1e-4)(z1, z2)
    torch.testing.assert_close(out["loss"], ref, rtol=1e-10, atol=1e-12)
    g_ours = torch.autograd.grad(out["loss"], (z1, z2))
    g_ref = torch.autograd.grad(ref, (z1, z2))
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_vicreg_terms_by_hand() -> None:
    # Two samples, one dimension each view: z1 = [0, 2], z2 = [1, 1].
    z1 = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    z2 = torch.tensor([[1.0], [1.0]], dtype=torch.float64)
    out = vicreg_loss(z1, z2, eps=0.0)
    assert out["invariance"].item() == pytest.approx(1.0)  # mean((−1)², 1²)
    # std(z1) = sqrt(2) > 1 -> 0; std(z2) = 0 -> 1; half-sum = 0.5. No off-diagonal for D=1.
    assert out["variance"].item() == pytest.approx(0.5)
    assert out["covariance"].item() == pytest.approx(0.0)
    assert out["loss"].item() == pytest.approx(25 * 1.0 + 25 * 0.5)


@pytest.mark.parametrize(
    "call",
    [
        lambda: nt_xent_loss(torch.zeros(2, 3), torch.zeros(3, 3)),
        lambda: nt_xent_loss(torch.zeros(2, 3), torch.zeros(2, 3), temperature=0.0),
        lambda: mocov3_loss(*(torch.zeros(2, 3) for _ in range(3)), torch.zeros(2, 4)),
        lambda: swav_loss([torch.zeros(2, 3)]),
        lambda: dino_loss([torch.zeros(2, 3)], [torch.zeros(2, 3)], torch.zeros(3)),
        lambda: barlow_twins_loss(torch.zeros(2, 3), torch.zeros(2, 4)),
        lambda: vicreg_loss(torch.zeros(1, 3), torch.zeros(1, 3)),
    ],
)
def test_bad_input_raises_clear_error(call) -> None:
    with pytest.raises(ValueError):
        call()
