"""The registry builds what it lists: every name, with the shapes timm promises."""

from pathlib import Path

import pytest
import timm
import torch

import sslzoo
from sslzoo.backbones import ARCHS
from sslzoo.registry import METHOD_NAMES, ModelEntry, get_entry, register_entry

REPO = Path(__file__).resolve().parents[1]


def _input_for(arch: str, batch: int = 2) -> torch.Tensor:
    c, h, w = ARCHS[arch].input_size
    # ResNets accept any size; keep them small for speed. ViTs need their native size.
    size = h if arch.startswith("vit") else 32
    return torch.randn(batch, c, size, size)


def test_registry_covers_the_required_grid():
    names = set(sslzoo.list_models())
    for arch in ("resnet18", "resnet50", "vit_small_patch16_224", "resnet18_cifar", "resnet50_cifar"):
        for method in METHOD_NAMES:
            assert f"{arch}_{method}" in names
    assert len(names) == len(ARCHS) * len(METHOD_NAMES)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_arch_builds_and_returns_num_features(arch):
    # One method per arch builds the model; the method does not change the encoder, which the next test checks.
    model = sslzoo.create_model(f"{arch}_simclust").eval()
    with torch.no_grad():
        out = model(_input_for(arch))
    assert out.shape == (2, model.num_features)
    assert isinstance(model, timm.models.ResNet | timm.models.VisionTransformer)


def test_every_name_resolves_to_its_arch_and_method():
    for name in sslzoo.list_models():
        entry, tag = get_entry(name)
        assert tag is None
        assert name == f"{entry.arch}_{entry.method}"
        assert entry.arch in ARCHS and entry.method in METHOD_NAMES
        assert (REPO / entry.recipe_config).is_file(), entry.recipe_config
        for tag in entry.tags.values():
            assert tag.recipe_config is None or (REPO / tag.recipe_config).is_file(), tag.recipe_config


def test_train_command_overrides_the_arch_of_a_shared_config():
    entry, _ = get_entry("resnet50_byol")
    assert entry.train_command() == (
        "accelerate launch recipes/pretrain.py --config recipes/configs/resnet18_cifar_byol_cifar10.yaml"
        " --model.arch resnet50"
    )
    entry, _ = get_entry("resnet50_simclust")
    assert entry.train_command("in1k").endswith("--config recipes/configs/resnet50_simclust_in1k.yaml")


@pytest.mark.parametrize("name", ["resnet18_cifar_byol", "resnet50_dino"])
def test_every_method_of_an_arch_builds_the_same_encoder(name):
    torch.manual_seed(0)
    a = sslzoo.create_model(name)
    torch.manual_seed(0)
    b = sslzoo.create_model(name.rsplit("_", 1)[0] + "_simclust")
    assert a.state_dict().keys() == b.state_dict().keys()
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_num_classes_gives_logits():
    model = sslzoo.create_model("resnet18_cifar_simclr", num_classes=7).eval()
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 7)
    assert model.get_classifier().out_features == 7


def test_kwargs_pass_through_to_timm():
    feats = sslzoo.create_model("resnet18_cifar_simsiam", features_only=True, out_indices=(1, 4))
    outs = feats(torch.randn(1, 3, 32, 32))
    # The small-image stem keeps full resolution through layer1 and downsamples 8x by layer4.
    assert [o.shape[-1] for o in outs] == [32, 4]
    one_channel = sslzoo.create_model("resnet18_byol", in_chans=1)
    assert one_channel.conv1.in_channels == 1
    vit = sslzoo.create_model("vit_small_patch16_224_dino", img_size=32, drop_path_rate=0.1)
    assert vit(torch.randn(1, 3, 32, 32)).shape == (1, 384)


def test_small_image_stem():
    model = sslzoo.create_model("resnet18_cifar_simclust")
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    # Registered with timm itself, so timm.create_model knows the arch once sslzoo is imported.
    assert timm.create_model("resnet18_cifar", num_classes=0).conv1.kernel_size == (3, 3)


def test_pretrained_cfg_records_name_method_and_tag():
    model = sslzoo.create_model("resnet50_simclust")
    assert model.pretrained_cfg["sslzoo_name"] == "resnet50_simclust"
    assert model.pretrained_cfg["sslzoo_method"] == "simclust"
    assert model.pretrained_cfg["tag"] == ""


def test_unknown_name_suggests_closest():
    with pytest.raises(ValueError, match="Did you mean 'resnet50_simclust'"):
        sslzoo.create_model("resnet50_simclst")
    with pytest.raises(ValueError, match="resnet18_cifar_byol"):
        sslzoo.create_model("resnet18_cifar_byl")


def test_unknown_tag_lists_existing_tags():
    with pytest.raises(ValueError, match=r"no pretrained tag 'in21k'.*resnet50_simclust\.in1k"):
        sslzoo.create_model("resnet50_simclust.in21k")


def test_list_models_patterns_and_pretrained():
    assert sslzoo.list_models("resnet50_s*") == [
        "resnet50_simclr",
        "resnet50_simclust",
        "resnet50_simsiam",
        "resnet50_swav",
    ]
    assert sslzoo.list_models("*_dino") == sorted(f"{a}_dino" for a in ARCHS)
    pretrained = sslzoo.list_pretrained()
    assert "resnet50_simclust.in1k" in pretrained
    assert sslzoo.list_models(pretrained=True) == pretrained
    assert sslzoo.list_pretrained("resnet50_*") == ["resnet50_simclust.in1k"]
    assert sslzoo.list_pretrained("*.digits") == ["resnet18_cifar_simclust.digits"]


def test_register_entry_validates():
    with pytest.raises(ValueError, match="unknown arch"):
        register_entry(
            ModelEntry(name="nope_simclust", arch="nope", method="simclust", recipe_config="x.yaml")
        )
    with pytest.raises(ValueError, match="already registered"):
        register_entry(get_entry("resnet18_byol")[0])
