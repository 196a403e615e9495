"""Reusable pieces of the pretraining loop: checkpoints, resume, stop signals, the NaN guard, kNN, trackers.

- Checkpoints go through :meth:`accelerate.Accelerator.save_state` (model as safetensors, optimizer and RNG
  states through ``torch.save``; Accelerate reads them back with ``weights_only=True``) into a temporary
  directory that is renamed into place only when complete, and a ``LATEST`` pointer file is replaced
  atomically afterwards. A crash at any moment leaves either the previous checkpoint or the new one, never a
  half-written "latest". The loop's own position is a JSON file (``training_state.json``), not a pickle.
- :class:`StopSignal` turns SIGINT/SIGTERM into a flag the loop checks after each step, so the loop can write a
  checkpoint and exit cleanly; a second signal aborts at once.
- :func:`reduce_logs` averages the step's logs over processes and carries the stop flag in the same
  collective, so every process takes the same decision at the same step.
- :func:`check_finite` is the NaN/inf guard: it raises :class:`NonFiniteLossError` naming the step and every
  loss term before ``backward`` runs, so no non-finite update reaches the weights or a checkpoint.
- :func:`knn_monitor` is the weighted kNN top-1 of :mod:`sslzoo.eval` on features gathered over processes.
- :class:`JSONLinesTracker` is an Accelerate tracker writing one JSON object per log call, used when
  TensorBoard is not installed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from accelerate.tracking import GeneralTracker

__all__ = [
    "CHECKPOINT_PREFIX",
    "JSONLinesTracker",
    "NonFiniteLossError",
    "StopSignal",
    "check_finite",
    "find_checkpoint",
    "knn_monitor",
    "list_checkpoints",
    "load_checkpoint",
    "make_trackers",
    "reduce_logs",
    "save_checkpoint",
]

CHECKPOINT_PREFIX = "step_"
LATEST_FILE = "LATEST"
STATE_FILE = "training_state.json"


# ----------------------------------------------------------------------------------------------- checkpoints


def _checkpoint_name(step: int) -> str:
    return f"{CHECKPOINT_PREFIX}{step:08d}"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def list_checkpoints(checkpoints_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under ``checkpoints_dir``, oldest first (temporary directories are ignored)."""
    root = Path(checkpoints_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir() and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: p.name)


def save_checkpoint(
    accelerator: Any, checkpoints_dir: str | os.PathLike, step: int, state: Mapping[str, Any], keep: int = 2
) -> Path:
    """Write a checkpoint atomically; every process must call this (Accelerate saves per-process RNG states).

    The state is written to ``checkpoints_dir/.tmp-step_XXXXXXXX`` and renamed to ``step_XXXXXXXX`` once
    complete; ``LATEST`` is then replaced to name it, and all but the newest ``keep`` checkpoints are removed.

    Args:
        accelerator: the run's ``accelerate.Accelerator`` (model, optimizer and data loaders prepared).
        checkpoints_dir: the run's ``checkpoints/`` directory.
        step: optimizer steps done; names the checkpoint.
        state: JSON-serialisable loop state (epoch, position in the epoch, metrics so far ...).
        keep: how many checkpoints to keep (at least 1).
    """
    root = Path(checkpoints_dir)
    name = _checkpoint_name(step)
    final = root / name
    tmp = root / f".tmp-{name}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():  # left over from a crash during an earlier save
            shutil.rmtree(tmp)
        tmp.mkdir()
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        payload = dict(state)
        payload.update(step=step, saved_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
        _write_atomic(tmp / STATE_FILE, json.dumps(payload, indent=2))
        if final.exists():  # the same step saved twice (e.g. a stop request right at the end)
            old = root / f".old-{name}"
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old)
        else:
            os.replace(tmp, final)
        _write_atomic(root / LATEST_FILE, name + "\n")
        for stale in list_checkpoints(root)[: -max(1, keep)]:
            if stale.name != name:
                shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def find_checkpoint(path: str | os.PathLike) -> Path | None:
    """Resolve a checkpoint from a checkpoint directory, a ``checkpoints/`` directory or a run directory.

    ``LATEST`` is followed when it names a complete checkpoint; otherwise the newest complete one is used.
    Returns None when there is none.
    """
    path = Path(path)
    if (path / STATE_FILE).is_file():
        return path
    root = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    latest = root / LATEST_FILE
    if latest.is_file():
        candidate = root / latest.read_text().strip()
        if (candidate / STATE_FILE).is_file():
            return candidate
    found = list_checkpoints(root)
    return found[-1] if found else None


def load_checkpoint(accelerator: Any, checkpoint: str | os.PathLike) -> dict[str, Any]:
    """Restore model, optimizer and RNG states with ``accelerator.load_state``; return the loop state."""
    checkpoint = Path(checkpoint)
    state_file = checkpoint / STATE_FILE
    if not state_file.is_file():
        raise FileNotFoundError(
            f"{checkpoint} is not a complete sslzoo checkpoint (no {STATE_FILE}); pass a run directory, its "
            "checkpoints/ directory or one step_XXXXXXXX directory inside it."
        )
    rng_file = checkpoint / f"random_states_{accelerator.process_index}.pkl"
    if not rng_file.is_file():
        raise FileNotFoundError(
            f"{checkpoint} has no RNG state for process {accelerator.process_index} ({rng_file.name}); it was "
            "written by a run with fewer processes. Resume with the same number of processes."
        )
    accelerator.load_state(str(checkpoint))
    return json.loads(state_file.read_text())


# ----------------------------------------------------------------------------------------- signals, NaN guard


class StopSignal:
    """Context manager turning SIGINT/SIGTERM into ``self.requested = True`` (a second signal aborts).

    Example::

        with StopSignal() as stop:
            for step in ...:
                train_step()
                if stop.requested:
                    save_checkpoint(...)
                    break
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.signals = signals
        self.requested = False
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:  # second signal: the user wants out now
            raise KeyboardInterrupt(
                f"received {signal.Signals(signum).name} twice; exiting without a checkpoint"
            )
        self.requested = True
        self.signum = signum

    def __enter__(self) -> StopSignal:
        for s in self.signals:
            try:
                self._previous[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread: signals cannot be caught here
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else "stop request"


class NonFiniteLossError(RuntimeError):
    """The loss or one of its terms became NaN or infinite."""


def reduce_logs(
    accelerator: Any, logs: Mapping[str, Any], stop: bool = False
) -> tuple[dict[str, float], bool]:
    """Mean of every scalar log over processes, plus "any process asked to stop", in one all-reduce.

    Non-scalar entries are skipped. Returns ``(logs as floats, stop)``.
    """
    keys = [
        k for k, v in logs.items() if (torch.is_tensor(v) and v.numel() == 1) or isinstance(v, (int, float))
    ]
    values = [torch.as_tensor(logs[k], dtype=torch.float64).detach().reshape(()) for k in keys]
    packed = torch.stack([*values, torch.tensor(float(stop), dtype=torch.float64)]).to(accelerator.device)
    if accelerator.num_processes > 1:
        packed = accelerator.reduce(packed, reduction="sum")
        packed[:-1] /= accelerator.num_processes
    packed = packed.cpu().tolist()
    return dict(zip(keys, packed[:-1], strict=True)), packed[-1] > 0


def check_finite(
    logs: Mapping[str, float], step: int, epoch: float, checkpoint: str | os.PathLike | None
) -> None:
    """Raise :class:`NonFiniteLossError` when ``logs["loss"]`` or a loss term is NaN/inf.

    The message names the step, the epoch, every logged term and the last good checkpoint (kept as is).
    """
    bad = [k for k, v in logs.items() if not math.isfinite(v)]
    if not bad:
        return
    terms = ", ".join(f"{k}={v:.6g}" for k, v in logs.items())
    where = (
        f"the last good checkpoint is kept at {checkpoint}" if checkpoint else "no checkpoint was written yet"
    )
    raise NonFiniteLossError(
        f"non-finite value in {', '.join(bad)} at step {step} (epoch {epoch:.3f}); loss terms: {terms}. "
        f"Training stopped before the update; {where}. Lower optim.base_lr, set train.clip_grad_norm, or use "
        "train.mixed_precision=no, then resume with --resume."
    )


# ---------------------------------------------------------------------------------------------------- monitors


def knn_monitor(
    model: torch.nn.Module,
    train_loader: Any,
    test_loader: Any,
    accelerator: Any = None,
    *,
    k: int = 20,
    temperature: float = 0.07,
) -> float:
    """Weighted kNN top-1 (percent) of the encoder on ``test_loader`` with ``train_loader`` as memory bank.

    Features come from :func:`sslzoo.eval.extract_features` (gathered over processes when the loaders were
    prepared by ``accelerator``); the vote is :func:`sslzoo.eval.knn_accuracy` (Wu et al. 2018). The
    model's train/eval mode is restored afterwards.
    """
    from sslzoo.eval import extract_features, knn_accuracy

    train_x, train_y = extract_features(model, train_loader, accelerator)
    test_x, test_y = extract_features(model, test_loader, accelerator)
    return float(knn_accuracy(train_x, train_y, test_x, test_y, k=k, temperature=temperature))


class JSONLinesTracker(GeneralTracker):
    """Accelerate tracker appending ``{"step": s, **values}`` lines to ``<logging_dir>/metrics.jsonl``."""

    name = "jsonl"
    requires_logging_directory = True

    def __init__(self, run_name: str = "", logging_dir: str | os.PathLike = ".", **kwargs: Any) -> None:
        super().__init__()
        self.run_name = run_name
        self.path = Path(logging_dir) / "metrics.jsonl"

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def tracker(self) -> Path:
        return self.path

    def store_init_configuration(self, values: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.parent / "hparams.json", "w") as f:
            json.dump(values, f, indent=2, default=str)

    def log(self, values: dict, step: int | None = None, **kwargs: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        row = {"step": step, "time": round(time.time(), 3)}
        row.update({k: (v.item() if torch.is_tensor(v) else v) for k, v in values.items()})
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def make_trackers(kind: str, logging_dir: str | os.PathLike) -> list[Any]:
    """Trackers for ``Accelerator(log_with=...)``: ``auto`` = TensorBoard when installed, else JSON lines."""
    if kind == "none":
        return []
    if kind in ("auto", "tensorboard"):
        try:
            import tensorboard  # noqa: F401

            return ["tensorboard"]
        except ImportError:
            if kind == "tensorboard":
                raise ImportError(
                    "train.tracker=tensorboard needs the tensorboard package: pip install tensorboard "
                    "(or use train.tracker=jsonl)"
                ) from None
    return [JSONLinesTracker(logging_dir=logging_dir)]
