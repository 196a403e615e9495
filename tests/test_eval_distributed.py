"""extract_features under torchrun (2 CPU processes, gloo): gathered, duplicates from padding dropped."""

import json

import pytest
from _torchrun import run_torchrun

WORKER = r"""
import json, sys
import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from sslzoo.eval import extract_features, knn_accuracy

acc = Accelerator(cpu=True)
g = torch.Generator().manual_seed(0)
x, y = torch.randn(23, 6, generator=g), torch.arange(23) % 3  # 23 rows: uneven over 2 processes x batch 4
torch.manual_seed(0)
enc = nn.Sequential(nn.Linear(6, 5), nn.Tanh())
loader = acc.prepare(DataLoader(TensorDataset(x, y), batch_size=4))
feats, labels = extract_features(enc, loader, acc)
with torch.no_grad():
    expected = enc(x)
if acc.is_main_process:
    json.dump({
        "world": acc.num_processes,
        "rows": feats.shape[0],
        "equal": bool(torch.allclose(feats, expected, atol=1e-6) and torch.equal(labels, y)),
        "knn": knn_accuracy(feats, labels, feats, labels, k=3),
    }, open(sys.argv[1], "w"))
# Tear gloo down before exit: a process leaving with live gloo threads aborts ("terminate called ...").
acc.wait_for_everyone()
torch.distributed.destroy_process_group()
"""


@pytest.mark.slow
def test_two_process_extraction_equals_single_process(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "out.json"
    proc = run_torchrun(script, out, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["world"] == 2
    assert res["rows"] == 23  # not 24: the sampler's padding duplicate is dropped
    assert res["equal"]
    assert res["knn"] == 100.0  # every row finds itself (similarity 1) among its gathered neighbours
