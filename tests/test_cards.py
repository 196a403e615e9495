"""Model cards are generated from the registry; the checked-in ones must equal what the code renders."""

from __future__ import annotations

from pathlib import Path

import yaml

from sslzoo import cards, registry
from sslzoo.registry import PretrainedTag

CARDS = Path(__file__).resolve().parents[1] / "model_cards"


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_checked_in_cards_equal_generated():
    problems = cards.write_cards(CARDS, check=True)
    assert problems == [], "\n".join(problems) + "\nRegenerate: python -m sslzoo.cards --write model_cards/"
    # one card per registered weight set, including the paper's two recipes
    names = {p.stem for p in CARDS.glob("*.md")}
    assert {"resnet50_simclust.in1k", "resnet18_simclust.imagenette"} <= names
    assert names == set(registry.list_pretrained())


def test_paper_recipe_cards_say_weights_are_not_trained():
    for name in ("resnet50_simclust.in1k", "resnet18_simclust.imagenette"):
        text = (CARDS / f"{name}.md").read_text()
        assert "not trained yet" in text
        assert "accelerate launch recipes/pretrain.py --config" in text
        meta = _front_matter(text)
        assert meta["library_name"] == "timm"
        assert {"self-supervised", "image-feature-extraction", "sslzoo", "simclust"} <= set(meta["tags"])
        assert "model-index" not in meta  # no invented numbers


def test_card_with_metrics_has_model_index_table_command_and_sha():
    entry = registry.get_entry("resnet18_cifar_simclust")[0]
    tag = PretrainedTag(
        "digits",
        hf_hub_id="sslzoo/x",
        dataset="digits",
        published=True,
        sha256="ab" * 32,
        metrics={"knn_top1": 71.25, "knn_top1_init": 20.5},
    )
    entry = registry.ModelEntry(
        entry.name, entry.arch, entry.method, entry.recipe_config, {"digits": tag}, "digits"
    )
    text = cards.render_card_for_entry(entry, "digits")
    meta = _front_matter(text)
    results = meta["model-index"][0]["results"][0]
    assert results["dataset"]["name"] == "digits"
    assert {m["value"] for m in results["metrics"]} == {71.25, 20.5}
    assert meta["datasets"] == ["digits"] and meta["license"] == "apache-2.0"
    assert "| kNN top-1 (%) | 71.25 |" in text
    assert "Produced by:" in text and entry.train_command("digits") in text
    assert "ab" * 32 in text
    assert "not trained yet" not in text
    assert "hf-hub:sslzoo/x" in text and "import sslzoo  # registers the small-image arch" in text
    assert "arXiv:2301.03041" in text and "torch.hub.load" in text


def test_cli_check_reports_stale_cards(tmp_path):
    assert cards.main(["--write", str(tmp_path)]) == 0
    first = sorted(tmp_path.glob("*.md"))[0]
    first.write_text(first.read_text() + "edited by hand\n")
    (tmp_path / "stray.md").write_text("x")
    problems = cards.write_cards(tmp_path, check=True)
    assert any(first.name in p and "differs" in p for p in problems)
    assert any("stray.md" in p for p in problems)
    assert cards.main(["--check", str(tmp_path)]) == 1
