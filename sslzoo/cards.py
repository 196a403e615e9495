"""Model cards, generated from the registry and measured metrics (never typed by hand).

A card is a Hugging Face model card: YAML front matter (``library_name: timm``, tags, license, data sets,
``model-index`` with the evaluation results) and a Markdown body (paper, the method in two sentences,
usage with sslzoo / timm / torch.hub, the training recipe, the evaluation table with the command that
produced it, the weights' sha256). The same renderer serves both sources:

- :func:`render_card_from_config`: the ``config.json`` written by :func:`sslzoo.hub.save_pretrained`
  (the ``README.md`` of a save directory);
- :func:`render_card_for_entry`: a registry entry and tag (the checked-in ``model_cards/``).

Regenerate the checked-in cards with ``python -m sslzoo.cards --write model_cards/`` and check them with
``python -m sslzoo.cards --check model_cards/``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CardInfo",
    "METHOD_INFO",
    "card_entries",
    "render_card",
    "render_card_for_entry",
    "render_card_from_config",
    "write_cards",
]

REPO_URL = "https://github.com/sslzoo/sslzoo"


@dataclass(frozen=True)
class MethodInfo:
    title: str
    citation: str
    arxiv: str
    summary: str  # two sentences


METHOD_INFO: dict[str, MethodInfo] = {
    "simclust": MethodInfo(
        "Learning the Relation between Similarity Loss and Clustering Loss in Self-Supervised Learning",
        "Ge et al., IEEE Transactions on Image Processing, 2023",
        "2301.03041",
        "SimClust trains a SimSiam/BYOL-style similarity loss first and then hands over to a feature-level "
        "cross-entropy between the softmax of one view's targets and the other view's predictions over the "
        "feature dimensions (a clustering loss), plus a uniformity regulariser that keeps the batch-mean "
        "assignment close to uniform. The handover is a linear ramp of a scale between two epochs, so the "
        "clustering terms refine a representation that similarity training has already shaped.",
    ),
    "simsiam": MethodInfo(
        "Exploring Simple Siamese Representation Learning",
        "Chen & He, CVPR 2021",
        "2011.10566",
        "SimSiam maximises the cosine similarity between a predictor's output on one view and the projection "
        "of the other view. A stop-gradient on the target branch is what prevents collapse, without negatives "
        "or a momentum encoder.",
    ),
    "byol": MethodInfo(
        "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning",
        "Grill et al., NeurIPS 2020",
        "2006.07733",
        "BYOL trains an online network to predict the projection a slowly moving (EMA) target network gives "
        "for another view of the same image. The momentum target and the predictor avoid collapse without "
        "negative pairs.",
    ),
    "simclr": MethodInfo(
        "A Simple Framework for Contrastive Learning of Visual Representations",
        "Chen et al., ICML 2020",
        "2002.05709",
        "SimCLR pulls together the projections of two augmented views of an image and pushes apart all other "
        "images in the batch with the NT-Xent (InfoNCE) loss. Strong augmentation and large batches supply the "
        "negatives.",
    ),
    "mocov3": MethodInfo(
        "An Empirical Study of Training Self-Supervised Vision Transformers",
        "Chen, Xie & He, ICCV 2021",
        "2104.02057",
        "MoCo v3 contrasts a query from the online encoder (with a predictor) against keys from a momentum "
        "encoder, using the other images of the batch as negatives. It drops the memory queue of earlier MoCo "
        "versions and is tuned for stable ViT training.",
    ),
    "swav": MethodInfo(
        "Unsupervised Learning of Visual Features by Contrasting Cluster Assignments",
        "Caron et al., NeurIPS 2020",
        "2006.09882",
        "SwAV assigns each view to learnable prototypes with an equipartition constraint solved by "
        "Sinkhorn-Knopp, and trains each view to predict the other view's assignment. Multi-crop adds cheap "
        "low-resolution views.",
    ),
    "dino": MethodInfo(
        "Emerging Properties in Self-Supervised Vision Transformers",
        "Caron et al., ICCV 2021",
        "2104.14294",
        "DINO distils a momentum teacher into a student by matching their softmax outputs across views "
        "(self-distillation with no labels). Centring and sharpening of the teacher's outputs prevent "
        "collapse.",
    ),
    "barlowtwins": MethodInfo(
        "Barlow Twins: Self-Supervised Learning via Redundancy Reduction",
        "Zbontar et al., ICML 2021",
        "2103.03230",
        "Barlow Twins drives the cross-correlation matrix between the embeddings of two views towards the "
        "identity. The diagonal makes views agree, the off-diagonal terms decorrelate the embedding dimensions.",
    ),
    "vicreg": MethodInfo(
        "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised Learning",
        "Bardes, Ponce & LeCun, ICLR 2022",
        "2105.04906",
        "VICReg combines an invariance term (mean squared distance between the two views' embeddings) with a "
        "variance hinge that keeps every dimension's standard deviation up and a covariance penalty that "
        "decorrelates dimensions. No negatives, momentum encoder or stop-gradient are needed.",
    ),
}

# What the paper's recipes take (from the paper's setup; the compute is an estimate, not a measurement).
RECIPE_NOTES: dict[str, str] = {
    "resnet50_simclust.in1k": (
        "The paper's ImageNet recipe: ResNet-50, momentum (BYOL-form) variant, 300 epochs over ImageNet-1k "
        "(1.28M images) at batch 2048 with LARS (lr 0.3 x batch/256, wd 1e-6, 40 warm-up epochs, cosine), "
        "projector 2048-4096-4096-512, predictor 512-4096-512, clustering scale ramped over epochs 150-180, "
        "tau_s 0.1, tau_t 0.07, uniformity weight 5.0. Runs of this size are usually done on 32-64 "
        "data-centre GPUs over several days (an estimate by comparison with BYOL-scale training); it needs the "
        "ImageNet-1k training set (gated on the Hugging Face Hub) and cannot run on a CPU-only machine."
    ),
    "resnet18_simclust.imagenette": (
        "The paper's Imagenette recipe: ResNet-18, SimSiam variant with adaptive temperature and PCA of the "
        "targets, 1000 epochs over Imagenette (about 9.5k images) at batch 256 with LARS lr 2.0, clustering "
        "scale ramped over epochs 500-600, uniformity weight 1.0. Expect on the order of a day on one modern "
        "GPU (an estimate: about 10^7 two-view ResNet-18 steps at 224 px); the data set downloads from the "
        "Hugging Face Hub."
    ),
}


@dataclass
class CardInfo:
    """Everything a card shows. Built by :func:`render_card_for_entry` or :func:`render_card_from_config`."""

    name: str  # sslzoo name with tag, e.g. resnet18_cifar_simclust.digits
    method: str | None
    timm_arch: str
    arch: str | None = None
    dataset: str | None = None
    license: str = "apache-2.0"
    hf_hub_id: str | None = None
    revision: str | None = None
    sha256: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    train_command: str | None = None
    eval_command: str | None = None
    epochs: float | None = None
    input_size: tuple[int, ...] | None = None
    num_features: int | None = None
    small_image: bool = False
    trained: bool = True
    status_note: str | None = None


_METRIC_NAMES = {
    "knn_top1": "kNN top-1 (%)",
    "knn_top1_init": "kNN top-1 at initialisation (%)",
    "linear_top1": "linear probe top-1 (%)",
    "finetune_top1": "fine-tune top-1 (%)",
}


def _metric_label(key: str) -> str:
    return _METRIC_NAMES.get(key, key.replace("_", " "))


def _front_matter(info: CardInfo) -> str:
    tags = ["self-supervised", "image-feature-extraction", "sslzoo", "timm"]
    if info.method:
        tags.append(info.method)
    meta: dict[str, Any] = {
        "library_name": "timm",
        "pipeline_tag": "image-feature-extraction",
        "license": info.license,
        "tags": tags,
    }
    if info.dataset:
        meta["datasets"] = [info.dataset]
    if info.method in METHOD_INFO:
        meta["arxiv"] = METHOD_INFO[info.method].arxiv
    if info.metrics and info.dataset:
        meta["model-index"] = [
            {
                "name": info.name,
                "results": [
                    {
                        "task": {
                            "type": "image-classification",
                            "name": "Image classification (frozen features)",
                        },
                        "dataset": {"name": info.dataset, "type": info.dataset},
                        "metrics": [
                            {"type": "accuracy", "name": _metric_label(k), "value": float(v)}
                            for k, v in sorted(info.metrics.items())
                        ],
                    }
                ],
            }
        ]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, width=1000) + "---\n"


def _usage(info: CardInfo) -> str:
    base = info.name.split(".", 1)[0]
    tag = info.name.split(".", 1)[1] if "." in info.name else None
    size = info.input_size[-1] if info.input_size else 224
    lines = [
        "## Usage",
        "",
        "With sslzoo (resolves the local hub folder `$SSLZOO_HOME`, then the Hugging Face Hub):",
        "",
        "```python",
        "import sslzoo, torch",
        f'encoder = sslzoo.create_model("{info.name}", pretrained=True)          # num_classes=0: features',
        f"features = encoder(torch.randn(1, 3, {size}, {size}))                 # (1, {info.num_features or 'num_features'})",
        f'classifier = sslzoo.create_model("{info.name}", pretrained=True, num_classes=10)  # fine-tuning',
        "```",
        "",
    ]
    if info.hf_hub_id:
        lines += ["With timm alone:", "", "```python", "import timm"]
        if info.small_image:
            lines.append(
                f"import sslzoo  # registers the small-image arch `{info.timm_arch}` with timm; without it timm "
                "does not know the architecture"
            )
        lines += [f'encoder = timm.create_model("hf-hub:{info.hf_hub_id}", pretrained=True)', "```", ""]
    tag_arg = f', tag="{tag}"' if tag else ""
    lines += [
        "With torch.hub:",
        "",
        "```python",
        "import torch",
        f'encoder = torch.hub.load("sslzoo/sslzoo", "{base}", pretrained=True{tag_arg})',
        "```",
        "",
    ]
    return "\n".join(lines)


def render_card(info: CardInfo) -> str:
    """The Markdown model card (front matter + body) for ``info``."""
    out = [_front_matter(info), f"# {info.name}", ""]
    arch_text = f"`{info.timm_arch}`" + (
        " (3x3 stride-1 stem, no max-pool, for 32-64 px)" if info.small_image else ""
    )
    out.append(
        f"A self-supervised image encoder from [sslzoo]({REPO_URL}): timm architecture {arch_text} trained "
        f"with **{info.method or 'an SSL method'}**"
        + (f" on `{info.dataset}`" if info.dataset else "")
        + ". It returns pooled features"
        + (f" of size {info.num_features}" if info.num_features else "")
        + " (`num_classes=0`)."
    )
    out.append("")
    if not info.trained:
        out += ["> **Status: the weights are not trained yet.** " + (info.status_note or ""), ""]
    meth = METHOD_INFO.get(info.method or "")
    if meth:
        out += [
            "## Method",
            "",
            f"Paper: *{meth.title}*, {meth.citation} ([arXiv:{meth.arxiv}](https://arxiv.org/abs/{meth.arxiv})).",
            "",
            meth.summary,
            "",
        ]
    out.append(_usage(info))
    out += ["## Training recipe", ""]
    if info.train_command:
        out += ["```bash", info.train_command, "```", ""]
    if info.epochs is not None:
        out += [f"Trained for {info.epochs:g} epochs.", ""]
    if info.name in RECIPE_NOTES:
        out += [RECIPE_NOTES[info.name], ""]
    out += ["## Evaluation", ""]
    if info.metrics:
        out += ["| metric | value |", "|---|---|"]
        out += [f"| {_metric_label(k)} | {float(v):.2f} |" for k, v in sorted(info.metrics.items())]
        out.append("")
        command = info.eval_command or info.train_command
        if command:
            out += ["Produced by:", "", "```bash", command, "```", ""]
    else:
        out += ["No measured results yet.", ""]
    out += ["## Weights", ""]
    if info.sha256:
        out.append(f"`model.safetensors` sha256: `{info.sha256}`")
    else:
        out.append("sha256: not pinned yet (no published weights).")
    if info.hf_hub_id:
        out.append(
            f"Hub repo: `{info.hf_hub_id}`" + (f" at revision `{info.revision}`" if info.revision else "")
        )
    out.append("")
    return "\n".join(out)


def _timm_arch(arch: str) -> tuple[str, tuple[int, ...], bool]:
    from .backbones import ARCHS

    spec = ARCHS[arch]
    return spec.timm_name, tuple(spec.input_size), spec.small_image


def _num_features(arch: str) -> int:
    import torch

    from .backbones import create_backbone

    # Built on the meta device: only the shape bookkeeping runs, no weights are allocated.
    with torch.device("meta"):
        return int(create_backbone(arch).num_features)


def render_card_for_entry(entry: Any, tag: str) -> str:
    """The card of the registry weight set ``entry.name + "." + tag``."""
    ptag = entry.tags[tag]
    timm_arch, input_size, small = _timm_arch(entry.arch)
    full = f"{entry.name}.{tag}"
    trained = bool(ptag.published or ptag.metrics or ptag.sha256)
    note = None
    if not trained:
        note = (
            f"This card describes the recipe; `pretrained=True` will fail with instructions until the weights "
            f"are trained and published. Train them with `{entry.train_command(tag)} --publish local`."
        )
    return render_card(
        CardInfo(
            name=full,
            method=entry.method,
            timm_arch=timm_arch,
            arch=entry.arch,
            dataset=ptag.dataset or None,
            hf_hub_id=ptag.hf_hub_id or None,
            revision=ptag.revision,
            sha256=ptag.sha256,
            metrics=dict(ptag.metrics),
            train_command=entry.train_command(tag),
            input_size=input_size,
            num_features=_num_features(entry.arch),
            small_image=small,
            trained=trained,
            status_note=note,
        )
    )


def render_card_from_config(config: dict[str, Any]) -> str:
    """The card of a save directory, from its ``config.json`` (timm keys + the ``sslzoo`` block)."""
    block = config.get("sslzoo") or {}
    name = block.get("name") or config.get("architecture", "model")
    if block.get("tag") and "." not in name:
        name = f"{name}.{block['tag']}"
    small = False
    train_command = None
    hf_hub_id = None
    if block.get("name"):
        from .registry import get_entry

        try:
            entry, _ = get_entry(block["name"])
            small = _timm_arch(entry.arch)[2]
            train_command = entry.train_command(block["tag"] if block.get("tag") in entry.tags else None)
            if block.get("tag") in entry.tags:
                hf_hub_id = entry.tags[block["tag"]].hf_hub_id
        except ValueError:
            pass
    recipe = block.get("recipe_config")
    if isinstance(recipe, str) and recipe.endswith((".yaml", ".yml")):
        train_command = f"accelerate launch recipes/pretrain.py --config {recipe}"
    pcfg = config.get("pretrained_cfg") or {}
    return render_card(
        CardInfo(
            name=name,
            method=block.get("method"),
            timm_arch=config.get("architecture", "?"),
            arch=block.get("arch"),
            dataset=block.get("dataset"),
            license=block.get("license") or "apache-2.0",
            hf_hub_id=block.get("hf_hub_id") or hf_hub_id,
            sha256=block.get("sha256"),
            metrics=dict(block.get("metrics") or {}),
            train_command=block.get("train_command") or train_command,
            eval_command=block.get("eval_command"),
            epochs=block.get("epochs"),
            input_size=tuple(pcfg["input_size"]) if pcfg.get("input_size") else None,
            num_features=config.get("num_features"),
            small_image=small,
        )
    )


def card_entries() -> list[tuple[Any, str]]:
    """The (entry, tag) pairs that get a checked-in card: every registered pretrained weight set (published,
    publishable, or one of the paper's recipes)."""
    from .registry import get_entry, list_pretrained

    pairs = []
    for full in list_pretrained():
        entry, tag = get_entry(full)
        pairs.append((entry, tag))
    return pairs


def write_cards(directory: str | Path, check: bool = False) -> list[str]:
    """Write (or with ``check=True`` compare) ``{name}.{tag}.md`` for every :func:`card_entries` pair.

    Returns:
        With ``check``: the files that are missing, stale or unexpected (empty when all match); else the
        files written.
    """
    directory = Path(directory)
    expected = {f"{e.name}.{t}.md": render_card_for_entry(e, t) for e, t in card_entries()}
    if check:
        problems = []
        for fname, text in sorted(expected.items()):
            path = directory / fname
            if not path.is_file():
                problems.append(f"{path}: missing")
            elif path.read_text(encoding="utf-8") != text:
                problems.append(f"{path}: differs from the generated card")
        extra = sorted(
            p.name for p in directory.glob("*.md") if p.name not in expected and p.name != "README.md"
        )
        problems += [f"{directory / n}: no registry weight set generates it" for n in extra]
        return problems
    directory.mkdir(parents=True, exist_ok=True)
    for fname, text in sorted(expected.items()):
        (directory / fname).write_text(text, encoding="utf-8")
    return sorted(expected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sslzoo.cards", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="DIR", help="write the generated cards to DIR")
    group.add_argument(
        "--check", metavar="DIR", help="exit 1 if the cards in DIR differ from the generated ones"
    )
    args = parser.parse_args(argv)
    if args.write:
        for name in write_cards(args.write):
            print(Path(args.write) / name)
        return 0
    problems = write_cards(args.check, check=True)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print("Regenerate with: python -m sslzoo.cards --write " + args.check, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
