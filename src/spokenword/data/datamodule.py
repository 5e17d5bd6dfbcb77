"""The data module: a corpus, a deterministic split (:mod:`spokenword.data.splits`), cached features and
normalisation statistics.

Any folder with one sub-folder per word trains with ``corpus:``
:class:`~spokenword.data.corpora.LabelledFolder` and ``split: random`` (``val_fraction``,
``test_fraction``, ``split_seed``; ``configs/custom_words.yaml``); label names are the folder names and
every recording is resampled to ``sample_rate``.

Features are computed once (in ``prepare_data``, so once per node under DDP) and cached on disk
(see :mod:`spokenword.data.cache`), never per epoch. Batches are read from the cache file on demand
(:class:`CachedFeatures`), so the process's memory stays flat as the corpus grows; ``cache_dtype:
float16`` halves the cache. Normalisation statistics (mean and std of the training features) are
computed on the training split only, streaming over the cache, and handed to the model, which
stores them in its checkpoint. A model whose first part is frozen can have that part's outputs served
instead, computed once per fit (:meth:`AudioDataModule.embed_with`; ``SpokenWordTask``'s ``frozen_views``).

Under distributed training (``trainer.strategy: ddp``) Lightning gives each process a
``DistributedSampler`` for training; validation and test use :class:`UnpaddedDistributedSampler`,
which splits the recordings across processes without the padding a ``DistributedSampler`` adds, so
every recording is evaluated exactly once and the synced metrics equal single-process ones.
"""

from __future__ import annotations

import warnings
from functools import cached_property
from pathlib import Path
from typing import Callable, Literal

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from spokenword import audio
from spokenword.data.cache import CACHE_DTYPES, FeatureCache, FeatureRows
from spokenword.data.corpora import FSDD, Corpus, DatasetError, Recording
from spokenword.data.splits import Split, SplitName, check_fractions, make_split, resolve_cache_dir, resolve_root
from spokenword.frontend.settings import FeatureSettings
from spokenword.frontend.graph import featurize, shift_frames
from spokenword.frontend.host import host_steps, random_window, trim
from spokenword.data.wave_augment import WaveAugment

# validation and test run without workers on purpose (AudioDataModule._eval_dataloader)
warnings.filterwarnings("ignore", message="The '(val|test)_dataloader' does not have many workers")


class _Batches(Dataset):
    """A dataset that makes whole batches: ``__getitems__`` (which the DataLoader calls with a batch's
    indices) returns ``(inputs (N, ...), label index (N,))``; one item is a batch of one. Use
    :func:`whole_batch` as the DataLoader's ``collate_fn``."""

    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(part[0] for part in self.__getitems__([index]))

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError


class CachedFeatures(_Batches):
    """``(features (N, 1, H, W) float32, label index (N,))`` batches read from a cache entry."""

    def __init__(self, rows: FeatureRows, targets: torch.Tensor):
        self.rows = rows
        self.targets = targets

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        return torch.from_numpy(self.rows[indices]), self.targets[torch.as_tensor(indices, dtype=torch.long)]


class AugmentedRecordings(_Batches):
    """Training batches made afresh on every visit: each recording is decoded, perturbed by a
    :class:`~spokenword.data.wave_augment.WaveAugment` and passed through the inference front end
    (:mod:`spokenword.frontend`), at a random crop position when ``random_crop``.

    Yields the same ``(features (N, 1, H, W), label index (N,))`` batches as
    :class:`CachedFeatures` (use :func:`whole_batch`). Randomness comes from torch's generator
    (seeded by ``seed_everything``, and per DataLoader worker by torch), so runs are reproducible.

    Args:
        paths: the recordings.
        targets: their label indices ``(N,)``.
        sample_rate: rate the recordings are resampled to (Hz).
        features: the feature settings of the model.
        augment: the waveform perturbations, or ``None`` (clean audio).
        random_crop: place the ``n_frames`` window at a random position (``time_axis: fixed``).
        wave_cache_mb: decoded, resampled recordings are kept in memory up to this many MB per
            process (each DataLoader worker holds its own), so later epochs skip opening and
            decoding the files (a quarter of the cost of an augmented FSDD batch); recordings past
            the budget are read from disk every time. 0 = no cache.
    """

    def __init__(
        self,
        paths: list[Path],
        targets: torch.Tensor,
        sample_rate: int,
        features: FeatureSettings,
        augment: WaveAugment | None,
        random_crop: bool,
        wave_cache_mb: float = 512.0,
    ):
        self.paths = paths
        self.targets = targets
        self.sample_rate = sample_rate
        self.features = features
        self.augment = augment
        self.random_crop = random_crop
        self.wave_cache_mb = wave_cache_mb
        self._waves: dict[int, np.ndarray] = {}
        self._cached_bytes = 0

    def _wave(self, index: int) -> np.ndarray:
        """Recording ``index`` as float32 ``(T,)`` at ``sample_rate`` Hz: a fresh copy the caller may change."""
        cached = self._waves.get(index)
        if cached is not None:
            return cached.copy()
        try:
            wave = audio.load(self.paths[index], self.sample_rate)
        except audio.AudioError as err:
            raise DatasetError(str(err)) from None
        if self._cached_bytes + wave.nbytes <= self.wave_cache_mb * 2**20:
            self._waves[index] = wave.copy()
            self._cached_bytes += wave.nbytes
        return wave

    def _example(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """Recording ``index`` perturbed and through the host steps: ``(T',)`` samples and the column
        shift of its image (:func:`~spokenword.frontend.host.random_window`)."""
        wave = self._wave(index)
        if self.augment is not None:
            others = lambda n: [self._wave(int(i)) for i in rng.choice(len(self.paths), n, replace=False)]  # noqa: E731
            wave = self.augment(wave, self.sample_rate, rng, talkers=others)
        if not self.random_crop:
            return host_steps(wave, self.features), 0
        return random_window(trim(wave, self.features), self.features, float(rng.random()))

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        waves, shifts = zip(*(self._example(int(i), rng) for i in indices))
        x = shift_frames(featurize(waves, self.sample_rate, self.features), shifts)  # the front end once per batch
        return x, self.targets[torch.as_tensor(indices, dtype=torch.long)]


class EmbeddedViews(_Batches):
    """``(vector (N, D), label index (N,))`` batches of a frozen network part's outputs, computed once:
    ``views`` ``(V, clips, D)``, ``V`` per clip; each visit of a clip draws one of its views at random
    (torch's generator: seeded by ``seed_everything``, per worker by the DataLoader)."""

    def __init__(self, views: torch.Tensor, targets: torch.Tensor):
        self.views = views
        self.targets = targets

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        rows = torch.as_tensor(indices, dtype=torch.long)
        view = torch.randint(0, self.views.shape[0], (len(rows),))
        return self.views[view, rows], self.targets[rows]


#: ``embed(images (N, 1, H, W), augmented) -> (N, D)``: a frozen network part, as the model hands it over
#: (:meth:`AudioDataModule.embed_with`)
Embed = Callable[[torch.Tensor, bool], torch.Tensor]


def whole_batch(batch):
    """Collate for the datasets here: their ``__getitems__`` already returns the stacked batch."""
    return batch


class UnpaddedDistributedSampler(DistributedSampler):
    """Evaluation sampler under DDP: rank ``r`` of ``w`` takes indices ``r, r + w, ...``, no padding
    and no duplicates, so ranks may get one sample fewer than others (fine for evaluation, where no
    gradients are synchronised; torchmetrics sync the counts exactly)."""

    def __init__(self, dataset: Dataset, num_replicas: int | None = None, rank: int | None = None):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        self.num_samples = len(range(self.rank, len(dataset), self.num_replicas))
        self.total_size = len(dataset)

    def __iter__(self):
        return iter(range(self.rank, len(self.dataset), self.num_replicas))


class AudioDataModule(L.LightningDataModule):
    """Labelled recordings to batches of ``(features (N, 1, n_bins, n_frames), label index (N,))``.

    Args:
        root: data root (``<root>/fsdd/recordings`` for FSDD); default ``$SPOKENWORD_DATA`` or ``./data``.
        corpus: which recordings; default :class:`~spokenword.data.corpora.FSDD`.
        split: ``official``, ``reference``, ``speakers``, ``corpus`` or ``random`` (see
            :mod:`spokenword.data.splits`).
        test_speakers: speakers held out as test for ``split: speakers``.
        val_speakers: speakers used for validation for ``split: speakers`` (default: takes 5-9).
        val_fraction: share of each label's clips held out for validation by ``split: random``; 0:
            none, validation then runs on the training clips (Lightning's checkpointing needs a
            validation score) and the report's protocol says so.
        test_fraction: share of each label's clips held out for test by ``split: random``; 0: none,
            the run is then tested on the validation part (the protocol says so).
        split_seed: the seed of ``split: random`` (the same seed, the same split).
        sample_rate: every recording is resampled to this rate (Hz).
        features: feature settings (stored in the checkpoint through the model).
        batch_size: training batch size.
        eval_batch_size: validation/test batch size.
        num_workers: training DataLoader workers (batches are read from the feature cache; 0 is usually
            fastest). Validation and test read cached features in the training process: a worker there
            would only be started again every epoch.
        cache_dir: feature cache folder; default ``$SPOKENWORD_CACHE`` or ``./.cache/spokenword``.
        cache_dtype: ``float32`` or ``float16`` (half the disk and page cache; batches are float32).
        wave_augment: perturbations of the training waveforms (noise, speed, reverberation, ...;
            see :mod:`spokenword.data.wave_augment`). With it (or ``random_crop``) training batches are
            decoded and featurised afresh every epoch (:class:`AugmentedRecordings`; set
            ``num_workers: 1`` or more to overlap that with training); validation and test always
            use the cached clean features.
        random_crop: place each training clip at a random position in the ``n_frames`` window
            (``features.time_axis: fixed``) instead of centring it.
    """

    def __init__(
        self,
        root: str | None = None,
        corpus: Corpus | None = None,
        split: SplitName = "official",
        test_speakers: list[str] | None = None,
        val_speakers: list[str] | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        sample_rate: int = 8000,
        features: FeatureSettings = FeatureSettings(),
        batch_size: int = 256,
        eval_batch_size: int = 512,
        num_workers: int = 0,
        cache_dir: str | None = None,
        cache_dtype: Literal["float32", "float16"] = "float32",
        wave_augment: WaveAugment | None = None,
        random_crop: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["corpus", "features", "wave_augment"])  # features travel with the model
        self.root = resolve_root(root)
        self.corpus = corpus or FSDD()
        self.split_name = split
        self.test_speakers = test_speakers
        self.val_speakers = val_speakers
        check_fractions(val_fraction, test_fraction)  # a ValueError: a usage message before any data is read
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.sample_rate = sample_rate
        self.features = features
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        if cache_dtype not in CACHE_DTYPES:
            raise ValueError(f"cache_dtype {cache_dtype!r} not supported; expected one of {CACHE_DTYPES}")
        self.cache_dtype = cache_dtype
        self.wave_augment = wave_augment.bind(self.root) if wave_augment is not None else None  # noise_dir from the data root
        self.random_crop = random_crop
        self.cache = FeatureCache(resolve_cache_dir(cache_dir))
        self._datasets: dict[str, CachedFeatures] = {}
        self._embed: tuple[Embed, int] | None = None
        self._embedded: dict[str, EmbeddedViews] = {}
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
        return make_split(self.recordings, self.split_name, self.test_speakers, self.val_speakers,
                          val_fraction=self.val_fraction, test_fraction=self.test_fraction, seed=self.split_seed)

    # -- Lightning hooks -----------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Fetch the corpus if it can be, and fill the feature cache (one process per node)."""
        self.corpus.prepare(self.root)
        fn = self.trainer.state.fn if self.trainer is not None else None
        wanted = {"validate": ("val",), "test": ("test",), "predict": ("test",)}.get(str(getattr(fn, "value", "")), ("train", "val", "test"))
        with self.cache.shared_workers():  # one set of extraction processes for all the parts
            for part in wanted:
                records = getattr(self.split, part)
                if records:
                    self._features(part, records)

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        parts = wanted.get(stage or "", ("train", "val", "test"))
        if stage == "fit" or "train" in parts:
            parts = tuple(dict.fromkeys(parts + ("train",)))
        for part in parts:
            self.dataset(part)
        if "train" in self._datasets and self.feature_mean is None:
            self.feature_mean, self.feature_std = self._datasets["train"].rows.mean_std()

    def _features(self, part: str, records: list[Recording]) -> np.memmap:
        paths = [r.path for r in records]
        return self.cache.features(paths, self.sample_rate, self.features, desc=part, dtype=self.cache_dtype)

    def _load(self, part: str) -> CachedFeatures:
        records: list[Recording] = getattr(self.split, part)
        if not records:
            raise DatasetError(f"the {part} part of split {self.split_name!r} is empty")
        index = {label: i for i, label in enumerate(self.labels)}
        y = torch.tensor([index[r.label] for r in records], dtype=torch.long)
        return CachedFeatures(FeatureRows(self._features(part, records)), y)

    def dataset(self, part: str) -> CachedFeatures:
        """The dataset of one part (``train``, ``val`` or ``test``), reading the cache on demand."""
        if part not in self._datasets:
            self._datasets[part] = self._load(part)
        return self._datasets[part]

    @property
    def fresh_training_batches(self) -> bool:
        """Whether training batches are made afresh each epoch (:class:`AugmentedRecordings`)."""
        return self.wave_augment is not None or self.random_crop

    def embed_with(self, embed: Embed, views: int) -> None:
        """Serve training and validation batches as ``embed``'s outputs, computed once when their
        DataLoader is first asked for: ``views`` augmented views of each training clip (with
        ``wave_augment`` or ``random_crop``, each from freshly perturbed waveforms), one plain view of each
        validation clip. A model whose first part is frozen calls this (``SpokenWordTask``'s
        ``frozen_views``): that part then runs ``views`` times per clip instead of once per epoch.

        A run limited to fewer batches than a part has (an int ``trainer.limit_train_batches`` or
        ``limit_val_batches``, as a smoke test sets them) embeds only the clips those batches hold: a seeded
        draw of that many training clips, which every epoch then trains on, and the first validation clips
        (validation is not shuffled)."""
        if views < 1:
            raise ValueError(f"frozen_views must be 1 or more, got {views}")
        self._embed = (embed, views)
        self._embedded.clear()

    def _embedded_part(self, part: str) -> EmbeddedViews:
        if part not in self._embedded:
            assert self._embed is not None
            embed, per_clip = self._embed
            data = self.dataset(part)
            train = part == "train"
            count = per_clip if train else 1
            fresh = self._fresh_recordings(data) if train and self.fresh_training_batches else None
            clips = self._clips_reached(part, len(data))
            whole = len(clips) == len(data)
            rank_zero_info(f"embedding {count} view(s) of "
                           + (f"the {len(data)}" if whole else f"{len(clips)} of the {len(data)} (a limited run)")
                           + f" {part} clips through the frozen network part")
            batches = [clips[start:start + self.eval_batch_size].tolist()
                       for start in range(0, len(clips), self.eval_batch_size)]
            with torch.random.fork_rng(devices=[]):
                # the views' own random stream, from the run's seed: a resumed run (its generators restored
                # from the checkpoint) computes the same views
                torch.manual_seed(torch.initial_seed())
                views = [torch.cat([embed(fresh.__getitems__(rows)[0] if fresh is not None
                                          else torch.from_numpy(data.rows[rows]), train).cpu() for rows in batches])
                         for _ in range(count)]
            self._embedded[part] = EmbeddedViews(torch.stack(views), data.targets[clips])
        return self._embedded[part]

    def _clips_reached(self, part: str, clips: int) -> torch.Tensor:
        """The indices of a part's clips that the trainer's batch limit lets a run reach: all of them,
        or, when an int ``limit_{part}_batches`` cuts the part short, a seeded draw (training) or the first ones
        (validation), as many as the allowed batches hold."""
        everything = torch.arange(clips)
        limit = getattr(self.trainer, f"limit_{part}_batches", 1.0) if self.trainer is not None else 1.0
        batch = self.batch_size if part == "train" else self.eval_batch_size
        total = -(-clips // batch)
        # an int limit only: Lightning applies a fraction (a float) to the loader it is given, so a loader
        # already cut to that fraction would be cut again
        if not isinstance(limit, int) or not 0 < limit < total:  # 0: Lightning skips the part altogether
            return everything
        if part != "train":
            return everything[:limit * batch]
        draw = torch.Generator().manual_seed(torch.initial_seed())
        return torch.randperm(clips, generator=draw)[:limit * batch].sort().values

    def _fresh_recordings(self, data: CachedFeatures) -> AugmentedRecordings:
        if self.wave_augment is not None and "file" in self.wave_augment.noise_kinds:
            self.wave_augment.noise_files()  # missing recordings fail here, before training starts
        return AugmentedRecordings([r.path for r in self.split.train], data.targets, self.sample_rate, self.features,
                                   self.wave_augment, self.random_crop)

    def train_dataloader(self) -> DataLoader:
        data: Dataset = self.dataset("train")
        if self._embed is not None:
            data = self._embedded_part("train")
        elif self.fresh_training_batches:
            data = self._fresh_recordings(data)
        return DataLoader(
            data, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers,
            collate_fn=whole_batch, drop_last=False, persistent_workers=self.num_workers > 0,
        )

    def _eval_dataloader(self, part: str) -> DataLoader:
        data = self._embedded_part(part) if self._embed is not None and part == "val" else self.dataset(part)
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        sampler = UnpaddedDistributedSampler(data) if distributed else None
        # no worker: the features are in memory or the page cache, and a non-persistent worker started afresh
        # for every validation cost the default CNN's fit about 0.2 s an epoch (docs/training.md, "Speed on CPU")
        return DataLoader(data, batch_size=self.eval_batch_size, sampler=sampler, num_workers=0, collate_fn=whole_batch)

    def val_dataloader(self) -> DataLoader:
        return self._eval_dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_dataloader("test")
