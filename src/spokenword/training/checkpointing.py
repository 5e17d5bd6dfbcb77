"""Checkpoints that survive interruption, and resuming from them.

* :class:`BestCheckpoint` keeps the best-validation weights (``best-epoch=NN.ckpt``); of epochs that
  tie on the score the later one wins, and :func:`last_checkpoint` writes ``last.ckpt`` after every
  epoch, whether or not the score improved (Lightning 2.6's ``save_last=True`` only writes it when
  the monitored checkpoint is saved, so after the best epoch ``last.ckpt`` went stale).
* :class:`AtomicCheckpointIO` writes each checkpoint to a temporary file in the same folder,
  flushes it to disk and renames it over the target (``os.replace`` is atomic on POSIX), so a
  process killed mid-write leaves the previous ``last.ckpt`` intact, never a truncated one.
* :class:`RngState` stores the random generators' state in every checkpoint and restores it on
  resume, so a resumed run shuffles (and drops out) exactly as the uninterrupted run would.
* :class:`ResumeHint` tells the user, on Ctrl-C, the exact command that resumes the run.
* :func:`resolve_resume` turns ``--ckpt_path last`` into the newest ``last.ckpt`` of the run and
  makes the resumed run log into the same run folder.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

LAST = "last"
LAST_NAME = "last.ckpt"


class BestCheckpoint(ModelCheckpoint):
    """Lightning's :class:`~lightning.pytorch.callbacks.ModelCheckpoint` for the single best
    checkpoint (``save_top_k=1``), except that an epoch which equals the best score so far replaces
    it: of equally good epochs the later, further-trained one is kept.

    Why: validation accuracy on a few hundred clips saturates. With in-speaker validation (the
    training speakers' takes 5-9) it reaches 100 % long before a one-cycle schedule has annealed, and
    Lightning's strict comparison then kept the first epoch at 100 %, one taken near the schedule's
    peak learning rate, never the annealed end of training. A score that still improves selects
    exactly as before.
    """

    def __init__(self, monitor: str, mode: str = "max", filename: str = "best-{epoch:02d}", **kwargs: Any) -> None:
        if kwargs.get("save_top_k", 1) != 1:
            raise ValueError("BestCheckpoint keeps one checkpoint (save_top_k=1)")
        super().__init__(monitor=monitor, mode=mode, filename=filename, save_top_k=1, **kwargs)

    def check_monitor_top_k(self, trainer, current: torch.Tensor | None = None) -> bool:
        if current is None or not self.best_k_models:
            return super().check_monitor_top_k(trainer, current)
        at_least = torch.ge if self.mode == "max" else torch.le
        better_or_equal = bool(at_least(current, self.best_k_models[self.kth_best_model_path]))
        return trainer.strategy.reduce_boolean_decision(better_or_equal)


def best_model_path(callbacks: list[Callback]) -> str | None:
    """The checkpoint a finished ``fit`` is tested and reported with: the best file of the first
    ``ModelCheckpoint`` that monitors a metric, else ``None`` (the weights at the end of training:
    nothing was selected). LightningCLI puts a config's own callbacks before the trainer defaults
    (and Lightning keeps checkpoint callbacks in that order), so a config that lists its own
    ``ModelCheckpoint(monitor=...)`` is tested with its choice, and every other with the default
    :class:`BestCheckpoint`'s."""
    monitored = (c for c in callbacks if isinstance(c, ModelCheckpoint) and c.monitor is not None)
    return next((c.best_model_path for c in monitored if c.best_model_path), None)


def last_checkpoint() -> ModelCheckpoint:
    """A checkpoint callback that writes ``RUN/checkpoints/last.ckpt`` at the end of every epoch (the
    resume point; no monitor, one file overwritten in place)."""
    return ModelCheckpoint(filename=LAST, enable_version_counter=False)


class AtomicCheckpointIO(TorchCheckpointIO):
    """:class:`~lightning.pytorch.plugins.io.TorchCheckpointIO` writing via temp file + rename."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                torch.save(checkpoint, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class RngState(Callback):
    """Saves python, numpy and torch RNG states in checkpoints; restores them on load."""

    def state_dict(self) -> dict:
        # plain ints and tensors only, so ``torch.load(weights_only=True)`` still opens the checkpoint
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        return {
            "python": [int(v) for v in random.getstate()[1]],
            "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "torch": torch.get_rng_state(),
        }

    def load_state_dict(self, state_dict: dict) -> None:
        if "python" in state_dict:
            random.setstate((3, tuple(int(v) for v in state_dict["python"]), None))
        if "numpy" in state_dict:
            n = state_dict["numpy"]
            np.random.set_state(("MT19937", np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"],
                                 n["cached_gaussian"]))
        if "torch" in state_dict:
            torch.set_rng_state(torch.as_tensor(state_dict["torch"], dtype=torch.uint8))


class ResumeHint(Callback):
    """On Ctrl-C during fit, prints the command that resumes from the run's ``last.ckpt``."""

    def __init__(self) -> None:
        self.interrupted = False

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt) or not trainer.is_global_zero:
            return
        self.interrupted = True
        run = Path(trainer.log_dir or ".").resolve()
        last = run / "checkpoints" / LAST_NAME
        if last.is_file():
            print(f"spokenword: interrupted; resume with: spokenword fit --config {_quote(run / 'config.yaml')} "
                  f"--ckpt_path {_quote(last)}", file=sys.stderr)
        else:
            print("spokenword: interrupted before the first checkpoint; nothing to resume, start the run again",
                  file=sys.stderr)


def _quote(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))


def newest_last(save_dir: Path, name: str | None) -> Path | None:
    """The most recently written ``<save_dir>/<name>/*/checkpoints/last.ckpt`` (``None`` if none)."""
    base = Path(save_dir) / (name or "")
    found = [p for p in base.glob(f"*/checkpoints/{LAST_NAME}") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def resolve_resume(config) -> None:
    """For ``fit``: resolve ``ckpt_path: last`` and, when the checkpoint lies in a run folder
    (``RUN/checkpoints/*.ckpt`` next to ``RUN/config.yaml``), keep logging into that folder.

    ``config`` is the fit subcommand's jsonargparse namespace; it is edited in place.
    Raises :class:`~spokenword.inference.base.CheckpointError` when there is nothing to resume.
    """
    from spokenword.inference.base import CheckpointError

    logger = config.trainer.get("logger") if hasattr(config.trainer, "get") else None
    init = logger.get("init_args") if logger is not None and hasattr(logger, "get") else None
    ckpt = config.get("ckpt_path")
    if ckpt == LAST:
        if init is None or init.get("save_dir") is None:
            raise CheckpointError("--ckpt_path last needs a logger with a save_dir to find the run; pass the checkpoint path")
        found = newest_last(Path(init.get("save_dir")), init.get("name"))
        if found is None:
            raise CheckpointError(f"--ckpt_path last: no {LAST_NAME} under {Path(init.get('save_dir')) / (init.get('name') or '')}")
        config.ckpt_path = ckpt = str(found)
    if not ckpt:
        return
    path = Path(ckpt)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    run = path.resolve().parent.parent
    if path.parent.name == "checkpoints" and (run / "config.yaml").is_file() and init is not None \
            and {"save_dir", "name", "version"} <= set(init.keys()):
        init.save_dir, init.name, init.version = str(run.parent.parent), run.parent.name, run.name
