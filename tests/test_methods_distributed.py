"""N processes × B = 1 process × N·B, for the loss, the gradients of backbone and heads, and the
BatchNorm running statistics (torchrun, gloo, CPU, float64).

To cover a new method add one line to CASES (hparams keep the heads tiny so the test stays fast).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _torchrun import run_torchrun

WORKER = Path(__file__).parent / "dist" / "equivalence_worker.py"
TINY = {"proj_hidden_dim": 32, "proj_dim": 16, "pred_hidden_dim": 24}
SIMCLUST = {**TINY, "proj_dim": 8, "ramp_epochs": [0, 2]}

# name -> case; "progress" sets the schedules (e.g. SimClust's scale 0.5 at epoch 1 of a 0→2 ramp).
CASES: dict[str, dict] = {
    "simsiam": {"method": "simsiam", "hparams": TINY},
    "simsiam_3views": {"method": "simsiam", "hparams": TINY, "num_views": 3},
    "byol": {"method": "byol", "hparams": TINY},
    "simclust_simsiam": {
        "method": "simclust",
        "hparams": {**SIMCLUST, "variant": "simsiam"},
        "progress": [1, 10],
    },
    "simclust_simsiam_adaptive_pca": {
        "method": "simclust",
        "hparams": {**SIMCLUST, "variant": "simsiam", "adaptive_temperature": True, "pca": True},
        "progress": [1, 10],
    },
    "simclust_momentum_3views": {
        "method": "simclust",
        "hparams": {**SIMCLUST, "variant": "momentum", "uniformity_weight": 5.0},
        "progress": [1, 10],
        "num_views": 3,
    },
    # Methods II. Multi-crop cases add smaller local views; "pre_forwards" runs training forwards on other
    # batches first, so SwAV's queue is full (and used) and DINO's centre is non-zero at the measured step.
    "simclr": {"method": "simclr", "hparams": {"proj_hidden_dim": 32, "proj_dim": 16}},
    "simclr_3views": {"method": "simclr", "hparams": {"proj_hidden_dim": 32, "proj_dim": 16}, "num_views": 3},
    "mocov3": {"method": "mocov3", "hparams": {**TINY, "temperature": 0.2}, "progress": [1, 10]},
    "swav_multicrop": {
        "method": "swav",
        "hparams": {
            "proj_hidden_dim": 32,
            "proj_dim": 16,
            "num_prototypes": 12,
            "freeze_prototypes_iters": 0,
        },
        "num_local": 2,
    },
    "swav_queue_frozen_prototypes": {
        "method": "swav",
        "hparams": {
            "proj_hidden_dim": 32,
            "proj_dim": 16,
            "num_prototypes": 12,
            "queue_length": 8,
            "queue_start_epoch": 0,
        },
        "progress": [1, 10],
        "pre_forwards": 1,
        "num_local": 2,
    },
    "dino_multicrop_centre": {
        "method": "dino",
        "hparams": {
            "out_dim": 32,
            "hidden_dim": 16,
            "bottleneck_dim": 8,
            "teacher_temp": 0.07,
            "warmup_teacher_temp_epochs": 3,
        },
        "progress": [1.5, 10],
        "pre_forwards": 1,
        "num_local": 2,
    },
    "barlowtwins": {"method": "barlowtwins", "hparams": {"proj_hidden_dim": 32, "proj_dim": 16}},
    "vicreg": {"method": "vicreg", "hparams": {"proj_hidden_dim": 32, "proj_dim": 16}},
    # Negative control: local BatchNorm must NOT match (proves the comparison can fail).
    "control_simsiam_local_bn": {"method": "simsiam", "hparams": {**TINY, "sync_batchnorm": False}},
}
DEFAULTS = {"batch": 4, "size": 16, "num_views": 2}
TOL = 1e-6


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("dist")
    cases = {name: {**DEFAULTS, **case} for name, case in CASES.items()}
    (tmp / "cases.json").write_text(json.dumps(cases))
    proc = run_torchrun(WORKER, "--cases", tmp / "cases.json", "--out", tmp / "out.json", timeout=300)
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return json.loads((tmp / "out.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in CASES if not n.startswith("control_")])
def test_two_processes_equal_one_process_double_batch(report, name):
    r = report[name]
    assert r["local_batchnorm_layers"] == 0, "every BatchNorm must be global-batch when distributed"
    assert r["num_grads"] > 10
    assert abs(r["loss_dist"] - r["loss_ref"]) < TOL, r
    assert r["max_grad_err"] < TOL * max(1.0, r["max_grad"]), r
    assert r["max_running_stat_err"] < TOL, r


@pytest.mark.slow
def test_local_batchnorm_control_differs(report):
    r = report["control_simsiam_local_bn"]
    assert r["local_batchnorm_layers"] > 0
    assert r["max_grad_err"] > 1e-4, r
