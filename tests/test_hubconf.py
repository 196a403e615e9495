"""hubconf.py lists every registered name and its entry points return what create_model returns."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import torch

import sslzoo

REPO = Path(__file__).resolve().parents[1]


def _hub_entrypoints() -> list[str]:
    # torch.hub.list only accepts GitHub repos in this torch version; this is its own listing rule, applied
    # to the local hubconf (callables not starting with "_").
    spec = importlib.util.spec_from_file_location("hubconf_under_test", REPO / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return sorted(f for f in dir(module) if callable(getattr(module, f)) and not f.startswith("_"))


def test_hubconf_lists_the_registry():
    assert _hub_entrypoints() == sslzoo.list_models()


def test_hubconf_dependencies_are_importable():
    spec = importlib.util.spec_from_file_location("hubconf_deps", REPO / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for dep in module.dependencies:
        assert importlib.util.find_spec(dep) is not None, dep


def test_torch_hub_load_matches_create_model():
    torch.manual_seed(0)
    from_hub = torch.hub.load(
        str(REPO), "resnet18_cifar_simclust", source="local", trust_repo=True, num_classes=5
    )
    torch.manual_seed(0)
    direct = sslzoo.create_model("resnet18_cifar_simclust", num_classes=5)
    assert type(from_hub) is type(direct)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(from_hub.eval()(x), direct.eval()(x))
    assert from_hub.pretrained_cfg["sslzoo_name"] == "resnet18_cifar_simclust"


def test_hubconf_imports_nothing_heavy_at_module_level():
    code = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('h', {str(REPO / 'hubconf.py')!r}); "
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
        "print(sorted(k for k in ('sslzoo', 'timm', 'torch') if k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_torch_hub_help_is_useful():
    spec = importlib.util.spec_from_file_location("hubconf_doc", REPO / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.resnet50_simclust.__doc__
    assert "resnet50" in text and "simclust" in text and "pretrained" in text and "num_classes" in text
