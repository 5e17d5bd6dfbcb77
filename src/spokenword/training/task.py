"""The LightningModule: a network, its loss, metrics, optimiser and the inference contract.

The module's hyper-parameters (label names, sample rate, feature settings) and its buffers
(normalisation mean and std of the training features) are saved in every checkpoint, so
:class:`spokenword.inference.checkpoint.Classifier` rebuilds exactly the preprocessing used in training.
"""

from __future__ import annotations

import warnings
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from spokenword.data.feature_augment import FeatureAugment
from spokenword.frontend.settings import FeatureSettings
from spokenword.models import SpectrogramCNN
from spokenword.training.metrics import ACC, LOSS

# LightningCLI stores ``net`` as its config (class_path/init_args), so keeping it in the
# hyper-parameters is what makes ``load_from_checkpoint`` rebuild it.
warnings.filterwarnings("ignore", message="Attribute '(net|augment)' is an instance of `nn.Module`")

#: clips per forward pass of frozen_views' frozen part
FROZEN_CHUNK = 32


def _adam(params) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1e-3)


class SpokenWordTask(L.LightningModule):
    """Classification of feature images into ``labels``.

    Args:
        net: the network, ``(N, 1, H, W) -> (N, len(labels))`` logits.
        labels: class names in output order (linked from the data module).
        sample_rate: rate the model expects (Hz), linked from the data module.
        features: feature settings, linked from the data module.
        optimizer: optimiser factory (default Adam, lr 1e-3).
        lr_scheduler: scheduler factory, or ``None``. A ``total_steps`` left unset (OneCycleLR) is
            the run's length (see :meth:`_scheduler`).
        scheduler_interval: step the scheduler every ``epoch`` or every ``step``.
        label_smoothing: cross-entropy label smoothing.
        augment: feature-batch augmentation applied to training batches only (see
            :mod:`spokenword.data.feature_augment`), or ``None``.
        frozen_views: for a net whose ``forward_features`` is frozen and whose ``head`` alone trains
            (:class:`~spokenword.models.SpeechEmbeddingCNN`): its features of this many augmented views of
            each training clip are computed once before the first epoch, and every step trains the head on
            one view per clip, drawn at random (:meth:`AudioDataModule.embed_with
            <spokenword.data.datamodule.AudioDataModule.embed_with>`), instead of running the frozen part
            on a fresh augmentation every step; validation reads its clips' features, computed once.
            0: off (the frozen part runs every step).
    """

    def __init__(
        self,
        net: nn.Module | None = None,
        labels: list[str] | None = None,
        sample_rate: int = 8000,
        features: FeatureSettings = FeatureSettings(),
        optimizer: OptimizerCallable = _adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["epoch", "step"] = "epoch",
        label_smoothing: float = 0.0,
        augment: FeatureAugment | None = None,
        frozen_views: int = 0,
    ):
        super().__init__()
        if isinstance(features, dict):  # as stored in a checkpoint's hyper-parameters
            features = FeatureSettings.from_dict(features)
        self.save_hyperparameters()
        self.hparams["features"] = features.to_dict()  # plain values: checkpoints load with weights_only
        self.labels = list(labels) if labels is not None else [str(i) for i in range(10)]
        self.net = net if net is not None else SpectrogramCNN(num_classes=len(self.labels))
        self.sample_rate = sample_rate
        self.features = features
        self.optimizer_factory = optimizer
        self.scheduler_factory = lr_scheduler
        self.scheduler_interval = scheduler_interval
        self.label_smoothing = label_smoothing
        self.augment = augment
        if frozen_views < 0:
            raise ValueError(f"frozen_views must be 0 (off) or more, got {frozen_views}")
        if frozen_views and not (getattr(self.net, "freeze", False) and hasattr(self.net, "head")
                                 and hasattr(self.net, "forward_features")):
            raise ValueError(f"frozen_views needs a net with a frozen forward_features and a head "
                             f"(SpeechEmbeddingCNN with freeze: true), not {type(self.net).__name__}: set it to 0")
        self.frozen_views = frozen_views
        self.register_buffer("feature_mean", torch.tensor(0.0))
        self.register_buffer("feature_std", torch.tensor(1.0))
        n = len(self.labels)
        self.train_acc = MulticlassAccuracy(n, average="micro")
        self.val_acc = MulticlassAccuracy(n, average="micro")
        self.test_metrics = MetricCollection(
            {
                ACC: MulticlassAccuracy(n, average="micro"),
                "precision": MulticlassPrecision(n, average=None),
                "recall": MulticlassRecall(n, average=None),
                "f1": MulticlassF1Score(n, average=None),
                "confusion": MulticlassConfusionMatrix(n),
            }
        )
        self.test_results: dict | None = None

    # -- inference -----------------------------------------------------------------------------
    def set_normalization(self, mean: float, std: float) -> None:
        """Store the training features' mean and std (applied in :meth:`forward`)."""
        self.feature_mean.fill_(float(mean))
        self.feature_std.fill_(max(float(std), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Un-normalised features ``(N, 1, H, W)`` to logits ``(N, num_classes)``."""
        return self.net((x - self.feature_mean) / self.feature_std)

    # -- training ------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if stage == "fit" and dm is not None and getattr(dm, "feature_mean", None) is not None:
            self.set_normalization(dm.feature_mean, dm.feature_std)
        if stage == "fit" and self.frozen_views:
            if dm is None or not hasattr(dm, "embed_with"):
                raise ValueError("frozen_views needs spokenword's AudioDataModule (it computes the views): set it to 0")
            dm.embed_with(self._frozen_features, self.frozen_views)

    def _frozen_features(self, x: torch.Tensor, augmented: bool) -> torch.Tensor:
        """The frozen part's features ``(N, D)`` of un-normalised feature images ``(N, 1, H, W)`` (on the CPU),
        augmented as a training batch is when ``augmented``."""
        if augmented and self.augment is not None:
            x = self.augment(x)
        x = (x.to(self.device) - self.feature_mean) / self.feature_std
        with torch.no_grad():  # not inference_mode: the head's training saves these for backward
            # chunks of FROZEN_CHUNK: on a CPU the backbone runs about twice as fast per clip as in chunks of 512
            # (python -m benchmarks.speed model), its activations staying in cache
            return torch.cat([self.net.forward_features(part) for part in x.split(FROZEN_CHUNK)])

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        # (N, D) vectors are the frozen part's features (frozen_views); (N, 1, H, W) images go the whole way
        return self.net.head(x) if x.dim() == 2 else self(x)

    def _step(self, batch, stage: str):
        x, y = batch
        logits = self._logits(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing if stage == "train" else 0.0)
        return logits, y, loss

    def training_step(self, batch, batch_idx):
        x, y = batch
        if self.augment is not None and x.dim() == 4:  # frozen_views' vectors were augmented as images
            x = self.augment(x)
        logits, y, loss = self._step((x, y), "train")
        self.train_acc(logits, y)
        self.log(f"train/{LOSS}", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log(f"train/{ACC}", self.train_acc, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch, batch_idx):
        logits, y, loss = self._step(batch, "val")
        self.val_acc(logits, y)
        self.log(f"val/{LOSS}", loss, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log(f"val/{ACC}", self.val_acc, on_epoch=True, prog_bar=True, batch_size=len(y))

    def on_test_epoch_start(self) -> None:
        self.test_results = None
        self.test_metrics.reset()

    def test_step(self, batch, batch_idx):
        logits, y, loss = self._step(batch, "test")
        self.test_metrics.update(logits, y)
        self.log(f"test/{LOSS}", loss, on_epoch=True, batch_size=len(y), sync_dist=True)

    def on_test_epoch_end(self) -> None:
        values = self.test_metrics.compute()
        self.log(f"test/{ACC}", values[ACC], sync_dist=True)  # already synced by torchmetrics: a no-op mean
        self.test_results = {name: value.detach().cpu() for name, value in values.items()}

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self._scheduler(optimizer),
                                                         "interval": self.scheduler_interval}}

    def _scheduler(self, optimizer: torch.optim.Optimizer):
        """The scheduler; one whose length is left open (``total_steps`` unset in the config, as
        OneCycleLR's may be) gets the run's: ``trainer.estimated_stepping_batches`` steps with
        ``scheduler_interval: step`` (epochs x batches per epoch, whatever the split, batch size or
        devices), ``max_epochs`` with ``epoch``."""
        keywords = getattr(self.scheduler_factory, "keywords", {})  # LightningCLI builds a functools.partial
        if "total_steps" in keywords and keywords["total_steps"] is None and keywords.get("epochs") is None:
            if self.scheduler_interval == "step":
                total = self.trainer.estimated_stepping_batches
            else:
                total = self.trainer.max_epochs
            if total is None or total < 1 or total == float("inf"):
                raise ValueError("the scheduler's total_steps is unset and the run has no fixed length "
                                 "(trainer.max_epochs or max_steps): set total_steps in the config")
            return self.scheduler_factory(optimizer, total_steps=int(total))
        return self.scheduler_factory(optimizer)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())
