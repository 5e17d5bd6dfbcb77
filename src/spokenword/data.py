"""The data module: a corpus, a deterministic split, cached features and normalisation statistics.

Splits (``split``):

* ``official``: test = takes 0-4, validation = takes 5-9, train = takes 10-49. Model selection
  never sees the test recordings.
* ``reference``: train = takes 5-49, validation = test = takes 0-4: the reference's own protocol
  (test recordings used for model selection); every report labels it as such.
* ``speakers``: ``test_speakers`` held out as test; validation = takes 5-9 of the other speakers
  (or ``val_speakers`` when given), train = the rest.

Features are computed once per run and cached on disk (see :mod:`spokenword.cache`), never per
epoch. Normalisation statistics (mean and std of the training features) are computed on the
training split only and handed to the model, which stores them in its checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from spokenword.cache import FeatureCache
from spokenword.datasets import FSDD, Corpus, DatasetError, Recording
from spokenword.features import FeatureSettings

SplitName = Literal["official", "reference", "speakers"]
DATA_ENV = "SPOKENWORD_DATA"
CACHE_ENV = "SPOKENWORD_CACHE"


def resolve_root(root: str | os.PathLike | None) -> Path:
    """The data root: ``root`` if given, else ``$SPOKENWORD_DATA``, else ``./data``."""
    if root:
        return Path(root).expanduser()
    return Path(os.environ.get(DATA_ENV) or "data").expanduser()


def resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    """Feature cache folder: ``cache_dir``, else ``$SPOKENWORD_CACHE``, else ``./.cache/spokenword``."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get(CACHE_ENV) or ".cache/spokenword").expanduser()


@dataclass(frozen=True)
class Split:
    """Recordings of one split. ``protocol`` says how test relates to model selection."""

    name: str
    train: list[Recording]
    val: list[Recording]
    test: list[Recording]
    protocol: str


def make_split(
    recordings: list[Recording],
    split: SplitName,
    test_speakers: list[str] | None = None,
    val_speakers: list[str] | None = None,
) -> Split:
    """Divide ``recordings`` into train / validation / test (see module docstring). Deterministic."""
    if split == "official":
        return Split(
            "official",
            train=[r for r in recordings if r.take >= 10],
            val=[r for r in recordings if 5 <= r.take <= 9],
            test=[r for r in recordings if 0 <= r.take <= 4],
            protocol="test = takes 0-4, validation = takes 5-9 (test never used for selection)",
        )
    if split == "reference":
        test = [r for r in recordings if 0 <= r.take <= 4]
        return Split(
            "reference",
            train=[r for r in recordings if r.take >= 5],
            val=test,
            test=test,
            protocol="reference protocol: validation = test = takes 0-4 (test used for model selection)",
        )
    if split == "speakers":
        speakers = sorted({r.speaker for r in recordings})
        held = list(test_speakers or [])
        unknown = [s for s in held + list(val_speakers or []) if s not in speakers]
        if not held or unknown:
            raise DatasetError(
                f"split 'speakers' needs test_speakers from {speakers}"
                + (f"; unknown: {unknown}" if unknown else "")
            )
        test = [r for r in recordings if r.speaker in held]
        rest = [r for r in recordings if r.speaker not in held]
        if val_speakers:
            val = [r for r in rest if r.speaker in val_speakers]
            train = [r for r in rest if r.speaker not in val_speakers]
        else:
            val = [r for r in rest if 5 <= r.take <= 9]
            train = [r for r in rest if not 5 <= r.take <= 9]
        return Split(
            "speakers",
            train=train,
            val=val,
            test=test,
            protocol=f"held-out speakers {held} as test; validation from other speakers",
        )
    raise ValueError(f"unknown split {split!r}; expected 'official', 'reference' or 'speakers'")


class AudioDataModule(L.LightningDataModule):
    """Labelled recordings to batches of ``(features (N, 1, n_bins, n_frames), label index (N,))``.

    Args:
        root: data root (``<root>/fsdd/recordings`` for FSDD); default ``$SPOKENWORD_DATA`` or ``./data``.
        corpus: which recordings; default :class:`~spokenword.datasets.FSDD`.
        split: ``official``, ``reference`` or ``speakers`` (see module docstring).
        test_speakers: speakers held out as test for ``split: speakers``.
        val_speakers: speakers used for validation for ``split: speakers`` (default: takes 5-9).
        sample_rate: every recording is resampled to this rate (Hz).
        features: feature settings (stored in the checkpoint through the model).
        batch_size: training batch size.
        eval_batch_size: validation/test batch size.
        num_workers: DataLoader workers (features are in memory, so 0 is usually fastest).
        cache_dir: feature cache folder; default ``$SPOKENWORD_CACHE`` or ``./.cache/spokenword``.
    """

    def __init__(
        self,
        root: str | None = None,
        corpus: Corpus | None = None,
        split: SplitName = "official",
        test_speakers: list[str] | None = None,
        val_speakers: list[str] | None = None,
        sample_rate: int = 8000,
        features: FeatureSettings = FeatureSettings(),
        batch_size: int = 256,
        eval_batch_size: int = 512,
        num_workers: int = 0,
        cache_dir: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["corpus", "features"])  # features travel with the model
        self.root = resolve_root(root)
        self.corpus = corpus or FSDD()
        self.split_name = split
        self.test_speakers = test_speakers
        self.val_speakers = val_speakers
        self.sample_rate = sample_rate
        self.features = features
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.cache = FeatureCache(resolve_cache_dir(cache_dir))
        self._tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.feature_mean: float | None = None
        self.feature_std: float | None = None

    # -- facts the model links to -------------------------------------------------------------
    @cached_property
    def recordings(self) -> list[Recording]:
        return self.corpus.recordings(self.root)

    @cached_property
    def labels(self) -> list[str]:
        """Class names in output order; they travel in the checkpoint."""
        return self.corpus.labels(self.recordings)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @cached_property
    def split(self) -> Split:
        return make_split(self.recordings, self.split_name, self.test_speakers, self.val_speakers)

    # -- Lightning hooks -----------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.corpus.prepare(self.root)

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        parts = wanted.get(stage or "", ("train", "val", "test"))
        if stage == "fit" or "train" in parts:
            parts = tuple(dict.fromkeys(parts + ("train",)))
        for part in parts:
            if part not in self._tensors:
                self._tensors[part] = self._load(part)
        if "train" in self._tensors and self.feature_mean is None:
            x = self._tensors["train"][0]
            self.feature_mean = float(x.mean())
            self.feature_std = float(x.std())

    def _load(self, part: str) -> tuple[torch.Tensor, torch.Tensor]:
        records: list[Recording] = getattr(self.split, part)
        if not records:
            raise DatasetError(f"the {part} part of split {self.split_name!r} is empty")
        index = {label: i for i, label in enumerate(self.labels)}
        x = self.cache.features([r.path for r in records], self.sample_rate, self.features, desc=part)
        y = torch.tensor([index[r.label] for r in records], dtype=torch.long)
        return torch.from_numpy(np.array(x)), y  # a private copy of the memory-mapped cache

    def dataset(self, part: str) -> Dataset:
        """The ``TensorDataset`` of one part (``train``, ``val`` or ``test``), loading it if needed."""
        if part not in self._tensors:
            self._tensors[part] = self._load(part)
        return TensorDataset(*self._tensors[part])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset("train"), batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers, drop_last=False)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset("val"), batch_size=self.eval_batch_size, num_workers=self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset("test"), batch_size=self.eval_batch_size, num_workers=self.num_workers)
