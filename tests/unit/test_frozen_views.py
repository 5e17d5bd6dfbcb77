"""frozen_views: a frozen network part's features of augmented views computed once per fit
(SpokenWordTask.frozen_views, AudioDataModule.embed_with, EmbeddedViews)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from spokenword.data.corpora import LabelledFolder
from spokenword.data.datamodule import AudioDataModule, EmbeddedViews
from spokenword.data.feature_augment import FeatureAugment
from spokenword.data.wave_augment import WaveAugment
from spokenword.frontend.settings import FeatureSettings
from spokenword.models import SpectrogramCNN, SpeechEmbeddingCNN
from spokenword.training.task import SpokenWordTask
from tests.conftest import tone, write_wav

FEATURES = FeatureSettings(kind="logmel", n_fft=256, hop_length=80, n_bins=32, n_frames=80, time_axis="fixed",
                           f_min=60.0, f_max=3800.0, top_db=80.0)
FREQS = {"low": 300.0, "high": 1500.0}
CLIPS = 12  # per word


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for word, freq in FREQS.items():
        for i in range(CLIPS):
            write_wav(tmp_path / "words" / word / f"s{i}_nohash_0.wav", tone(0.5, freq=freq * (1 + 0.02 * i), amplitude=0.3))
    return tmp_path / "words"


def _datamodule(folder: Path, tmp_path: Path, **kwargs) -> AudioDataModule:
    return AudioDataModule(root=".", corpus=LabelledFolder(str(folder)), split="random", val_fraction=0.25,
                           test_fraction=0.25, features=FEATURES, batch_size=4, cache_dir=str(tmp_path / "cache"),
                           **kwargs)


def _task(views: int, net=None) -> SpokenWordTask:
    torch.manual_seed(0)
    net = net or SpeechEmbeddingCNN(num_classes=2, input_size=(32, 80), dropout=0.0)  # pretrained: a random backbone maps every clip alike
    return SpokenWordTask(net=net, labels=sorted(FREQS), features=FEATURES, frozen_views=views,
                          augment=FeatureAugment(freq_warp=0.1, freq_masks=1, freq_mask_bins=4))


def _trainer(epochs: int) -> L.Trainer:
    return L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, num_sanity_val_steps=0)


def test_each_visit_draws_one_of_the_clips_views():
    views = torch.stack([torch.tensor([[i, v] for i in range(5)], dtype=torch.float32) for v in range(3)])  # (3, 5, 2)
    data = EmbeddedViews(views, torch.arange(5) % 2)
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):
        x, y = data.__getitems__([4, 1])
        assert x[:, 0].tolist() == [4.0, 1.0] and y.tolist() == [0, 1]
        seen.update(x[:, 1].tolist())
    assert seen == {0.0, 1.0, 2.0}
    assert len(data) == 5 and data[2][0][0] == 2.0


def test_a_fit_runs_the_frozen_part_once_per_view_and_trains_the_head_on_it(folder: Path, tmp_path: Path):
    """3 views of every training clip and one of every validation clip, once for the whole fit (4 epochs);
    the head learns, the backbone does not; test runs the whole network on the images."""
    dm = _datamodule(folder, tmp_path)
    task = _task(views=3)
    clips = []
    task.net.backbone.register_forward_hook(lambda module, args, out: clips.append(len(args[0])))
    head_before = {k: v.clone() for k, v in task.net.head.state_dict().items()}
    backbone_before = {k: v.clone() for k, v in task.net.backbone.state_dict().items()}
    trainer = _trainer(epochs=4)
    trainer.fit(task, datamodule=dm)
    train, val = len(dm.split.train), len(dm.split.val)
    assert sum(clips) == 3 * train + val
    assert all(not torch.equal(v, head_before[k]) for k, v in task.net.head.state_dict().items() if v.is_floating_point())
    assert all(torch.equal(v, backbone_before[k]) for k, v in task.net.backbone.state_dict().items())
    assert trainer.global_step == 4 * -(-train // 4)
    trainer.test(task, datamodule=dm, verbose=False)
    assert sum(clips) == 3 * train + val + len(dm.split.test)  # the test images went through the backbone
    assert task.test_results is not None


def test_validation_vectors_give_the_whole_networks_logits(folder: Path, tmp_path: Path):
    dm = _datamodule(folder, tmp_path)
    task = _task(views=2)
    _trainer(epochs=1).fit(task, datamodule=dm)
    task.eval()
    vectors, _ = dm.val_dataloader().dataset.__getitems__(list(range(len(dm.split.val))))
    images, _ = dm.dataset("val").__getitems__(list(range(len(dm.split.val))))
    with torch.no_grad():
        torch.testing.assert_close(task._logits(vectors), task(images), atol=1e-4, rtol=1e-4)


def test_training_views_are_augmented_and_differ(folder: Path, tmp_path: Path):
    dm = _datamodule(folder, tmp_path)
    task = _task(views=2)
    _trainer(epochs=1).fit(task, datamodule=dm)
    views = dm.train_dataloader().dataset.views
    assert views.shape == (2, len(dm.split.train), 192)
    assert (views[0] - views[1]).abs().mean() > 0.1  # the backbone's embeddings reach ~50


def test_frozen_views_need_a_frozen_part_and_a_count_of_0_or_more():
    with pytest.raises(ValueError, match="frozen forward_features and a head.*SpectrogramCNN"):
        _task(views=2, net=SpectrogramCNN(num_classes=2, input_size=(32, 80)))
    with pytest.raises(ValueError, match="frozen forward_features"):
        _task(views=2, net=SpeechEmbeddingCNN(num_classes=2, pretrained="none", input_size=(32, 80), freeze=False))
    with pytest.raises(ValueError, match="0 \\(off\\) or more"):
        _task(views=-1)


def test_with_wave_augment_each_view_comes_from_freshly_perturbed_waveforms(folder: Path, tmp_path: Path):
    """data.wave_augment: every view is decoded, perturbed (here: white noise at 0 dB on every clip) and
    featurised afresh before the frozen part reads it; validation stays clean."""
    plain, noisy = _datamodule(folder, tmp_path), _datamodule(
        folder, tmp_path, wave_augment=WaveAugment(noise_p=1.0, snr_db=(0.0, 0.0), noise_kinds=["white"]))
    for dm in (plain, noisy):
        L.seed_everything(0)
        _trainer(epochs=1).fit(_task(views=2), datamodule=dm)
    quiet, loud = (dm.train_dataloader().dataset.views for dm in (plain, noisy))
    assert loud.shape == quiet.shape == (2, len(plain.split.train), 192)
    assert (loud - quiet).abs().mean() > 1.5 * (quiet[0] - quiet[1]).abs().mean() > 0  # the noise moves them beyond the feature augmentation
    torch.testing.assert_close(noisy.val_dataloader().dataset.views, plain.val_dataloader().dataset.views)


def test_a_resumed_fit_computes_the_same_views_and_ends_as_the_uninterrupted_one(folder: Path, tmp_path: Path):
    """The views come from their own random stream, seeded by the run's seed, so the global generators
    restored from the checkpoint (RngState) do not change them."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from spokenword.training.checkpointing import RngState

    def fit(epochs: int, out: Path, ckpt_path: str | None = None) -> dict[str, torch.Tensor]:
        L.seed_everything(0)
        task = _task(views=2)
        trainer = L.Trainer(max_epochs=epochs, logger=False, enable_progress_bar=False, enable_model_summary=False,
                            num_sanity_val_steps=0, deterministic=True, default_root_dir=out,
                            callbacks=[RngState(), ModelCheckpoint(dirpath=out, save_last=True)])
        trainer.fit(task, datamodule=_datamodule(folder, tmp_path), ckpt_path=ckpt_path, weights_only=False)  # our own file
        return {k: v.clone() for k, v in task.net.head.state_dict().items()}

    straight = fit(4, tmp_path / "straight")
    fit(2, tmp_path / "stopped")
    resumed = fit(4, tmp_path / "stopped", ckpt_path=str(tmp_path / "stopped" / "last.ckpt"))
    assert straight.keys() == resumed.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], atol=0, rtol=0, msg=key)


def test_a_run_limited_to_fewer_batches_embeds_only_the_clips_they_hold(folder: Path, tmp_path: Path):
    """12 training clips in batches of 4 and 6 validation clips in batches of 2: limited to one batch of each,
    the frozen part sees 3 views of 4 training clips and 2 validation clips, and every epoch trains on those 4."""
    dm = _datamodule(folder, tmp_path, eval_batch_size=2)
    task = _task(views=3)
    clips = []
    task.net.backbone.register_forward_hook(lambda module, args, out: clips.append(len(args[0])))
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_train_batches=1, limit_val_batches=1)
    trainer.fit(task, datamodule=dm)
    assert (len(dm.split.train), len(dm.split.val)) == (12, 6)
    assert sum(clips) == 3 * 4 + 2
    train = dm.train_dataloader().dataset
    assert len(train) == 4 and train.views.shape[:2] == (3, 4) and trainer.num_training_batches == 1
    assert len(dm.val_dataloader().dataset) == 2


def test_a_fraction_of_the_batches_still_embeds_every_clip(folder: Path, tmp_path: Path):
    """Lightning cuts the loader it is given by a fractional limit, so the views are not cut as well."""
    dm = _datamodule(folder, tmp_path)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_train_batches=0.5)
    trainer.fit(_task(views=2), datamodule=dm)
    assert len(dm.train_dataloader().dataset) == 12 and trainer.num_training_batches == 1


def test_a_limit_that_reaches_every_batch_embeds_every_clip_in_the_same_views(folder: Path, tmp_path: Path):
    """A limit above the part's batches is no limit: the same views as an unlimited fit, bit for bit."""
    views = []
    for limit in (1.0, 10):
        dm = _datamodule(folder, tmp_path / str(limit))
        torch.manual_seed(0)
        L.seed_everything(0)
        trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, num_sanity_val_steps=0, limit_train_batches=limit)
        trainer.fit(_task(views=2), datamodule=dm)
        views.append(dm.train_dataloader().dataset.views)
    assert views[0].shape[:2] == (2, 12) and torch.equal(views[0], views[1])
