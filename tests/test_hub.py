"""sslzoo.hub: save → resolve → verify → load, bad input, and publishing without network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch

import sslzoo
from sslzoo import hub, registry
from sslzoo.backbones import ARCHS, ArchSpec
from sslzoo.registry import ModelEntry, PretrainedTag, register_entry

NAME = "test_resnet_simclust"  # timm's 0.5M-parameter test_resnet, registered only for these tests


def _entry(tag: PretrainedTag | None = None) -> ModelEntry:
    tag = tag or PretrainedTag("toy", hf_hub_id="sslzoo-test/test_resnet_simclust.toy", dataset="digits")
    return ModelEntry(
        name=NAME,
        arch="test_resnet",
        method="simclust",
        recipe_config="recipes/configs/digits_simclust.yaml",
        tags={tag.tag: tag},
        default_tag=tag.tag,
    )


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLZOO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def tiny(monkeypatch):
    """Register a test entry on the tiny arch; returns a function that (re)registers it with a given tag."""
    monkeypatch.setitem(ARCHS, "test_resnet", ArchSpec("test_resnet", input_size=(3, 32, 32)))

    def register(tag: PretrainedTag | None = None) -> ModelEntry:
        return register_entry(_entry(tag), overwrite=True)

    register()
    yield register
    registry._ENTRIES.pop(NAME, None)


def _randomised(model: torch.nn.Module) -> torch.nn.Module:
    # Fresh init draws the same BN buffers (ones/zeros) every time; perturb them so a load that silently
    # skipped buffers would be caught.
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.rand(t.shape, generator=g) * 0.1)
    return model.eval()


def _x(size: int = 32) -> torch.Tensor:
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_round_trip_create_model_and_timm_local_dir(tmp_path, tiny):
    model = _randomised(sslzoo.create_model(NAME))
    out = hub.save_pretrained(
        model,
        tmp_path / "save",
        name=NAME,
        tag="toy",
        dataset="digits",
        epochs=2,
        metrics={"knn_top1": 55.0},
        recipe_config={"lr": 0.1},
    )
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "test_resnet" and config["num_classes"] == 0
    assert config["num_features"] == model.num_features
    assert config["sslzoo"]["sha256"] == hub.file_sha256(out / "model.safetensors")
    assert config["sslzoo"]["recipe_config"] == {"lr": 0.1} and config["sslzoo"]["method"] == "simclust"
    # timm reads the pretrained_cfg back into its dataclass: sslzoo's own keys must not leak in.
    assert "sslzoo_name" not in config["pretrained_cfg"]

    x = _x()
    loaded = sslzoo.create_model(NAME, pretrained=str(out)).eval()
    assert torch.equal(loaded(x), model(x))
    via_file = sslzoo.create_model(NAME, pretrained=out / "model.safetensors").eval()
    assert torch.equal(via_file(x), model(x))
    via_timm = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    assert torch.equal(via_timm(x), model(x))

    clf = sslzoo.create_model(NAME, pretrained=str(out), num_classes=7).eval()
    assert clf.get_classifier().out_features == 7
    assert torch.equal(clf.forward_head(clf.forward_features(x), pre_logits=True), model(x))


def test_method_heads_saved_separately(tmp_path, tiny):
    class Method(torch.nn.Module):  # the SSLMethod contract: .backbone + heads as other state-dict keys
        def __init__(self):
            super().__init__()
            self.backbone = sslzoo.create_model(NAME)
            self.projector = torch.nn.Linear(self.backbone.num_features, 8)

    method = Method()
    out = hub.save_pretrained(method, tmp_path / "m", name=NAME)
    heads = safetensors.torch.load_file(out / hub.HEADS_NAME)
    assert set(heads) == {"projector.weight", "projector.bias"}
    assert torch.equal(heads["projector.weight"], method.projector.weight)
    enc = safetensors.torch.load_file(out / "model.safetensors")
    assert set(enc) == set(method.backbone.state_dict())


def test_classifier_is_dropped_on_save(tmp_path, tiny):
    model = _randomised(sslzoo.create_model(NAME, num_classes=5))
    out = hub.save_pretrained(model, tmp_path / "s")
    assert json.loads((out / "config.json").read_text())["num_classes"] == 0
    assert not any(k.startswith("fc.") for k in safetensors.torch.load_file(out / "model.safetensors"))
    assert model.num_classes == 5  # the caller's model is untouched


def test_resolution_local_hub_then_sha256(tmp_path, tiny, home):
    model = _randomised(sslzoo.create_model(NAME))
    save = hub.save_pretrained(model, tmp_path / "save", name=NAME, tag="toy")
    dest = hub.publish_local(save)
    assert dest == home / "models" / f"{NAME}.toy"
    sha = hub.file_sha256(dest / "model.safetensors")

    tiny(PretrainedTag("toy", hf_hub_id="sslzoo-test/x", sha256=sha))
    loaded = sslzoo.create_model(f"{NAME}.toy", pretrained=True).eval()
    assert torch.equal(loaded(_x()), model(_x()))
    assert loaded.pretrained_cfg["source"] == "local-hub"

    tiny(PretrainedTag("toy", hf_hub_id="sslzoo-test/x", sha256="0" * 64))
    with pytest.raises(hub.HubError, match="sha256 mismatch"):
        sslzoo.create_model(f"{NAME}.toy", pretrained=True)


def test_not_found_lists_what_was_tried_and_the_recipe(tiny, home):
    with pytest.raises(hub.PretrainedNotFoundError) as err:
        sslzoo.create_model(f"{NAME}.toy", pretrained=True)
    msg = str(err.value)
    assert "Tried:" in msg and str(home / "models" / f"{NAME}.toy") in msg
    assert "not published" in msg
    assert "accelerate launch recipes/pretrain.py --config recipes/configs/digits_simclust.yaml" in msg


def test_offline_with_empty_cache_says_what_was_tried(tmp_path):
    # HF_HUB_OFFLINE is read when huggingface_hub is imported, so the client runs in its own process.
    script = textwrap.dedent(
        """
        import sslzoo
        from sslzoo.backbones import ARCHS, ArchSpec
        from sslzoo.hub import PretrainedNotFoundError
        from sslzoo.registry import ModelEntry, PretrainedTag, register_entry
        ARCHS["test_resnet"] = ArchSpec("test_resnet")
        tag = PretrainedTag("toy", hf_hub_id="sslzoo-test/published", published=True)
        register_entry(ModelEntry("t_simclust", "test_resnet", "simclust", "x.yaml", {"toy": tag}, "toy"))
        try:
            sslzoo.create_model("t_simclust.toy", pretrained=True)
        except PretrainedNotFoundError as e:
            print(e)
        """
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "SSLZOO_HOME": str(tmp_path / "h"),
    }
    env.pop("HF_ENDPOINT", None)
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "No pretrained weights found for 't_simclust.toy'" in out
    assert "1. local hub folder" in out and "2. Hugging Face Hub sslzoo-test/published@main" in out
    assert "offline (HF_HUB_OFFLINE=1) and not in the HF cache" in out and str(tmp_path / "hf") in out
    assert "Offline mode: yes" in out


def test_truncated_and_corrupt_safetensors(tmp_path, tiny, home):
    save = hub.save_pretrained(sslzoo.create_model(NAME), tmp_path / "save", name=NAME, tag="toy")
    weights = save / "model.safetensors"
    data = weights.read_bytes()

    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(hub.HubError, match="not a valid safetensors file"):
        sslzoo.create_model(NAME, pretrained=str(save))
    # publishing the broken folder fails and leaves nothing (not even a staging dir) in the local hub
    with pytest.raises(hub.HubError):
        hub.publish_local(save)
    assert not (home / "models" / f"{NAME}.toy").exists()
    assert list((home / "models").iterdir()) == []

    corrupt = bytearray(data)
    corrupt[-100:] = bytes(100)  # same size and valid header: only the sha256 can tell
    weights.write_bytes(bytes(corrupt))
    with pytest.raises(hub.HubError, match="sha256"):
        hub.publish_local(save)
    assert list((home / "models").iterdir()) == []
    with pytest.raises(hub.HubError, match="sha256 mismatch"):
        hub.load_pretrained(sslzoo.create_model(NAME), source=save, check_hash=True)


def test_failed_publish_keeps_previous_version(tmp_path, tiny, home):
    good = hub.save_pretrained(
        _randomised(sslzoo.create_model(NAME)), tmp_path / "good", name=NAME, tag="toy"
    )
    dest = hub.publish_local(good)
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    bad = hub.save_pretrained(sslzoo.create_model(NAME), tmp_path / "bad", name=NAME, tag="toy")
    (bad / "model.safetensors").write_bytes((bad / "model.safetensors").read_bytes()[:1000])
    with pytest.raises(hub.HubError):
        hub.publish_local(bad)
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before
    assert sorted(p.name for p in (home / "models").iterdir()) == [f"{NAME}.toy"]


def test_save_failure_leaves_no_partial_files(tmp_path, tiny, monkeypatch):
    target = tmp_path / "out"
    target.mkdir()
    (target / "checkpoints").mkdir()  # a recipe output dir holds other things that must survive

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("sslzoo.cards.render_card_from_config", broken)
    with pytest.raises(OSError, match="disk full"):
        hub.save_pretrained(sslzoo.create_model(NAME), target, name=NAME)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # staging dir removed
    assert sorted(p.name for p in target.iterdir()) == ["checkpoints"]


def test_pickle_refused_unless_opted_in(tmp_path, tiny):
    model = _randomised(sslzoo.create_model(NAME))
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    with pytest.raises(ValueError, match="Refusing to load .*pickle"):
        sslzoo.create_model(NAME, pretrained=str(path))
    # a pickle hiding behind a .safetensors-free folder is refused too
    folder = tmp_path / "folder"
    folder.mkdir()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match="Refusing"):
        sslzoo.create_model(NAME, pretrained=str(folder))

    loaded = hub.load_pretrained(sslzoo.create_model(NAME).eval(), source=path, allow_pickle=True)
    assert torch.equal(loaded(_x()), model(_x()))

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    torch.save({"w": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(hub.HubError, match="weights_only=True"):
        hub.load_pretrained(sslzoo.create_model(NAME), source=tmp_path / "evil.pth", allow_pickle=True)


def test_strict_loading_names_the_keys(tmp_path, tiny):
    model = sslzoo.create_model(NAME)
    state = model.state_dict()
    state.pop("conv1.0.weight")
    state["extra.weight"] = torch.zeros(1)
    safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "w.safetensors")
    with pytest.raises(
        hub.HubError, match=r"missing keys \(1\): conv1.0.weight.*unexpected keys \(1\): extra.weight"
    ):
        hub.load_pretrained(sslzoo.create_model(NAME), source=tmp_path / "w.safetensors")
    other = sslzoo.create_model("resnet18_cifar_simclust")
    with pytest.raises(hub.HubError, match="do not fit"):
        hub.load_pretrained(other, source=tmp_path / "w.safetensors")


def test_push_dry_run_verifies_and_prints(tmp_path, tiny, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    save = hub.save_pretrained(_randomised(sslzoo.create_model(NAME)), tmp_path / "s", name=NAME, tag="toy")
    result = hub.push_to_hub(save, "someone/my-encoder", dry_run=True, token="hf_secret_token_value")
    out = capsys.readouterr().out
    assert "model.safetensors" in out and "config.json" in out and "round-trip check passed" in out
    assert 'timm.create_model("hf-hub:someone/my-encoder"' in out  # the card names the target repo
    assert "hf_secret_token_value" not in out
    assert result["files"]["model.safetensors"] == (save / "model.safetensors").stat().st_size
    assert result["check"]["max_abs_diff"] == 0.0
    assert not any(
        "hf_secret" in p.read_text(errors="ignore") for p in save.iterdir() if p.suffix != ".safetensors"
    )


def test_verify_folder_catches_a_config_that_rebuilds_a_different_model(tmp_path, tiny):
    save = hub.save_pretrained(sslzoo.create_model(NAME), tmp_path / "s", name=NAME)
    config = json.loads((save / "config.json").read_text())
    config["architecture"] = "resnet18"
    (save / "config.json").write_text(json.dumps(config))
    with pytest.raises(hub.HubError):
        hub.verify_folder(save)


def test_publish_dispatch(tmp_path, tiny, home):
    save = hub.save_pretrained(sslzoo.create_model(NAME), tmp_path / "s", name=NAME, tag="toy")
    assert hub.publish(save, "local") == home / "models" / f"{NAME}.toy"
    with pytest.raises(ValueError, match="ORG/NAME"):
        hub.publish(save, "nonsense")
    assert Path(hub.local_hub_dir(NAME, "toy")).is_dir()
