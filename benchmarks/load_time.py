"""Load time of a pretrained encoder: sslzoo.create_model(name, pretrained=folder) vs plain timm.

The baseline is what a user would write by hand: ``timm.create_model(arch, num_classes=0)`` +
``safetensors.torch.load_file`` + ``load_state_dict``. sslzoo adds resolution, strict key checking and
bookkeeping on top; the target is at most 1.2x the baseline. Both run in the same process, interleaved
(alternating order every repetition), and medians are compared.

    python benchmarks/load_time.py [--name resnet50_simclust] [--repeats 7]

Writes benchmarks/results/load_time.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import safetensors.torch
import timm
import torch

import sslzoo
from sslzoo.backbones import ARCHS
from sslzoo.hub import save_pretrained
from sslzoo.registry import get_entry

RESULTS = Path(__file__).resolve().parent / "results" / "load_time.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="resnet50_simclust")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)  # both sides single-threaded: the comparison is not at the mercy of a shared box

    entry, _ = get_entry(args.name)
    spec = ARCHS[entry.arch]
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_pretrained(sslzoo.create_model(args.name), Path(tmp) / "save", name=args.name)
        weights = folder / "model.safetensors"

        def sslzoo_load() -> torch.nn.Module:
            return sslzoo.create_model(args.name, pretrained=str(folder))

        def timm_load() -> torch.nn.Module:
            model = timm.create_model(spec.timm_name, pretrained=False, num_classes=0, **spec.model_args)
            model.load_state_dict(safetensors.torch.load_file(weights))
            return model

        x = torch.randn(1, *spec.input_size)
        with torch.no_grad():
            same = torch.equal(sslzoo_load().eval()(x), timm_load().eval()(x))  # also warms both paths up
        times: dict[str, list[float]] = {"sslzoo": [], "timm": []}
        runs = {"sslzoo": sslzoo_load, "timm": timm_load}
        for i in range(args.repeats):
            order = ("sslzoo", "timm") if i % 2 == 0 else ("timm", "sslzoo")
            for key in order:
                t0 = time.perf_counter()
                runs[key]()
                times[key].append(time.perf_counter() - t0)

    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["sslzoo"] / med["timm"]
    result = {
        "name": args.name,
        "arch": spec.timm_name,
        "weights_mb": round(weights.stat().st_size / 2**20, 1) if weights.exists() else None,
        "repeats": args.repeats,
        "median_s": {k: round(v, 4) for k, v in med.items()},
        "all_s": {k: [round(t, 4) for t in v] for k, v in times.items()},
        "ratio": round(ratio, 3),
        "target": 1.2,
        "meets_target": ratio <= 1.2,
        "outputs_equal": same,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'':8s} {'median s':>9s}")
    for k, v in med.items():
        print(f"{k:8s} {v:9.3f}")
    print(
        f"ratio sslzoo/timm = {ratio:.3f} (target <= 1.2) {'OK' if ratio <= 1.2 else 'OVER'}; outputs equal: {same}"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
