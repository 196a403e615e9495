"""Self-supervised pretraining recipe: ``accelerate launch recipes/pretrain.py [--config FILE] [--KEY VALUE ...]``.

With no arguments it runs the embedded default: SimClust on scikit-learn's ``digits`` with a small-image
ResNet-18 on CPU in a few minutes, printing the kNN top-1 of the encoder before and after training.

Also runs as ``python recipes/pretrain.py`` and ``torchrun --nproc_per_node N recipes/pretrain.py`` (CPU/gloo);
Accelerate picks up the launcher. Keys are the dotted paths of :class:`sslzoo.config.PretrainConfig`
(``--optim.base_lr 0.1 --train.epochs 20 --output-dir runs/x``); ``--help`` lists them all.

The run directory (``--output-dir``, default ``outputs/<name>-<time>``) receives ``config.yaml`` (the
resolved config), ``checkpoints/`` (atomic, resumable with ``--resume [PATH]``), ``metrics.json``, the tracker
logs (TensorBoard when installed, else ``metrics.jsonl``) and the exported encoder (``model.safetensors`` +
timm ``config.json`` + card via :func:`sslzoo.hub.save_pretrained`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs, PartialState
from accelerate.utils import broadcast_object_list, set_seed

from sslzoo.config import ConfigError, PretrainConfig, apply_overrides, load_config, parse_cli, save_config
from sslzoo.optim import build_optimizer, lr_at_step, scale_lr, set_lr
from sslzoo.training import (
    NonFiniteLossError,
    StopSignal,
    check_finite,
    find_checkpoint,
    knn_monitor,
    load_checkpoint,
    make_trackers,
    reduce_logs,
    save_checkpoint,
)

DEFAULT_OUTPUT_ROOT = "outputs"


# ------------------------------------------------------------------------------------------------- set-up


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so the resolved config is plain YAML."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def resolve_method(cfg: PretrainConfig) -> PretrainConfig:
    """Merge ``method_defaults(method, arch)`` under the config's hparams and fill in the view recipe."""
    from sslzoo.methods import method_defaults

    selectors = {k: cfg.model.hparams[k] for k in ("variant",) if k in cfg.model.hparams}
    defaults = method_defaults(cfg.model.method, cfg.model.arch, **selectors)
    views = cfg.data.views or defaults.get("views")
    hparams = {k: v for k, v in {**defaults, **cfg.model.hparams}.items() if k != "views"}
    return apply_overrides(cfg, {"model.hparams": _plain(hparams), "data.views": views})


def _newest_run(name: str) -> Path | None:
    runs = sorted(Path(DEFAULT_OUTPUT_ROOT).glob(f"{name}-*"), key=lambda p: p.stat().st_mtime)
    runs = [r for r in runs if find_checkpoint(r) is not None]
    return runs[-1] if runs else None


def resolve_resume(
    cfg: PretrainConfig, argv: list[str], overrides: dict[str, str]
) -> tuple[PretrainConfig, Path | None]:
    """Find the checkpoint to resume; a run resumed without ``--config`` reuses its saved ``config.yaml``."""
    if not cfg.resume:
        return cfg, None
    if cfg.resume == "latest":
        source = Path(cfg.output_dir) if cfg.output_dir else _newest_run(cfg.name)
        if source is None:
            raise ConfigError(
                f"--resume: no run named {cfg.name!r} with a checkpoint under {DEFAULT_OUTPUT_ROOT}/; "
                "pass --resume PATH or --output-dir of the run to continue."
            )
    else:
        source = Path(cfg.resume)
    checkpoint = find_checkpoint(source)
    if checkpoint is None:
        raise ConfigError(f"--resume: no checkpoint found in {source} (looked for checkpoints/step_*).")
    run_dir = checkpoint.parent.parent
    if "--config" not in argv and (run_dir / "config.yaml").is_file():
        rest = {k: v for k, v in overrides.items() if k != "resume"}
        # max_steps stops one invocation; the continued run goes to the end unless asked again.
        saved = apply_overrides(load_config(run_dir / "config.yaml"), {"train.max_steps": None})
        cfg = apply_overrides(saved, rest, from_text=True)
        cfg = apply_overrides(cfg, {"resume": str(checkpoint)})
    if not cfg.output_dir:
        cfg = apply_overrides(cfg, {"output_dir": str(run_dir)})
    return cfg, checkpoint


def _output_dir(cfg: PretrainConfig, state: PartialState) -> Path:
    """``cfg.output_dir`` or ``outputs/<name>-<time>``, the same on every process."""
    path = [cfg.output_dir or f"{DEFAULT_OUTPUT_ROOT}/{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"]
    if state.num_processes > 1:
        broadcast_object_list(path, from_process=0)
    return Path(path[0])


def build_loaders(cfg: PretrainConfig, per_process_batch: int) -> tuple[Any, Any, Any]:
    """The training loader (multi-view) and the kNN memory/query loaders (eval transform)."""
    from sslzoo.data import build_eval_transform, build_views, create_dataloader, load_source

    data = cfg.data
    train_ds = load_source(data.source, split=data.train_split, **data.source_kwargs)
    views = build_views(data.views, size=data.image_size, **data.view_params)
    train = create_dataloader(
        train_ds,
        views,
        per_process_batch,
        shuffle=True,
        drop_last=True,
        num_workers=data.num_workers,
        seed=cfg.seed,
    )
    if not cfg.knn.enabled:
        return train, None, None
    eval_tf = build_eval_transform(data.image_size)
    knn = []
    for split in (cfg.knn.train_split, cfg.knn.test_split):
        ds = load_source(data.source, split=split, require_labels=True, **data.source_kwargs)
        knn.append(
            create_dataloader(
                ds, eval_tf, cfg.knn.batch_size, shuffle=False, drop_last=False, num_workers=data.num_workers
            )
        )
    return train, knn[0], knn[1]


def _method_scalars(method: torch.nn.Module) -> dict[str, Any]:
    """Python-number attributes of the method (schedule values such as SimClust's ``scale`` or a momentum),
    which are not in the state dict but decide the next forward; saved with checkpoints."""
    out = {}
    for name, module in method.named_modules():
        for key, value in vars(module).items():
            if key != "training" and not key.startswith("_") and type(value) in (int, float, bool):
                out[f"{name}:{key}"] = value
    return out


def _restore_scalars(method: torch.nn.Module, scalars: dict[str, Any]) -> None:
    modules = dict(method.named_modules())
    for path, value in scalars.items():
        name, _, key = path.rpartition(":")
        if name in modules:
            setattr(modules[name], key, value)


# --------------------------------------------------------------------------------------------------- train


def train(cfg: PretrainConfig, checkpoint: Path | None = None) -> dict[str, Any]:
    """Run (or continue) one pretraining job; returns the metrics written to ``metrics.json``."""
    from sslzoo.data import set_epoch
    from sslzoo.methods import create_method

    # The process group must exist before create_method so the method's BatchNorm becomes global-batch.
    # Accelerate only sets up multi-CPU (gloo, e.g. under torchrun) when told cpu=True, so do that when no
    # accelerator is present.
    cpu = cfg.train.cpu or not (
        torch.cuda.is_available() or getattr(torch, "xpu", None) and torch.xpu.is_available()
    )
    state = PartialState(cpu=cpu)
    output_dir = _output_dir(cfg, state)
    cfg = apply_overrides(cfg, {"output_dir": str(output_dir)})
    accelerator = Accelerator(
        cpu=cpu,
        mixed_precision=cfg.train.mixed_precision,
        log_with=make_trackers(cfg.train.tracker, output_dir / "logs"),
        project_dir=str(output_dir),
        kwargs_handlers=[
            DistributedDataParallelKwargs(find_unused_parameters=cfg.train.find_unused_parameters)
        ],
    )
    accum = cfg.train.grad_accum_steps
    world = accelerator.num_processes
    if cfg.data.batch_size % (world * accum):
        raise ConfigError(
            f"data.batch_size={cfg.data.batch_size} (the global batch) must be divisible by processes x "
            f"train.grad_accum_steps = {world} x {accum}."
        )
    per_process_batch = cfg.data.batch_size // (world * accum)

    cfg = resolve_method(cfg)
    set_seed(cfg.seed)  # the same initial weights on every process
    hparams = dict(cfg.model.hparams)
    method = create_method(
        cfg.model.method, cfg.model.arch, sync_batchnorm=cfg.model.sync_batchnorm, **hparams
    )
    if cfg.model.channels_last:
        method = method.to(memory_format=torch.channels_last)
    train_loader, knn_train, knn_test = build_loaders(cfg, per_process_batch)

    peak_lr = scale_lr(cfg.optim.base_lr, cfg.data.batch_size, scaling=cfg.optim.lr_scaling)
    o = cfg.optim
    optimizer = build_optimizer(
        method, o.name, peak_lr, weight_decay=o.weight_decay, momentum=o.momentum, betas=o.betas, eps=o.eps,
        trust_coefficient=o.trust_coefficient, exclude_bias_and_norm=o.exclude_bias_and_norm,
    )  # fmt: skip
    model, optimizer, train_loader = accelerator.prepare(method, optimizer, train_loader)
    if knn_train is not None:
        knn_train, knn_test = accelerator.prepare(knn_train, knn_test)
    unwrapped = accelerator.unwrap_model(model)

    batches_per_epoch = len(train_loader)
    steps_per_epoch = batches_per_epoch // accum
    if steps_per_epoch < 1:
        raise ConfigError(
            f"one epoch has {batches_per_epoch} batches per process, fewer than train.grad_accum_steps={accum}; "
            "lower data.batch_size or grad_accum_steps."
        )
    total_steps = cfg.train.epochs * steps_per_epoch
    warmup_steps = round(o.warmup_epochs * steps_per_epoch)
    max_steps = min(total_steps, cfg.train.max_steps or total_steps)
    ckpt_dir = output_dir / "checkpoints"

    run: dict[str, Any] = {
        "epoch": 0,
        "batch_in_epoch": 0,
        "global_step": 0,
        "knn_history": [],
        "elapsed_s": 0.0,
    }
    if checkpoint is not None:
        run.update(load_checkpoint(accelerator, checkpoint))
        _restore_scalars(unwrapped, run.get("method_scalars", {}))
        accelerator.print(f"resumed from {checkpoint} at step {run['global_step']} (epoch {run['epoch']})")
    elif accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    if accelerator.is_main_process:
        save_config(cfg, output_dir / "config.yaml")
    accelerator.init_trackers(cfg.name, config=_flat_hparams(cfg))

    def knn(tag: str) -> float | None:
        if knn_train is None:
            return None
        top1 = knn_monitor(
            model, knn_train, knn_test, accelerator, k=cfg.knn.k, temperature=cfg.knn.temperature
        )
        model.train()
        run["knn_history"].append({"step": run["global_step"], "epoch": run["epoch"], "knn_top1": top1})
        accelerator.log({"knn_top1": top1}, step=run["global_step"])
        accelerator.print(f"kNN top-1 ({tag}, k={cfg.knn.k}, T={cfg.knn.temperature}): {top1:.2f}%")
        return top1

    if "knn_top1_init" not in run:
        run["knn_top1_init"] = knn("random init")

    def checkpoint_now() -> Path:
        run["method_scalars"] = _method_scalars(unwrapped)
        run["elapsed_s"] = elapsed()
        return save_checkpoint(
            accelerator, ckpt_dir, run["global_step"], run, keep=cfg.train.keep_checkpoints
        )

    started = time.perf_counter()
    elapsed_before = float(run["elapsed_s"])

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - started

    last_ckpt = find_checkpoint(ckpt_dir)
    accelerator.print(
        f"{cfg.model.method} / {cfg.model.arch} on {cfg.data.source}: {world} process(es) x batch {per_process_batch}"
        f" x accum {accum} = {cfg.data.batch_size}; lr {peak_lr:.4g} ({o.name}); {cfg.train.epochs} epochs x "
        f"{steps_per_epoch} steps; output {output_dir}"
    )
    progress = None
    if cfg.train.progress_bar and accelerator.is_main_process:
        from tqdm.auto import tqdm

        progress = tqdm(total=max_steps, initial=run["global_step"], desc="pretrain", dynamic_ncols=True)

    model.train()
    stopped_by = None
    logs: dict[str, float] = {}
    with StopSignal() as stop:
        while run["global_step"] < max_steps and stopped_by is None:
            epoch = run["epoch"]
            set_epoch(train_loader, epoch)
            loader = train_loader
            if run["batch_in_epoch"]:
                loader = accelerator.skip_first_batches(train_loader, run["batch_in_epoch"])
                set_epoch(loader, epoch)
            for views, _ in loader:
                if run["batch_in_epoch"] >= steps_per_epoch * accum:
                    break  # the tail that does not fill a whole accumulation cycle
                sync = (run["batch_in_epoch"] + 1) % accum == 0
                step = run["global_step"]
                lr = lr_at_step(
                    step, total_steps, peak_lr, warmup_steps=warmup_steps, schedule=o.schedule,
                    min_lr=o.min_lr_ratio * peak_lr,
                )  # fmt: skip
                set_lr(optimizer, lr)
                if cfg.model.channels_last:
                    views = [v.contiguous(memory_format=torch.channels_last) for v in views]
                with contextlib.nullcontext() if sync else accelerator.no_sync(model):
                    with accelerator.autocast():
                        out = model(views)
                    logs, stop_requested = reduce_logs(accelerator, out, stop=stop.requested)
                    check_finite(logs, step, epoch + run["batch_in_epoch"] / batches_per_epoch, last_ckpt)
                    accelerator.backward(out["loss"] / accum)
                run["batch_in_epoch"] += 1
                if not sync:
                    continue
                if cfg.train.clip_grad_norm:
                    logs["grad_norm"] = float(
                        accelerator.clip_grad_norm_(model.parameters(), cfg.train.clip_grad_norm)
                    )
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                run["global_step"] = step = step + 1
                progress_epochs = epoch + run["batch_in_epoch"] / batches_per_epoch
                unwrapped.on_step_end(progress_epochs, float(cfg.train.epochs))
                if step % cfg.train.log_every == 0 or step == max_steps:
                    accelerator.log(
                        {**{f"train/{k}": v for k, v in logs.items()}, "lr": lr, "epoch": progress_epochs},
                        step=step,
                    )
                if progress is not None:
                    progress.update(1)
                    progress.set_postfix(
                        loss=f"{logs['loss']:.4f}", epoch=f"{progress_epochs:.2f}", refresh=False
                    )
                if stop_requested:
                    stopped_by = stop.name
                elif cfg.train.checkpoint_every_steps and step % cfg.train.checkpoint_every_steps == 0:
                    last_ckpt = checkpoint_now()
                if stopped_by or step >= max_steps:
                    break
            if run["batch_in_epoch"] >= steps_per_epoch * accum:  # the epoch is complete
                run["epoch"], run["batch_in_epoch"] = epoch + 1, 0
                if cfg.knn.every and run["epoch"] % cfg.knn.every == 0 and run["global_step"] < max_steps:
                    knn(f"epoch {run['epoch']}")
                if cfg.train.checkpoint_every and run["epoch"] % cfg.train.checkpoint_every == 0:
                    last_ckpt = checkpoint_now()
        if progress is not None:
            progress.close()
        if last_ckpt is None or last_ckpt.name != f"step_{run['global_step']:08d}":
            last_ckpt = checkpoint_now()
        if stopped_by is not None:
            accelerator.print(
                f"{stopped_by}: stopped at step {run['global_step']}; checkpoint {last_ckpt}. Continue with "
                f"--resume {output_dir}"
            )
            accelerator.end_training()
            return {"stopped_by": stopped_by, "global_step": run["global_step"], "checkpoint": str(last_ckpt)}

    final = knn("trained")
    metrics = {
        "knn_top1_init": run["knn_top1_init"],
        "knn_top1": final,
        "knn_history": run["knn_history"],
        "final_logs": logs,
        "global_step": run["global_step"],
        "epochs": run["global_step"] / steps_per_epoch,
        "total_steps": total_steps,
        "train_time_s": round(elapsed(), 2),
        "num_processes": world,
        "global_batch": cfg.data.batch_size,
        "peak_lr": peak_lr,
        "checkpoint": str(last_ckpt),
    }
    if accelerator.is_main_process:
        from sslzoo.hub import save_pretrained

        dataset = (
            cfg.data.source if cfg.data.source == "digits" else Path(cfg.data.source).name or cfg.data.source
        )
        save_pretrained(
            unwrapped,
            output_dir,
            name=f"{cfg.model.arch}_{cfg.model.method}",
            method=cfg.model.method,
            dataset=dataset,
            epochs=metrics["epochs"],
            recipe_config=_plain(_config_dict(cfg)),
            metrics={
                k: v for k, v in metrics.items() if k in ("knn_top1_init", "knn_top1") and v is not None
            },
            data_config={"input_size": (3, cfg.data.image_size, cfg.data.image_size)},
        )
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        if cfg.publish:
            from sslzoo.hub import publish

            metrics["published"] = str(publish(output_dir, cfg.publish))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if final is not None and run["knn_top1_init"] is not None:
        accelerator.print(
            f"kNN top-1: {run['knn_top1_init']:.2f}% (random init) -> {final:.2f}% (trained, "
            f"{metrics['epochs']:.3g} epochs, {metrics['train_time_s']:.0f} s). Encoder saved to {output_dir}"
        )
    return metrics


def _config_dict(cfg: PretrainConfig) -> dict[str, Any]:
    from sslzoo.config import config_to_dict

    return config_to_dict(cfg)


def _flat_hparams(cfg: PretrainConfig) -> dict[str, Any]:
    """Dotted scalar entries for the trackers' hyper-parameter tables."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}{k}.", v)
        else:
            flat[prefix[:-1]] = (
                node if isinstance(node, (int, float, str, bool)) or node is None else str(node)
            )

    walk("", _config_dict(cfg))
    return flat


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg, overrides = parse_cli(argv)
    cfg, checkpoint = resolve_resume(cfg, argv, overrides)
    return train(cfg, checkpoint)


if __name__ == "__main__":
    # Keep the 2-core default job from oversubscribing: one intra-op thread pool per process.
    if "OMP_NUM_THREADS" not in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["WORLD_SIZE"])))
    try:
        result = main()
    except (ConfigError, NonFiniteLossError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2 if isinstance(err, ConfigError) else 1)
    if result.get("stopped_by"):
        sys.exit(128 + int(getattr(signal.Signals, result["stopped_by"], 15)))
