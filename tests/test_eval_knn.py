"""Weighted kNN against hand-computed answers and a brute-force reference."""

import math

import pytest
import torch

from sslzoo.eval import knn_accuracy, knn_evaluate, knn_neighbors, knn_predict

S = 1 / math.sqrt(2)
# Train bank of unit vectors with known cosines to the query [1, 0]: 1, 0, 1/sqrt(2), -1.
TRAIN = torch.tensor([[1.0, 0.0], [0.0, 1.0], [S, S], [-1.0, 0.0]])
TRAIN_Y = torch.tensor([0, 1, 1, 2])
QUERY = torch.tensor([[1.0, 0.0]])


def test_weighted_vote_matches_hand_computation():
    # k=3 > size of class 0 (one member): neighbours are rows 0, 2, 1 with similarities 1, 1/sqrt2, 0.
    scores = knn_predict(TRAIN, TRAIN_Y, QUERY, k=3, temperature=1.0)
    expected = torch.tensor([[math.exp(1.0), math.exp(S) + math.exp(0.0), 0.0]])
    torch.testing.assert_close(scores, expected)
    # The two class-1 neighbours outvote the single nearest class-0 one at T=1 (3.03 > 2.72) ...
    assert knn_accuracy(TRAIN, TRAIN_Y, QUERY, torch.tensor([1]), k=3, temperature=1.0) == 100.0
    # ... but at T=0.07 the nearest neighbour dominates: e^(1/0.07) > e^(0.707/0.07) + 1.
    assert knn_accuracy(TRAIN, TRAIN_Y, QUERY, torch.tensor([0]), k=3, temperature=0.07) == 100.0
    # k=1: only the nearest neighbour.
    assert knn_accuracy(TRAIN, TRAIN_Y, QUERY, torch.tensor([0]), k=1, temperature=1.0) == 100.0


def test_features_are_cosine_normalised():
    scaled = TRAIN * torch.tensor([[3.0], [0.5], [7.0], [2.0]])
    torch.testing.assert_close(
        knn_predict(scaled, TRAIN_Y, QUERY * 10, k=3, temperature=1.0),
        knn_predict(TRAIN, TRAIN_Y, QUERY, k=3, temperature=1.0),
    )


def test_k_larger_than_train_set_is_clamped_with_warning():
    with pytest.warns(UserWarning, match="exceeds"):
        scores = knn_predict(TRAIN, TRAIN_Y, QUERY, k=10, temperature=1.0)
    expected = torch.tensor([[math.exp(1.0), math.exp(S) + 1.0, math.exp(-1.0)]])
    torch.testing.assert_close(scores, expected)


def test_tied_neighbours_resolve_to_lower_train_index():
    bank = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    sim, idx = knn_neighbors(bank, QUERY, k=2)
    assert idx.tolist() == [[1, 2]]
    for tcs in (1, 2, 3):  # the tie straddles training blocks
        assert knn_neighbors(bank, QUERY, k=2, train_chunk_size=tcs)[1].tolist() == [[1, 2]]
    # k=1 with two identical rows of different classes: the lower index decides the label.
    assert knn_accuracy(bank, torch.tensor([5, 3, 4, 4]), QUERY, torch.tensor([3]), k=1) == 100.0
    assert knn_accuracy(bank, torch.tensor([5, 4, 3, 3]), QUERY, torch.tensor([4]), k=1) == 100.0


def test_tied_votes_resolve_to_lower_class():
    bank = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert knn_accuracy(bank, torch.tensor([2, 1]), QUERY, torch.tensor([1]), k=2) == 100.0


def _reference(train, train_y, test, k, T, num_classes):
    """Brute force: full similarity matrix, Python sort by (-similarity, index)."""
    train = torch.nn.functional.normalize(train.double(), dim=1)
    test = torch.nn.functional.normalize(test.double(), dim=1)
    sims = test @ train.T
    out = torch.zeros(test.shape[0], num_classes, dtype=torch.double)
    for i, row in enumerate(sims.tolist()):
        for j in sorted(range(len(row)), key=lambda j: (-row[j], j))[:k]:
            out[i, train_y[j]] += math.exp(row[j] / T)
    return out


def test_matches_brute_force_reference():
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(300, 16, generator=g), torch.randn(50, 16, generator=g)
    train_y = torch.randint(0, 7, (300,), generator=g)
    got = knn_predict(train, train_y, test, k=20, temperature=0.5, num_classes=7, chunk_size=9)
    torch.testing.assert_close(
        got.double(), _reference(train, train_y, test, 20, 0.5, 7), rtol=1e-4, atol=1e-5
    )


def test_chunked_equals_unchunked_with_many_ties():
    # Rows with four +-1 entries in 16 dims have norm 2, so normalised dot products are exact multiples of
    # 1/4 in any summation order: many exact ties, and any chunking must pick the same neighbours.
    g = torch.Generator().manual_seed(1)

    def rows(n):
        x = torch.zeros(n, 16)
        for r in range(n):
            cols = torch.randperm(16, generator=g)[:4]
            x[r, cols] = torch.randint(0, 2, (4,), generator=g).float() * 2 - 1
        return x

    train, test = rows(400), rows(120)
    train_y = torch.randint(0, 10, (400,), generator=g)
    test_y = torch.randint(0, 10, (120,), generator=g)
    full_sim, full_idx = knn_neighbors(train, test, k=25, chunk_size=1000, train_chunk_size=10_000)
    for cs, tcs in [(1, 25), (7, 33), (64, 400), (120, 26)]:
        sim, idx = knn_neighbors(train, test, k=25, chunk_size=cs, train_chunk_size=tcs)
        assert torch.equal(idx, full_idx) and torch.equal(sim, full_sim)
    ref = _reference(train, train_y, test, 25, 0.07, 10)
    got = knn_predict(train, train_y, test, k=25, chunk_size=7, train_chunk_size=33)
    torch.testing.assert_close(got.double(), ref, rtol=1e-4, atol=0)
    a = knn_evaluate(train, train_y, test, test_y, ks=(5, 25), chunk_size=1000)
    b = knn_evaluate(train, train_y, test, test_y, ks=(5, 25), chunk_size=7, train_chunk_size=30)
    assert a == b
    assert a["knn_top1_k25"] == knn_accuracy(train, train_y, test, test_y, k=25, chunk_size=11)


def test_top5_and_clear_errors():
    res = knn_evaluate(TRAIN, TRAIN_Y, QUERY, torch.tensor([2]), ks=(3,))
    assert res["knn_top1_k3"] == 0.0 and res["knn_top5_k3"] == 100.0  # only 3 classes: top-5 covers all
    with pytest.raises(ValueError, match="differ in width"):
        knn_accuracy(TRAIN, TRAIN_Y, torch.zeros(1, 3), torch.tensor([0]))
    with pytest.raises(ValueError, match="train_labels"):
        knn_accuracy(TRAIN, TRAIN_Y[:2], QUERY, torch.tensor([0]))
