"""Config mapping: YAML files, dotted command-line overrides, clear errors, round trip of the saved config."""

from pathlib import Path

import pytest
import yaml

from sslzoo.config import (
    ConfigError,
    PretrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    parse_cli,
    save_config,
    valid_keys,
)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "recipes" / "configs"


def test_defaults_without_arguments():
    cfg, overrides = parse_cli([])
    assert overrides == {}
    assert cfg == PretrainConfig()
    assert cfg.model.method == "simclust" and cfg.data.source == "digits"


def test_dotted_and_flat_overrides_are_typed():
    cfg, _ = parse_cli(
        [
            "--optim.base_lr", "0.3",
            "--train.epochs=7",
            "--output-dir", "runs/x",
            "--model.hparams.tau_teacher", "0.05",
            "--model.hparams.scale_epochs", "[1, 2]",
            "--optim.betas", "0.8,0.95",
            "--train.clip_grad_norm", "null",
            "--name", "1e3",
            "--model.sync_batchnorm", "true",
        ]
    )  # fmt: skip
    assert cfg.optim.base_lr == 0.3 and isinstance(cfg.optim.base_lr, float)
    assert cfg.train.epochs == 7 and isinstance(cfg.train.epochs, int)
    assert cfg.output_dir == "runs/x"
    assert cfg.model.hparams == {
        "ramp_epochs": [2.5, 3.5],
        "proj_last_bn": False,
        "tau_teacher": 0.05,
        "scale_epochs": [1, 2],
    }
    assert cfg.optim.betas == [0.8, 0.95]
    assert cfg.train.clip_grad_norm is None
    assert cfg.name == "1e3"  # strings stay verbatim
    assert cfg.model.sync_batchnorm is True


def test_switching_method_drops_the_base_methods_hparams():
    cfg, _ = parse_cli(["--model.method", "simsiam"])
    assert cfg.model.method == "simsiam" and cfg.model.hparams == {}
    cfg, _ = parse_cli(["--model.method", "byol", "--model.hparams.base_momentum", "0.9"])
    assert cfg.model.hparams == {"base_momentum": 0.9}
    cfg, _ = parse_cli(["--model.method", "simclust", "--model.hparams.tau_teacher", "0.05"])
    assert cfg.model.hparams == {"ramp_epochs": [2.5, 3.5], "proj_last_bn": False, "tau_teacher": 0.05}


def test_resume_flag_alone_means_latest():
    cfg, _ = parse_cli(["--resume", "--train.epochs", "2"])
    assert cfg.resume == "latest" and cfg.train.epochs == 2
    cfg, _ = parse_cli(["--train.epochs", "2", "--resume"])
    assert cfg.resume == "latest"
    cfg, _ = parse_cli(["--resume", "outputs/run1"])
    assert cfg.resume == "outputs/run1"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--optim.lrr", "1"], "unknown config key 'optim.lrr'"),
        (["--optimizer", "sgd"], "Valid keys: name, seed"),
        (["--optim", "1"], "optim is a section"),
        (["--optim.name", "adam"], "optim.name must be one of lars, sgd, adamw"),
        (["--train.epochs", "1.5"], "train.epochs must be an integer"),
        (["--train.cpu", "maybe"], "train.cpu must be true or false"),
        (["--optim.base_lr", "fast"], "optim.base_lr must be a number"),
        (["--train.epochs"], "--train.epochs needs a value"),
        (["epochs", "3"], "expected --KEY VALUE"),
        (["--config", "does/not/exist.yaml"], "does not exist"),
    ],
)
def test_bad_arguments_error_clearly(argv, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_cli(argv)


def test_unknown_key_lists_valid_keys_and_suggests():
    with pytest.raises(ConfigError) as e:
        config_from_dict({"optim": {"learning_rate": 0.1}})
    msg = str(e.value)
    assert "optim.learning_rate" in msg and "optim.base_lr" in msg and "Valid keys:" in msg


def test_yaml_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\noptim: {name: sgd, base_lr: 0.05, weight_decay: 1e-4}\ntrain: {epochs: 3}\n")
    cfg, _ = parse_cli(["--config", str(path), "--train.epochs", "4"])
    assert (cfg.name, cfg.optim.name, cfg.optim.base_lr, cfg.train.epochs) == ("x", "sgd", 0.05, 4)
    assert cfg.optim.weight_decay == 1e-4  # "1e-4" without a dot is a YAML string; still read as a number
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochz: 3}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'train.epochz'"):
        load_config(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: {epochs: [3\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_saved_config_round_trips(tmp_path):
    cfg = apply_overrides(PretrainConfig(), {"model.hparams.tau_student": 0.2, "data.views": "simclust"})
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == config_to_dict(cfg)


def test_valid_keys_cover_every_leaf():
    keys = valid_keys()
    assert "optim.base_lr" in keys and "train.max_steps" in keys and "knn.k" in keys and "seed" in keys
    assert "optim" not in keys


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load_and_name_real_hparams(path):
    import inspect

    from sslzoo.backbones import ARCHS
    from sslzoo.methods import METHODS, method_defaults

    cfg = load_config(path)
    assert cfg.name == path.stem
    assert cfg.model.method in METHODS and cfg.model.arch in ARCHS
    accepted = set(inspect.signature(METHODS[cfg.model.method].__init__).parameters)
    assert set(cfg.model.hparams) <= accepted, set(cfg.model.hparams) - accepted
    assert method_defaults(cfg.model.method, cfg.model.arch)["views"]


def test_shipped_config_set_is_complete():
    names = {p.stem for p in CONFIG_DIR.glob("*.yaml")}
    assert {
        "resnet50_simclust_in1k",
        "resnet18_simclust_imagenette",
        "resnet18_cifar_simclust_cifar10",
    } <= names
    for method in ("simsiam", "byol", "simclr", "mocov3", "swav", "dino", "barlowtwins", "vicreg"):
        assert any(f"_{method}_" in n for n in names), method
    # the embedded default (no arguments) and its config file are the same run
    assert load_config(CONFIG_DIR / f"{PretrainConfig().name}.yaml") == PretrainConfig()
