"""ThreadsBesideWorkers: one torch thread fewer per DataLoader worker during fit on CPU."""

from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.accelerators import CPUAccelerator

from spokenword.training.callbacks import ThreadsBesideWorkers
from spokenword.training.cli import trainer_defaults


@pytest.fixture
def four_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    yield
    torch.set_num_threads(before)


def trainer(workers: int, accelerator=None):
    return SimpleNamespace(datamodule=SimpleNamespace(num_workers=workers), accelerator=accelerator or CPUAccelerator())


def test_fit_leaves_a_core_to_each_worker_and_restores_after(four_threads):
    callback = ThreadsBesideWorkers()
    callback.setup(trainer(1), None, "fit")
    assert torch.get_num_threads() == 3 and callback.fit_threads == 3
    callback.teardown(trainer(1), None, "fit")
    assert torch.get_num_threads() == 4
    callback.setup(trainer(9), None, "fit")
    assert torch.get_num_threads() == 1  # never fewer than one
    callback.teardown(trainer(9), None, "fit")
    assert torch.get_num_threads() == 4


@pytest.mark.parametrize("workers, stage, accelerator", [(0, "fit", None), (2, "test", None), (2, "fit", object())])
def test_nothing_changes_without_workers_outside_fit_or_off_the_cpu(four_threads, workers, stage, accelerator):
    callback = ThreadsBesideWorkers()
    callback.setup(trainer(workers, accelerator), None, stage)
    callback.teardown(trainer(workers, accelerator), None, stage)
    assert torch.get_num_threads() == 4 and callback.fit_threads is None


def test_an_explicit_omp_num_threads_is_respected(four_threads, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    callback = ThreadsBesideWorkers()
    callback.setup(trainer(1), None, "fit")
    assert torch.get_num_threads() == 4 and callback.fit_threads is None


def test_it_is_a_default_callback():
    assert any(isinstance(c, ThreadsBesideWorkers) for c in trainer_defaults()["callbacks"])


@pytest.mark.parametrize("fits, workers, expected", [("2", 1, 1), ("2", 0, 2), ("4", 1, 1), ("1", 1, 3), ("x", 1, 3), ("0", 1, 3)])
def test_fits_run_at_once_share_the_cores(four_threads, monkeypatch, fits, workers, expected):
    """$SPOKENWORD_FITS_AT_ONCE (make train's two fits): each takes cores // N less its workers, at least one; a
    value that is not a positive count is ignored."""
    monkeypatch.setenv("SPOKENWORD_FITS_AT_ONCE", fits)
    callback = ThreadsBesideWorkers()
    callback.setup(trainer(workers), None, "fit")
    assert torch.get_num_threads() == expected and callback.fit_threads == expected
    callback.teardown(trainer(workers), None, "fit")
    assert torch.get_num_threads() == 4
