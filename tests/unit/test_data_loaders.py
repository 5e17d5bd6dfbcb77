"""AudioDataModule's loaders: training batches from workers, validation and test in the training process."""

from __future__ import annotations

from pathlib import Path

import torch

from spokenword.data.corpora import LabelledFolder
from spokenword.data.datamodule import AudioDataModule
from spokenword.frontend.settings import FeatureSettings
from tests.conftest import tone, write_wav

FEATURES = FeatureSettings(kind="logmel", n_fft=256, hop_length=80, n_bins=32, n_frames=40, time_axis="fixed",
                           f_min=60.0, f_max=3800.0, top_db=80.0)


def test_validation_and_test_read_cached_features_without_workers(tmp_path: Path):
    """A worker for cached features would be started afresh every validation (non-persistent): they are read in
    the training process whatever num_workers is, and give every clip once."""
    for word, freq in {"low": 300.0, "high": 1500.0}.items():
        for i in range(8):
            write_wav(tmp_path / "words" / word / f"s{i}_nohash_0.wav", tone(0.3, freq=freq * (1 + 0.02 * i), amplitude=0.3))
    dm = AudioDataModule(root=".", corpus=LabelledFolder(str(tmp_path / "words")), split="random", val_fraction=0.25,
                         test_fraction=0.25, features=FEATURES, batch_size=4, num_workers=1,
                         cache_dir=str(tmp_path / "cache"))
    dm.prepare_data()
    dm.setup("fit")
    assert dm.train_dataloader().num_workers == 1 and dm.train_dataloader().persistent_workers
    for loader, part in ((dm.val_dataloader(), dm.split.val), (dm.test_dataloader(), dm.split.test)):
        assert loader.num_workers == 0
        features, targets = (torch.cat(parts) for parts in zip(*loader))
        assert features.shape == (len(part), 1, 32, 40) and len(targets) == len(part)
