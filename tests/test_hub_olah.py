"""The real download path: huggingface_hub against a Hub-compatible server (olah) on loopback.

olah runs in offline mode and serves a local git mirror (``MIRRORS/models/ORG/NAME``, branch ``main``),
configured only through its TOML; ``hf-netloc`` points at a dead loopback port so nothing can leave the
machine. The client runs in a subprocess so ``HF_ENDPOINT`` is set before huggingface_hub is imported.
sslzoo (registry entry → hf_hub_download at a pinned revision), timm (``hf-hub:``) and torch.hub
(``hubconf.py``) must all load the weights that were saved.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
import timm
from _torchrun import free_port

from sslzoo import hub

pytest.importorskip("olah")
pytestmark = pytest.mark.slow
if shutil.which("git") is None:
    pytest.skip("git is needed to build the mirror", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
ORG, REPO = "sslzoo-test", "test_resnet_simclust.olah"


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("olah")
    repo_dir = tmp / "mirrors" / "models" / ORG / REPO
    model = timm.create_model("test_resnet", num_classes=0)
    hub.save_pretrained(model, repo_dir, dataset="digits")
    _git(repo_dir, "init", "-q", "-b", "main")
    _git(repo_dir, "add", ".")
    _git(repo_dir, "commit", "-q", "-m", "weights")
    commit = _git(repo_dir, "rev-parse", "HEAD").strip()

    port, dead = free_port(), free_port()
    config = tmp / "olah.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [basic]
            host = "127.0.0.1"
            port = {port}
            repos-path = "{tmp / "repos"}"
            hf-scheme = "http"
            hf-netloc = "127.0.0.1:{dead}"
            hf-lfs-netloc = "127.0.0.1:{dead}"
            mirrors-path = ["{tmp / "mirrors"}"]

            [accessibility]
            offline = true
            """
        )
    )
    olah = shutil.which("olah-cli") or str(Path(sys.executable).parent / "olah-cli")
    log = open(tmp / "olah.log", "w")
    proc = subprocess.Popen(
        [olah, "-c", str(config), "--log-path", str(tmp / "logs")],
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/models/{ORG}/{REPO}/revision/main", timeout=2) as r:
                    if json.load(r).get("sha") == commit:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"olah did not come up: {(tmp / 'olah.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield {"url": url, "commit": commit, "weights": repo_dir / "model.safetensors", "tmp": tmp}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


CLIENT = textwrap.dedent(
    """
    import json, sys
    import safetensors.torch, timm, torch
    import sslzoo
    from sslzoo.backbones import ARCHS, ArchSpec
    from sslzoo.hub import resolve_pretrained
    from sslzoo.registry import ModelEntry, PretrainedTag, register_entry

    repo, commit, sha, weights = sys.argv[1:5]
    ARCHS["test_resnet"] = ArchSpec("test_resnet")
    tag = PretrainedTag("olah", hf_hub_id=repo, revision=commit, sha256=sha, dataset="digits", published=True)
    # hubconf.py has one entry point per registered name; point an existing one at the test repo.
    entry = register_entry(ModelEntry("resnet18_cifar_simclust", "test_resnet", "simclust", "x.yaml",
                                      {"olah": tag}, "olah"), overwrite=True)
    reference = safetensors.torch.load_file(weights)
    resolved = resolve_pretrained(entry, "olah")
    models = {
        "sslzoo": sslzoo.create_model("resnet18_cifar_simclust", pretrained=True),
        "timm": timm.create_model("hf-hub:" + repo, pretrained=True),
        "torch.hub": torch.hub.load(sys.argv[5], "resnet18_cifar_simclust", source="local", pretrained=True),
    }
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    report = {"origin": resolved.origin, "path": str(resolved.path)}
    for name, m in models.items():
        state = m.state_dict()
        report[name] = {
            "same_keys": set(state) == set(reference),
            "equal": all(torch.equal(state[k], v) for k, v in reference.items()),
            "out": m.eval()(x).sum().item(),
        }
    print(json.dumps(report))
    """
)


def test_sslzoo_timm_and_torch_hub_download_the_same_weights(server, tmp_path):
    env = {
        **os.environ,
        "HF_ENDPOINT": server["url"],
        "HF_HOME": str(tmp_path / "hf"),
        "SSLZOO_HOME": str(tmp_path / "empty-local-hub"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TORCH_HOME": str(tmp_path / "torch"),
    }
    env.pop("HF_HUB_OFFLINE", None)
    sha = hub.file_sha256(server["weights"])
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            CLIENT,
            f"{ORG}/{REPO}",
            server["commit"],
            sha,
            str(server["weights"]),
            str(ROOT),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["origin"] == "hf-hub"
    assert report["path"].startswith(str(tmp_path / "hf")) and server["commit"] in report["path"]
    outs = set()
    for name in ("sslzoo", "timm", "torch.hub"):
        assert report[name]["same_keys"] and report[name]["equal"], (name, report)
        outs.add(report[name]["out"])
    assert len(outs) == 1, report
