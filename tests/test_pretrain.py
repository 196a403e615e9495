"""End-to-end runs of recipes/pretrain.py on a tiny digits subset at 8 px (a few seconds per run)."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _torchrun import run_torchrun
from safetensors.torch import load_file

import sslzoo
from sslzoo.config import ConfigError, load_config
from sslzoo.training import NonFiniteLossError

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "recipes" / "pretrain.py"


def _load_recipe():
    spec = importlib.util.spec_from_file_location("sslzoo_recipe_pretrain", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


recipe = _load_recipe()


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory):
    """96 training and 48 test digits saved as a local data set (6 steps per epoch at batch 16)."""
    import datasets

    from sslzoo.data import load_source

    path = tmp_path_factory.mktemp("tiny_digits")
    dd = datasets.DatasetDict(
        train=load_source("digits", "train").select(range(96)),
        test=load_source("digits", "test").select(range(48)),
    )
    dd.save_to_disk(str(path))
    return str(path)


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    from accelerate.state import AcceleratorState, GradientState

    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def _args(source, out, *extra):
    return [
        "--data.source", source, "--data.image_size", "8", "--data.batch_size", "16", "--train.epochs", "2",
        "--optim.warmup_epochs", "0.5", "--optim.base_lr", "0.5", "--model.hparams.ramp_epochs", "[0.5, 1.5]",
        "--train.tracker", "jsonl", "--train.log_every", "1", "--train.progress_bar", "false",
        "--knn.batch_size", "64", "--output-dir", str(out), *extra,
    ]  # fmt: skip


def _losses(run_dir):
    rows = [json.loads(line) for line in (Path(run_dir) / "logs" / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["train/loss"] for r in rows if "train/loss" in r}


@pytest.mark.slow
def test_run_writes_files_and_exported_encoder_loads(tiny_source, tmp_path):
    out = tmp_path / "run"
    metrics = recipe.main(_args(tiny_source, out, "--knn.every", "1"))
    for name in ("model.safetensors", "config.json", "config.yaml", "metrics.json", "README.md"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["knn_top1_init"] == metrics["knn_top1_init"] and 0 <= saved["knn_top1"] <= 100
    assert saved["global_step"] == 12 and [h["epoch"] for h in saved["knn_history"]] == [0, 1, 2]
    cfg = load_config(out / "config.yaml")  # the resolved config: method defaults and views filled in
    assert cfg.data.views == "simclust" and cfg.model.hparams["proj_dim"] == 512
    assert cfg.model.hparams["ramp_epochs"] == [0.5, 1.5] and cfg.output_dir == str(out)
    assert len(_losses(out)) == 12
    checkpoints = sorted((out / "checkpoints").glob("step_*"))
    assert [c.name for c in checkpoints] == ["step_00000006", "step_00000012"]

    encoder = sslzoo.create_model("resnet18_cifar_simclust", pretrained=str(out))
    trained = load_file(str(checkpoints[-1] / "model.safetensors"))  # written by accelerate.save_state
    state = encoder.state_dict()
    backbone = {k[len("backbone.") :]: v for k, v in trained.items() if k.startswith("backbone.")}
    assert set(backbone) == set(state)
    for key, value in backbone.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0, msg=key)
    encoder.eval()
    with torch.no_grad():
        assert encoder(torch.randn(2, 3, 8, 8)).shape == (2, 512)


@pytest.mark.slow
def test_stop_and_resume_reproduces_uninterrupted_losses(tiny_source, tmp_path):
    full = tmp_path / "full"
    recipe.main(_args(tiny_source, full, "--knn.enabled", "false"))
    reference = _losses(full)
    assert sorted(reference) == list(range(1, 13))

    part = (
        tmp_path / "part"
    )  # stop mid-epoch (step 8 of 12; epoch 1, batch 2), then resume from the run folder
    first = recipe.main(_args(tiny_source, part, "--knn.enabled", "false", "--train.max_steps", "8"))
    assert first["global_step"] == 8
    assert (part / "checkpoints" / "LATEST").read_text().strip() == "step_00000008"
    recipe.main(["--resume", str(part)])  # the run's config.yaml supplies everything else
    resumed = _losses(part)
    assert sorted(resumed) == list(range(1, 13))
    for step in range(1, 13):
        assert resumed[step] == reference[step], f"step {step}: {resumed[step]} != {reference[step]}"
    ref_ckpt = load_file(str(full / "checkpoints" / "step_00000012" / "model.safetensors"))
    res_ckpt = load_file(str(part / "checkpoints" / "step_00000012" / "model.safetensors"))
    for key in ref_ckpt:
        assert torch.equal(ref_ckpt[key], res_ckpt[key]), key


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tiny_source, tmp_path, monkeypatch):
    from sslzoo.methods.simclust import SimClust

    calls = {"n": 0}
    original = SimClust.forward

    def poisoned(self, views):
        out = original(self, views)
        calls["n"] += 1
        if calls["n"] == 4:  # the forward of step index 3
            out["loss"] = out["loss"] * float("nan")
            out["cross_entropy"] = torch.tensor(float("inf"))
        return out

    monkeypatch.setattr(SimClust, "forward", poisoned)
    out = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError) as err:
        recipe.main(_args(tiny_source, out, "--knn.enabled", "false", "--train.checkpoint_every_steps", "2"))
    msg = str(err.value)
    assert "at step 3" in msg and "loss, cross_entropy" in msg and "similarity=" in msg
    assert "step_00000002" in msg
    assert [p.name for p in (out / "checkpoints").glob("step_*")] == ["step_00000002"]
    assert (out / "checkpoints" / "LATEST").read_text().strip() == "step_00000002"
    assert not (out / "model.safetensors").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--optim.learning_rate", "0.1"], "unknown config key 'optim.learning_rate'"),
        (["--data.batch_size", "15", "--train.grad_accum_steps", "2"], "must be divisible"),
        (["--model.hparams.no_such_hparam", "1"], "no_such_hparam"),
        (["--resume"], "no checkpoint found"),
    ],
)
def test_bad_configs_error_clearly(tiny_source, tmp_path, extra, message):
    with pytest.raises((ConfigError, TypeError), match=message):
        recipe.main(_args(tiny_source, tmp_path / "bad", "--knn.enabled", "false", *extra))


def test_bad_config_exit_code_from_command_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--train.epochz", "3"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "unknown config key 'train.epochz'" in proc.stderr and "train.epochs" in proc.stderr


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_sigterm_saves_checkpoint_then_resume_finishes(tiny_source, tmp_path):
    out = tmp_path / "sig"
    args = _args(tiny_source, out, "--knn.enabled", "false", "--train.epochs", "20")
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args], env=_env(), stderr=subprocess.PIPE, text=True
    )
    log = out / "logs" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.is_file() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    state = json.loads(
        (
            out / "checkpoints" / (out / "checkpoints" / "LATEST").read_text().strip() / "training_state.json"
        ).read_text()
    )
    assert 3 <= state["global_step"] < 240
    more = str(state["global_step"] + 2)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--resume", str(out), "--train.max_steps", more],
        env=_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "model.safetensors").is_file()


@pytest.mark.slow
def test_torchrun_two_processes_agree_with_one(tiny_source, tmp_path):
    common = ["--knn.enabled", "false", "--train.max_steps", "3", "--optim.warmup_epochs", "0"]
    one, two = tmp_path / "one", tmp_path / "two"
    recipe.main(_args(tiny_source, one, *common))
    proc = run_torchrun(SCRIPT, *_args(tiny_source, two, *common), env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = _losses(one), _losses(two)
    assert sorted(b) == [1, 2, 3]
    for step in (1, 2, 3):
        assert b[step] == pytest.approx(a[step], rel=1e-4, abs=1e-5), (step, a, b)
    assert (two / "checkpoints" / "step_00000003" / "random_states_1.pkl").is_file()
