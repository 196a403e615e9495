"""Smoke runs of recipes/linear_probe.py and recipes/finetune.py on digits at 8 px."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _recipe(name):
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", ROOT / "recipes" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_linear_probe_recipe_writes_card_metrics(tmp_path):
    out = tmp_path / "lp"
    args = ["--model", "resnet18_cifar_simclust", "--data", "digits", "--image-size", "8", "--epochs", "3"]
    res = _recipe("linear_probe").main([*args, "--output-dir", str(out), "--cache-dir", str(out / "cache")])
    for protocol in ("knn", "linear"):
        rec = json.loads((out / f"{protocol}_metrics.json").read_text())
        assert rec == res[protocol]
        assert rec["protocol"] == protocol and rec["dataset"] == "digits"
        assert 0.0 <= rec["top1"] <= rec["top5"] <= 100.0
        assert "linear_probe.py" in rec["command"] or "pytest" in rec["command"]
    assert (out / "cache" / "train.safetensors").is_file()


@pytest.mark.slow
def test_finetune_recipe_lowers_training_loss(tmp_path):
    out = tmp_path / "ft"
    rec = _recipe("finetune").main(
        [
            "--model",
            "resnet18_cifar_simclust",
            "--data",
            "digits",
            "--image-size",
            "8",
            "--epochs",
            "2",
            "--max-steps-per-epoch",
            "4",
            "--batch-size",
            "32",
            "--lr",
            "2e-3",
            "--output-dir",
            str(out),
        ]
    )
    assert json.loads((out / "finetune_metrics.json").read_text()) == rec
    assert rec["protocol"] == "finetune" and rec["num_classes"] == 10
    assert rec["final_train_loss"] < rec["first_train_loss"]


def test_shared_evaluation_arguments():
    import argparse

    from sslzoo.eval.recipe_args import add_evaluation_arguments, image_size, parse_pretrained

    parser = argparse.ArgumentParser()
    add_evaluation_arguments(parser)
    args = parser.parse_args(["--model", "resnet18_cifar_simclust"])
    assert (args.pretrained, args.data, args.train_split, args.test_split, args.seed) == (
        "false", "digits", "train", "test", 0,
    )  # fmt: skip
    assert image_size(args) == 32  # resnet18_cifar's input size
    assert image_size(parser.parse_args(["--model", "resnet50_simclust", "--image-size", "96"])) == 96
    assert [parse_pretrained(v) for v in ("TRUE", "false", "runs/a")] == [True, False, "runs/a"]
