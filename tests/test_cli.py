"""The `sslzoo` console script (run in-process through sslzoo.cli.main)."""

from __future__ import annotations

import pytest

import sslzoo
from sslzoo import cli, hub


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLZOO_HOME", str(tmp_path / "home"))


def test_list(capsys):
    assert cli.main(["list", "resnet50_*"]) == 0
    out = capsys.readouterr().out.split()
    assert "resnet50_simclust" in out and all(n.startswith("resnet50_") for n in out)
    assert cli.main(["list", "--pretrained"]) == 0
    out = capsys.readouterr().out
    assert "resnet50_simclust.in1k" in out and "not trained yet" in out


def test_info_and_download_of_unpublished(capsys):
    assert cli.main(["info", "resnet50_simclust"]) == 0
    out = capsys.readouterr().out
    assert "arch:          resnet50" in out and "arXiv:2301.03041" in out
    assert "recipes/configs/resnet50_simclust_in1k.yaml" in out and "weights:" in out
    assert cli.main(["download", "resnet50_simclust.in1k"]) == 1
    err = capsys.readouterr().err
    assert "No pretrained weights found" in err and "--publish local" in err


def test_info_and_download_find_the_local_hub(tmp_path, capsys):
    save = hub.save_pretrained(
        sslzoo.create_model("resnet18_cifar_simclust"),
        tmp_path / "s",
        name="resnet18_cifar_simclust",
        tag="digits",
    )
    dest = hub.publish_local(save)
    assert cli.main(["info", "resnet18_cifar_simclust.digits"]) == 0
    assert f"local-hub: {dest / 'model.safetensors'}" in capsys.readouterr().out
    assert cli.main(["download", "resnet18_cifar_simclust.digits"]) == 0
    assert capsys.readouterr().out.strip() == str(dest / "model.safetensors")


def test_push_dry_run(tmp_path, capsys):
    save = hub.save_pretrained(
        sslzoo.create_model("resnet18_cifar_simclust"), tmp_path / "s", name="resnet18_cifar_simclust"
    )
    assert cli.main(["push", str(save), "me/enc", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "[dry run] would upload" in out and "me/enc@main" in out and "---- README.md ----" in out


def test_unknown_name_is_a_clear_error(capsys):
    assert cli.main(["info", "resnet50_simclst"]) == 1
    assert "Did you mean" in capsys.readouterr().err
