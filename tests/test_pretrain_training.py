"""Loop pieces of sslzoo.training: atomic checkpoints, resume, stop signals, the NaN guard, trackers."""

import json
import os
import random
import signal

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from torch import nn

from sslzoo.training import (
    JSONLinesTracker,
    NonFiniteLossError,
    StopSignal,
    check_finite,
    find_checkpoint,
    list_checkpoints,
    load_checkpoint,
    reduce_logs,
    save_checkpoint,
)


def _setup(seed=0):
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model, opt = accelerator.prepare(model, opt)
    return accelerator, model, opt


def _train(model, opt, steps):
    for _ in range(steps):
        x = torch.randn(8, 3)
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()


def test_checkpoint_round_trip_restores_weights_optimizer_and_rng(tmp_path):
    accelerator, model, opt = _setup()
    _train(model, opt, 3)
    ckpt = save_checkpoint(accelerator, tmp_path / "checkpoints", 3, {"epoch": 0, "batch_in_epoch": 3})
    assert ckpt.name == "step_00000003" and (ckpt / "model.safetensors").is_file()
    rng_at_save = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    _train(model, opt, 2)
    expected = [p.detach().clone() for p in model.parameters()]

    accelerator2, model2, opt2 = _setup(seed=123)  # different init: everything must come from the checkpoint
    state = load_checkpoint(accelerator2, find_checkpoint(tmp_path))
    assert state["epoch"] == 0 and state["batch_in_epoch"] == 3 and state["step"] == 3
    assert torch.equal(torch.get_rng_state(), rng_at_save[0]) and random.getstate() == rng_at_save[1]
    assert np.array_equal(np.random.get_state()[1], rng_at_save[2])
    # replay from the checkpoint: same RNG draws, same weights, same momentum buffers
    _train(model2, opt2, 2)
    for a, b in zip(model2.parameters(), expected, strict=True):
        torch.testing.assert_close(a.detach(), b, rtol=0, atol=0)


def test_crash_leftovers_never_break_latest(tmp_path):
    accelerator, model, opt = _setup()
    root = tmp_path / "checkpoints"
    for step in (1, 2, 3):
        _train(model, opt, 1)
        save_checkpoint(accelerator, root, step, {"epoch": 0}, keep=2)
    assert [p.name for p in list_checkpoints(root)] == ["step_00000002", "step_00000003"]
    assert (root / "LATEST").read_text().strip() == "step_00000003"
    # a crash mid-write leaves only a temporary directory: it is never picked
    (root / ".tmp-step_00000004").mkdir()
    (root / ".tmp-step_00000004" / "model.safetensors").write_bytes(b"truncated")
    assert find_checkpoint(tmp_path) == root / "step_00000003"
    # a LATEST naming a missing checkpoint falls back to the newest complete one
    (root / "LATEST").write_text("step_00000009\n")
    assert find_checkpoint(root) == root / "step_00000003"
    # the next save clears the stale temporary directory and moves LATEST on
    save_checkpoint(accelerator, root, 4, {"epoch": 0}, keep=2)
    assert find_checkpoint(tmp_path).name == "step_00000004"
    assert not any(p.name.startswith(".tmp") for p in root.iterdir())
    # saving the same step twice replaces it in place
    save_checkpoint(accelerator, root, 4, {"epoch": 1}, keep=2)
    assert json.loads((root / "step_00000004" / "training_state.json").read_text())["epoch"] == 1
    assert find_checkpoint(tmp_path / "nothing") is None
    with pytest.raises(FileNotFoundError, match="not a complete sslzoo checkpoint"):
        load_checkpoint(accelerator, tmp_path)


def test_stop_signal_sets_flag_and_second_signal_aborts():
    with StopSignal() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.name == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is not stop._handle


def test_reduce_logs_single_process():
    accelerator = Accelerator(cpu=True)
    logs, stop = reduce_logs(
        accelerator, {"loss": torch.tensor(1.5), "x": 2, "vec": torch.ones(3)}, stop=True
    )
    assert logs == {"loss": 1.5, "x": 2.0} and stop is True
    assert reduce_logs(accelerator, {"loss": torch.tensor(0.5)})[1] is False


def test_check_finite_names_step_and_terms(tmp_path):
    check_finite({"loss": 1.0, "similarity": -0.5}, step=3, epoch=0.1, checkpoint=None)
    with pytest.raises(NonFiniteLossError) as e:
        check_finite(
            {"loss": float("nan"), "cross_entropy": float("inf"), "similarity": -0.5}, 17, 1.25, "ck/x"
        )
    msg = str(e.value)
    assert "step 17" in msg and "loss, cross_entropy" in msg and "similarity=-0.5" in msg and "ck/x" in msg


def test_jsonlines_tracker(tmp_path):
    tracker = JSONLinesTracker(logging_dir=tmp_path)
    tracker.start()
    tracker.store_init_configuration({"lr": 0.1})
    tracker.log({"loss": torch.tensor(0.25), "lr": 0.1}, step=5)
    tracker.log({"knn_top1": 50.0}, step=6)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 5 and rows[0]["loss"] == 0.25 and rows[1]["knn_top1"] == 50.0
    assert json.loads((tmp_path / "hparams.json").read_text()) == {"lr": 0.1}
