"""sslzoo.data across processes (torchrun, 2 CPU processes, gloo): sharding, streaming, seeding."""

import importlib.util
from collections import Counter
from pathlib import Path

import pytest
import torch
from _torchrun import run_torchrun
from safetensors.torch import load_file

from sslzoo.data import load_digits_dataset

WORKER = Path(__file__).parent / "dist" / "data_worker.py"


def _worker_module():
    spec = importlib.util.spec_from_file_location("data_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _keys(samples: dict[str, torch.Tensor]) -> list[tuple[int, bytes]]:
    # A sample's identity: its label and its pixels (digits has a few identical images; they count twice).
    return [(int(label), pixels.to(torch.uint8).numpy().tobytes())
            for label, pixels in zip(samples["label"], samples["pixels"], strict=True)]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("data_dist")
    parquet = tmp / "digits_train.parquet"
    load_digits_dataset("train").to_parquet(str(parquet))
    for mode in ("map", "stream"):
        proc = run_torchrun(WORKER, mode, tmp, parquet, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = {
        mode: [load_file(tmp / f"{mode}_rank{r}.safetensors") for r in range(2)] for mode in ("map", "stream")
    }
    # The same loading in this one process (no process group: shard=True is a no-op).
    reference = _worker_module().load("map")
    return ranks, reference


@pytest.mark.slow
def test_sharded_map_style_processes_split_each_epoch_and_reproduce_one_process(runs):
    ranks, reference = runs
    n = 1437
    for epoch in range(2):
        per_rank = [{k: v[r["epoch"] == epoch] for k, v in r.items()} for r in ranks["map"]]
        one = {k: v[reference["epoch"] == epoch] for k, v in reference.items()}
        assert [len(r["label"]) for r in per_rank] == [n // 2, n // 2] and len(one["label"]) == n
        keys = [Counter(_keys(r)) for r in per_rank]
        # Disjoint halves (as multisets) of the one-process epoch, one sample cut so both get as many.
        union = keys[0] + keys[1]
        assert sum(union.values()) == 2 * (n // 2) and not (union - Counter(_keys(one)))
        # Every sample gets the same views as in the one-process run: seeds follow the sample, not the process.
        reference_views = {}
        for key, v0, v1 in zip(_keys(one), one["view0"], one["view1"], strict=True):
            reference_views.setdefault(key, []).append((v0, v1))
        for r in per_rank:
            for key, v0, v1 in zip(_keys(r), r["view0"], r["view1"], strict=True):
                assert any(torch.equal(v0, a) and torch.equal(v1, b) for a, b in reference_views[key])
    # A new epoch: a new order, and new views of the same images.
    first = ranks["map"][0]
    e0, e1 = first["epoch"] == 0, first["epoch"] == 1
    assert not torch.equal(first["pixels"][e0], first["pixels"][e1])
    views_by_epoch = [dict(zip(_keys({k: v[reference["epoch"] == e] for k, v in reference.items()}),
                               reference["view0"][reference["epoch"] == e], strict=True)) for e in range(2)]  # fmt: skip
    # (An 8 px digit offers few distinct crops: a view can repeat by chance, rarely.)
    repeats = sum(torch.equal(views_by_epoch[0][key], views_by_epoch[1][key]) for key in views_by_epoch[0])
    assert repeats <= 0.01 * len(views_by_epoch[0]), repeats


@pytest.mark.slow
def test_streamed_source_is_split_by_node(runs):
    ranks, reference = runs
    streamed = [Counter(_keys(r)) for r in ranks["stream"]]
    sizes = [sum(c.values()) for c in streamed]
    assert abs(sizes[0] - sizes[1]) <= 1
    # Disjoint parts whose union is the whole split, each sample once.
    assert streamed[0] + streamed[1] == Counter(
        _keys({k: v[reference["epoch"] == 0] for k, v in reference.items()})
    )
