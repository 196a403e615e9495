"""simclust_loss against values derived independently from the formulas of DESIGN.md / the paper."""

from __future__ import annotations

import math

import pytest
import torch

from sslzoo.losses import simclust_loss

# K = 2 feature dimensions, B = 2 samples.
P1 = [[1.0, 2.0], [3.0, -1.0]]
P2 = [[-1.0, 1.0], [2.0, 2.0]]
Z1 = [[2.0, 1.0], [0.0, 1.0]]
Z2 = [[1.0, -1.0], [1.0, 3.0]]


def _unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _softmax(v, t):
    e = [math.exp(x / t) for x in v]
    return [x / sum(e) for x in e]


def _reference(p1, p2, z1, z2, variant, tau_s, tau_t, w, scale, adaptive):
    """Scalar, loop-by-loop evaluation of the SimClust formulas (no torch)."""
    p1, p2, z1, z2 = ([_unit(r) for r in m] for m in (p1, p2, z1, z2))
    b, k = len(p1), len(p1[0])

    def dot(a, c):
        return sum(x * y for x, y in zip(a, c, strict=True))

    if variant == "simsiam":
        sim = -0.5 * (
            sum(dot(p1[i], z2[i]) for i in range(b)) / b + sum(dot(p2[i], z1[i]) for i in range(b)) / b
        )
    else:
        sq = lambda a, c: sum((x - y) ** 2 for x, y in zip(a, c, strict=True))  # noqa: E731
        sim = sum(sq(p1[i], z2[i]) for i in range(b)) / b + sum(sq(p2[i], z1[i]) for i in range(b)) / b
    m1 = [_softmax(r, tau_t) for r in z1]
    m2 = [_softmax(r, tau_t) for r in z2]
    l2 = lambda v: math.sqrt(sum(x * x for x in v))  # noqa: E731
    n1 = [_softmax(p1[i], l2(m2[i]) if adaptive else tau_s) for i in range(b)]
    n2 = [_softmax(p2[i], l2(m1[i]) if adaptive else tau_s) for i in range(b)]
    ce = -0.5 * (
        sum(sum(m1[i][c] * math.log(n2[i][c]) for c in range(k)) for i in range(b)) / b
        + sum(sum(m2[i][c] * math.log(n1[i][c]) for c in range(k)) for i in range(b)) / b
    )
    q = [(sum(n1[i][c] for i in range(b)) + sum(n2[i][c] for i in range(b))) / (2 * b) for c in range(k)]
    uni = -(math.log(k) + sum(math.log(x) for x in q) / k)
    loss = scale * (w * uni + ce) + (1 - scale) * sim
    return {"loss": loss, "similarity": sim, "cross_entropy": ce, "uniformity": uni}


@pytest.mark.parametrize("variant", ["simsiam", "momentum"])
@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("scale", [0.0, 0.4, 1.0])
def test_matches_formulas_k2_b2(variant, adaptive, scale):
    kwargs = dict(variant=variant, tau_student=0.3, tau_teacher=0.2, uniformity_weight=2.5, scale=scale)
    out = simclust_loss(
        *(torch.tensor(m, dtype=torch.float64) for m in (P1, P2, Z1, Z2)),
        adaptive_temperature=adaptive,
        **kwargs,
    )
    ref = _reference(P1, P2, Z1, Z2, variant, 0.3, 0.2, 2.5, scale, adaptive)
    for key, value in ref.items():
        assert out[key].item() == pytest.approx(value, rel=1e-10, abs=1e-12), key


def test_closed_form_axis_aligned():
    # p1 = z1 = e1, p2 = z2 = e2: cosines 0, q̄ = (½, ½) so uniformity 0, and
    # CE = −[σ_t log(1 − σ_s) + (1 − σ_t) log σ_s] with σ_x = sigmoid(1/τ_x).
    e1, e2 = torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    tau_s, tau_t = 0.5, 0.25
    out = simclust_loss(e1, e2, e1, e2, tau_student=tau_s, tau_teacher=tau_t, scale=1.0)
    sig_s, sig_t = 1 / (1 + math.exp(-1 / tau_s)), 1 / (1 + math.exp(-1 / tau_t))
    ce = -(sig_t * math.log(1 - sig_s) + (1 - sig_t) * math.log(sig_s))
    assert out["similarity"].item() == pytest.approx(0.0, abs=1e-15)
    assert out["uniformity"].item() == pytest.approx(0.0, abs=1e-15)
    assert out["cross_entropy"].item() == pytest.approx(ce, rel=1e-12)
    assert out["loss"].item() == pytest.approx(ce, rel=1e-12)
    assert out["q_entropy"].item() == pytest.approx(math.log(2), rel=1e-12)


def test_targets_get_no_gradient_and_predictions_do():
    p1, p2, z1, z2 = (torch.randn(6, 5, dtype=torch.float64, requires_grad=True) for _ in range(4))
    simclust_loss(p1, p2, z1, z2, scale=0.5, adaptive_temperature=True)["loss"].backward()
    assert z1.grad is None and z2.grad is None
    assert p1.grad.abs().sum() > 0 and p2.grad.abs().sum() > 0


def test_stable_for_sharp_temperatures():
    p1, p2, z1, z2 = torch.randn(4, 32, 16).unbind(0)
    out = simclust_loss(p1, p2, z1, z2, tau_student=1e-3, tau_teacher=1e-3)
    assert all(torch.isfinite(v) for v in out.values())


def test_bad_input_errors():
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match="variant"):
        simclust_loss(x, x, x, x, variant="byol")
    with pytest.raises(ValueError, match="shape"):
        simclust_loss(x, x, x, torch.randn(4, 7))
