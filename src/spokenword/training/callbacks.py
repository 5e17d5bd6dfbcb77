"""Callbacks of every training run (the trainer's defaults, see :func:`spokenword.training.cli.trainer_defaults`)."""

from __future__ import annotations

import os
import time

import torch
from lightning.pytorch import Callback
from lightning.pytorch.accelerators import CPUAccelerator


class EpochHistory(Callback):
    """Keeps every epoch's logged metrics and the training wall time, whatever logger is used."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []
        self.started: float | None = None
        self.seconds: float = 0.0

    def setup(self, trainer, pl_module, stage: str) -> None:
        # from setup, not on_fit_start: a model's frozen_views are computed in between (the data loaders)
        if stage == "fit":
            self.started = time.perf_counter()

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.started is not None:
            self.seconds += time.perf_counter() - self.started
            self.started = None

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        row = {"epoch": float(trainer.current_epoch)}
        row.update({k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1})
        self.epochs.append(row)

    def state_dict(self) -> dict:
        return {"epochs": self.epochs, "seconds": self.seconds}

    def load_state_dict(self, state_dict: dict) -> None:
        self.epochs = list(state_dict.get("epochs", []))
        self.seconds = float(state_dict.get("seconds", 0.0))


class ChannelsLast(Callback):
    """Keeps the network's weights in channels-last memory format during fit (a speed-up for CPU
    oneDNN convolutions and pooling, larger with ``trainer.precision: bf16-mixed``; measured by
    ``python -m benchmarks.speed train``). One of the trainer's default callbacks; modules without 4-D
    weights are unaffected.

    The weights' values are unchanged, so checkpoints and exports are the same either way.
    """

    def setup(self, trainer, pl_module, stage: str) -> None:
        # from setup, not on_fit_start: a model's frozen_views are computed in between (the data loaders)
        if stage == "fit":
            pl_module.to(memory_format=torch.channels_last)

    def on_fit_end(self, trainer, pl_module) -> None:
        pl_module.to(memory_format=torch.contiguous_format)


#: set by a launcher that runs several fits at once on one machine (``make train``: 2); each takes its share
FITS_AT_ONCE_ENV = "SPOKENWORD_FITS_AT_ONCE"


def fits_at_once() -> int:
    """``$SPOKENWORD_FITS_AT_ONCE`` as a count (1 when unset or not a positive whole number)."""
    try:
        return max(1, int(os.environ.get(FITS_AT_ONCE_ENV, "1")))
    except ValueError:
        return 1


class ThreadsBesideWorkers(Callback):
    """During fit on CPU, one torch thread fewer per DataLoader worker (at least one is left), so the
    workers that make the augmented training batches do not fight oneDNN's threads for the same
    cores. On 2 cores with ``num_workers: 1`` the training process then runs 1 thread instead of 2,
    which makes ``configs/fsdd_cnn_newvoices.yaml`` train faster (docs/results.md). One of the
    trainer's default callbacks.

    Where ``$SPOKENWORD_FITS_AT_ONCE`` is N > 1 (``make train`` runs its two fits at once), the fit takes
    its share of the cores first: ``cores // N`` less one per worker, at least one; so two fits on 8 cores
    run 3 threads each (beside a worker each) instead of 7, and on 2 cores 1 each, as alone.

    Nothing changes where ``OMP_NUM_THREADS`` is set (by the user, or by Lightning's DDP launchers,
    which divide the cores among the processes), without workers (unless shared), or off the CPU. The
    thread count in force before fit is restored after it. A run's thread count changes its float rounding,
    so its figures reproduce at the same count: ``run_info.json`` and ``report.json`` record the count fit ran
    with (``fit_threads``).
    """

    def __init__(self) -> None:
        self._before: int | None = None
        self.fit_threads: int | None = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        workers = int(getattr(trainer.datamodule, "num_workers", 0) or 0)
        fits = fits_at_once()
        if (stage != "fit" or (workers <= 0 and fits == 1) or "OMP_NUM_THREADS" in os.environ
                or not isinstance(trainer.accelerator, CPUAccelerator)):
            return
        self._before = torch.get_num_threads()
        self.fit_threads = max(1, self._before // fits - workers)
        torch.set_num_threads(self.fit_threads)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if self._before is not None:
            torch.set_num_threads(self._before)
            self._before = None
