"""Adapt a trained model to new takes: new words added to its labels, or its words tuned to one voice.

Works on models built on the pretrained speech embedding (:class:`~spokenword.models.SpeechEmbeddingCNN`):
the backbone stays frozen and only the small head learns, from the pooled embeddings
(:meth:`~spokenword.models.SpeechEmbeddingCNN.forward_features`, 192 numbers per clip) of the new takes,
several augmented views of each, mixed half and half with a *rehearsal set*: the pooled embeddings of the
model's own training data, kept beside every adaptable model (``NAME.adapt.npz``, written by
:func:`write_state` for the bundle and for every adapted model), so that the words it knew, and the voices
it learnt them from, are not forgotten. A new word that was one of the model's "other words" (``_unknown_``
examples of that word) takes those examples out of the rehearsal set.

Training on embeddings instead of audio takes seconds. It is a plain loop, not a Lightning ``Trainer``:
there is no validation to run (a take or three per word leave none), no checkpoint to pick and no logger
to feed; the number of steps is fixed beforehand.

The result is a *model folder* (:func:`spokenword.pretrained.read_folder`): ``manifest.json`` and the adapted
model's ONNX export with its metadata, card and ``.adapt.npz`` (so it can be adapted again), plus, for a
source ensemble whose other members know the same words, those members as they were. ``load_model(folder)``,
``spokenword classify|evaluate|serve|transcribe FOLDER`` open it.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F

from spokenword.inference.base import MODEL_FOLDER_MANIFEST, ModelError, model_file
from spokenword.labels import UNKNOWN, is_rejection

__all__ = ["AdaptError", "STATE_SUFFIX", "adapt", "is_adaptable", "read_state", "write_checkpoint_state", "write_state"]

logger = logging.getLogger(__name__)

#: the adaptable state beside a model: ``NAME.adapt.npz`` (head weights, hyper-parameters, rehearsal set)
STATE_SUFFIX = ".adapt.npz"
#: rehearsal vectors kept per label (taken evenly over each label's training clips): enough to anchor the
#: head, small enough to ship in the wheel (about 25 KB per label as float16)
REHEARSAL_PER_LABEL = 64
#: vectors per training step of the head
BATCH = 128
#: the adapted member's file stem in the output folder
ADAPTED = "adapted"

Progress = Callable[[str, float], None]


class AdaptError(ModelError):
    """A source model or folder that cannot be adapted; the message (one line) says why and what to do."""


@dataclass
class _State:
    """What adaptation needs from a source model: the task's hyper-parameters (its checkpoint's), the
    head's weights and the normalisation, and the rehearsal set."""

    hparams: dict
    head: dict[str, torch.Tensor]
    mean: float
    std: float
    embeddings: np.ndarray  # (N, 192) float32
    targets: np.ndarray  # (N,) int64 indices into labels
    origins: np.ndarray  # (N,) str: the word each vector was spoken as (an _unknown_ clip's own word)
    name: str = "model"
    manifest: dict = field(default_factory=dict)
    folder: Path | None = None
    #: the backbone's buffers (its batch norm's statistics): the source's, which its training may have moved
    backbone: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return list(self.hparams["labels"])


# -- the network and its embeddings -------------------------------------------------------------------

def _net(hparams: dict, num_classes: int, backbone: dict[str, torch.Tensor] | None = None):
    """The source's network with ``num_classes`` outputs: the pretrained backbone with the source's own buffers
    (``backbone``), the head freshly initialised."""
    from spokenword.models import SpeechEmbeddingCNN

    net = hparams.get("net") or {}
    if not (isinstance(net, dict) and str(net.get("class_path", "")).endswith("SpeechEmbeddingCNN")):
        raise AdaptError(f"only models on the pretrained speech embedding (SpeechEmbeddingCNN) can be adapted, "
                         f"not {net.get('class_path') if isinstance(net, dict) else type(net).__name__}; "
                         "adapt the bundled model or a run of configs/fsdd_embedding_newvoices.yaml or custom_words.yaml")
    args = {**(net.get("init_args") or {}), "num_classes": num_classes}
    if "input_size" in args:
        args["input_size"] = tuple(args["input_size"])
    model = SpeechEmbeddingCNN(**args).eval()
    if backbone:
        model.backbone.load_state_dict({**model.backbone.state_dict(), **backbone})
    return model


def _features(paths, hparams: dict, mean: float, std: float, log) -> tuple[torch.Tensor, list[int]]:
    """Normalised feature images ``(N, 1, H, W)`` of the clips that decode, and their indices; a clip that
    does not is skipped with one line naming it."""
    from spokenword import audio
    from spokenword.frontend.graph import featurize
    from spokenword.frontend.host import host_steps
    from spokenword.frontend.settings import FeatureSettings

    settings = FeatureSettings.from_dict(hparams["features"])
    rate = int(hparams.get("sample_rate", 8000))
    waves, kept = [], []
    for i, path in enumerate(paths):
        try:
            wave = audio.load(path, rate)
        except audio.AudioError as err:
            log(f"skipped: {err}")
            continue
        waves.append(host_steps(wave, settings))
        kept.append(i)
    images = featurize(waves, rate, settings)
    return (images - mean) / max(std, 1e-6), kept


def _embed(net, images: torch.Tensor, batch: int = 64, progress: Progress | None = None,
           stage: str = "features") -> torch.Tensor:
    """Pooled embeddings ``(N, 192)`` of normalised feature images ``(N, 1, H, W)``."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            out.append(net.forward_features(images[start:start + batch]))
            if progress:
                progress(stage, min(1.0, (start + batch) / max(len(images), 1)))
    return torch.cat(out) if out else torch.empty(0, 192)


def _origins(recordings) -> list[str]:
    """The word each recording was spoken as: its label, or for an ``_unknown_`` clip of the non-digit words
    its own word (the folder it sits in)."""
    return [r.path.parent.name if r.label == UNKNOWN else r.label for r in recordings]


def _evenly(indices: np.ndarray, count: int) -> np.ndarray:
    if len(indices) <= count:
        return indices
    return indices[np.linspace(0, len(indices) - 1, count).round().astype(int)]


def _rehearsal_subset(targets: np.ndarray, origins: np.ndarray, per_label: int) -> np.ndarray:
    """Indices of at most ``per_label`` vectors per label, spread evenly; ``_unknown_`` spread over its words."""
    chosen = []
    for label in np.unique(targets):
        where = np.flatnonzero(targets == label)
        words = sorted(set(origins[where].tolist()))
        if len(words) > 1:  # round-robin over the words, so each keeps some examples
            groups = [list(_evenly(where[origins[where] == w], per_label)) for w in words]
            picked = []
            while len(picked) < per_label and any(groups):
                for g in groups:
                    if g and len(picked) < per_label:
                        picked.append(g.pop(0))
            chosen.extend(sorted(picked))
        else:
            chosen.extend(_evenly(where, per_label).tolist())
    return np.array(sorted(chosen), dtype=np.int64)


# -- reading and writing the adaptable state -----------------------------------------------------------

def _state_from_checkpoint(checkpoint: Path, *, data_root=None, rehearsal: bool = True, log=print,
                           progress: Progress | None = None) -> _State:
    """The state of a training checkpoint; the rehearsal set is embedded from its run's training data
    (the split ``fit`` used; :func:`spokenword.inference.export.training_part`)."""
    from spokenword.inference.checkpoint import load_task, migrate
    from spokenword.inference.export import training_part, training_settings

    task = load_task(checkpoint)
    hparams = migrate(torch.load(checkpoint, map_location="cpu", weights_only=True), checkpoint)["hyper_parameters"]
    hparams = json.loads(json.dumps(hparams, default=str))  # plain values: it travels in an npz as JSON
    net = task.net
    if type(net).__name__ != "SpeechEmbeddingCNN":
        _net(hparams, len(task.labels))  # raises the one-line explanation
    head = {k: v.detach().clone() for k, v in net.head.state_dict().items()}
    mean, std = float(task.feature_mean), float(task.feature_std)
    embeddings, targets, origins = np.zeros((0, 192), np.float32), np.zeros(0, np.int64), np.array([], dtype=str)
    if rehearsal:
        try:
            settings, missing = training_settings(checkpoint)
            if missing:
                log(f"note: {missing}; the rehearsal set is taken from FSDD, the data module's default corpus")
            recordings, corpus, split = training_part(settings, data_root)
            index = {label: i for i, label in enumerate(task.labels)}
            recordings = [r for r in recordings if r.label in index]
            if not recordings:
                raise ValueError(f"none of its labels are in {corpus}")
            all_targets = np.array([index[r.label] for r in recordings], dtype=np.int64)
            all_origins = np.array(_origins(recordings))
            keep = _rehearsal_subset(all_targets, all_origins, REHEARSAL_PER_LABEL)
            log(f"rehearsal set: {len(keep)} clips of the training part of {corpus} (split {split})")
            images, kept = _features([recordings[i].path for i in keep], hparams, mean, std, log)
            embeddings = _embed(net, images, progress=progress, stage="rehearsal").numpy()
            targets, origins = all_targets[keep][kept], all_origins[keep][kept]
        except Exception as err:  # noqa: BLE001 - a corpus that is gone: adapt without rehearsal, and say so
            log(f"warning: {checkpoint}: its training data could not be read ({' '.join(str(err).split())[:160]}); "
                "adapting without a rehearsal set, so words missing from the new takes may be forgotten")
    run = checkpoint.parent.parent  # runs/NAME/version_N/checkpoints/best.ckpt -> NAME
    name = run.parent.name if run.name.startswith("version_") else checkpoint.stem
    buffers = {k: v.detach().clone() for k, v in net.backbone.named_buffers()}
    return _State(hparams, head, mean, std, embeddings.astype(np.float32), targets, origins, name=name,
                  backbone=buffers)


def write_state(path: str | os.PathLike, state: _State) -> Path:
    """Write ``state`` as ``NAME.adapt.npz`` (numpy only, no pickles), atomically."""
    path = Path(path)
    meta = {"format": "spokenword-adapt", "version": 1, "hyper_parameters": state.hparams,
            "mean": state.mean, "std": state.std, "name": state.name}
    arrays = {f"head/{k}": v.detach().cpu().numpy() for k, v in state.head.items()}
    arrays.update({f"backbone/{k}": v.detach().cpu().numpy() for k, v in state.backbone.items()})
    arrays.update(meta=np.array(json.dumps(meta, sort_keys=True)), embeddings=state.embeddings.astype(np.float16),
                  targets=state.targets.astype(np.int16), origins=np.asarray(state.origins, dtype=str))
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".npz")
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make a shipped file unreadable to other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def is_adaptable(checkpoint) -> bool:
    """Whether the checkpoint's network is on the pretrained speech embedding (what :func:`adapt` can adapt)."""
    hparams = torch.load(model_file(checkpoint), map_location="cpu", weights_only=True).get("hyper_parameters") or {}
    net = hparams.get("net")
    return isinstance(net, dict) and str(net.get("class_path", "")).endswith("SpeechEmbeddingCNN")


def write_checkpoint_state(checkpoint, path, *, data_root=None, log=print) -> Path:
    """``NAME.adapt.npz`` of a training checkpoint (the bundle ships it beside the embedding member)."""
    return write_state(path, _state_from_checkpoint(model_file(checkpoint), data_root=data_root, log=log))


def read_state(path: str | os.PathLike) -> _State:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            head = {k[5:]: torch.from_numpy(data[k].copy()) for k in data.files if k.startswith("head/")}
            backbone = {k[9:]: torch.from_numpy(data[k].copy()) for k in data.files if k.startswith("backbone/")}
            embeddings = data["embeddings"].astype(np.float32)
            targets = data["targets"].astype(np.int64)
            origins = data["origins"].astype(str)
    except (OSError, ValueError, KeyError) as err:
        raise AdaptError(f"{path}: not a spokenword adaptable state ({' '.join(str(err).split())[:120]})") from None
    if meta.get("format") != "spokenword-adapt":
        raise AdaptError(f"{path}: not a spokenword adaptable state")
    from spokenword.inference.checkpoint import migrate

    hparams = migrate({"hyper_parameters": meta["hyper_parameters"]}, path)["hyper_parameters"]  # as a checkpoint's
    return _State(hparams, head, float(meta["mean"]), float(meta["std"]), embeddings, targets,
                  origins, name=meta.get("name", path.name[: -len(STATE_SUFFIX)]), backbone=backbone)


def _source_state(source, *, data_root, rehearsal: bool, log, progress) -> _State:
    """The adaptable state of ``source``: the bundled model (``None``), a model folder, or a checkpoint / run."""
    from spokenword import pretrained

    location = pretrained.folder() if source is None else Path(source)
    if location.is_file() and location.name.endswith(STATE_SUFFIX):
        return read_state(location)
    if location.is_dir() and (location / MODEL_FOLDER_MANIFEST).is_file():
        members, manifest = pretrained.read_folder(location)
        adaptable = manifest.get("adaptable") or {}
        if not adaptable:
            raise AdaptError(f"{location}: none of its models can be adapted (its manifest names no {STATE_SUFFIX} "
                             "file); rebuild it with `make model`, or adapt a training run")
        member, state_file = next(iter(adaptable.items()))
        state = read_state(location / state_file)
        state.manifest, state.folder = manifest, location
        return state
    try:
        checkpoint = model_file(location)
    except ModelError as err:
        raise AdaptError(str(err)) from None
    if checkpoint.suffix.lower() == ".onnx":
        raise AdaptError(f"{checkpoint}: an ONNX export cannot be adapted (it has no trainable weights); adapt its "
                         "checkpoint, its training run, or a model folder with an .adapt.npz")
    return _state_from_checkpoint(checkpoint, data_root=data_root, rehearsal=rehearsal, log=log, progress=progress)


# -- adaptation ---------------------------------------------------------------------------------------

def _labels_after(old: list[str], taught: list[str]) -> list[str]:
    """The old labels in their order, then the new words in the folder's order (rejections last, as a
    corpus sorts them)."""
    new = [w for w in taught if w not in old]
    words = [w for w in old if not is_rejection(w)] + [w for w in new if not is_rejection(w)]
    return words + [w for w in old + new if is_rejection(w)]


def _grown_head(head_state: dict, old: list[str], labels: list[str], net) -> None:
    """Load the source head into ``net.head`` (output rows rearranged to ``labels``; new words' rows start
    from the head's initialisation, their bias at the lowest old bias so they begin unlikely)."""
    last = max(int(k.split(".")[0]) for k in head_state if k.endswith("weight") and head_state[k].ndim == 2)
    weight, bias = head_state[f"{last}.weight"], head_state[f"{last}.bias"]
    target = net.head.state_dict()
    new_weight = target[f"{last}.weight"].clone() * 0.1
    new_bias = torch.full_like(target[f"{last}.bias"], float(bias.min()))
    for i, label in enumerate(labels):
        if label in old:
            new_weight[i] = weight[old.index(label)]
            new_bias[i] = bias[old.index(label)]
    state = {**head_state, f"{last}.weight": new_weight, f"{last}.bias": new_bias}
    net.head.load_state_dict(state)


def _scan_folder(folder) -> list:
    from spokenword.data.corpora import DatasetError
    from spokenword.data.corpora.folder import scan

    try:
        recordings = scan(Path(folder))
    except DatasetError as err:
        raise AdaptError(str(err)) from None
    if not recordings:
        raise AdaptError(f"{folder}: no takes found; put each word's recordings in a sub-folder named after it")
    return recordings


def adapt(source: str | os.PathLike | None, folder: str | os.PathLike, out: str | os.PathLike, *,
          steps: int = 300, views: int = 8, lr: float = 1e-3, share: float = 0.5, seed: int = 0, rehearsal: bool = True,
          others: Literal["auto", "drop"] = "auto", data_root=None, progress: Progress | None = None,
          log: Callable[[str], None] = print) -> Path:
    """Adapt ``source`` to the takes in ``folder`` and write the result to the model folder ``out``.

    Args:
        source: ``None`` (the bundled model), a model folder (an earlier ``adapt``'s output), a training run's
            folder or a ``.ckpt`` checkpoint of a model on the pretrained speech embedding, or an ``.adapt.npz``
            state (:func:`write_checkpoint_state`: a checkpoint's rehearsal set embedded once, for repeated use).
        folder: a labelled folder (one sub-folder per word, or a ``labels.csv`` manifest; see
            :func:`spokenword.data.corpora.folder.scan`). Its words join the source's labels; words the source
            already knows are tuned to these takes (e.g. one speaker's digits).
        out: the model folder to write; staged beside it and renamed into place.
        steps: training steps of the head, each on a batch of 128 vectors: views of the new takes and
            rehearsal vectors.
        share: the new takes' part of each batch (the rest: rehearsal vectors).
        views: views per take: the clean one and ``views - 1`` perturbed by the source's feature augmentation
            (frequency warp and masks, the training recipe's).
        lr: AdamW learning rate (cosine decay to 0 over ``steps``).
        seed: the seed of the augmentation, the new words' initial weights and the batches.
        rehearsal: mix in the source's rehearsal set (``False``: only the new takes; for measurement).
        others: ``auto``: a source ensemble's other members stay in the new model folder when they know
            exactly the adapted model's words; ``drop``: the adapted model alone.
        progress: ``progress(stage, fraction)`` for stages ``features``, ``rehearsal`` (a checkpoint source),
            ``training``, ``export`` and ``done``.

    Returns ``out``. Raises :class:`AdaptError` (one line) for a source or folder that cannot be used; a take
    that does not decode is skipped with a line naming it.
    """
    from spokenword.data.feature_augment import FeatureAugment

    report = progress or (lambda stage, fraction: None)
    out = Path(out)
    recordings = _scan_folder(folder)
    state = _source_state(source, data_root=data_root, rehearsal=rehearsal, log=log, progress=progress)
    old = state.labels
    taught = list(dict.fromkeys(r.label for r in recordings))
    labels = _labels_after(old, taught)
    index = {label: i for i, label in enumerate(labels)}

    with torch.random.fork_rng():
        torch.manual_seed(seed)  # the new words' first weights come from the head's initialisation
        net = _net(state.hparams, len(labels), state.backbone)
    _grown_head(state.head, old, labels, net)
    generator = torch.Generator().manual_seed(seed)

    images, kept = _features([r.path for r in recordings], state.hparams, state.mean, state.std, log)
    recordings = [recordings[i] for i in kept]
    missing = [w for w in taught if not any(r.label == w for r in recordings)]
    if missing:
        raise AdaptError(f"{folder}: no usable take of {', '.join(missing)}; record them again")
    augment_args = (state.hparams.get("augment") or {}).get("init_args") or {}
    augment = FeatureAugment(**augment_args) if augment_args else FeatureAugment(freq_warp=0.18, freq_masks=1, freq_mask_bins=5,
                                                                                 time_masks=1, time_mask_frames=10)
    stacked = torch.cat([images] + [augment(images, generator) for _ in range(max(views, 1) - 1)])
    new_x = _embed(net, stacked, progress=progress)
    new_y = torch.tensor([index[r.label] for r in recordings] * max(views, 1), dtype=torch.long)

    # the rehearsal set, re-indexed to the new labels; _unknown_ examples of a word now taught are dropped
    keep = ~((state.targets == old.index(UNKNOWN)) & np.isin(state.origins, taught)) if UNKNOWN in old else \
        np.ones(len(state.targets), dtype=bool)
    rehearse_x = torch.from_numpy(state.embeddings[keep]) if rehearsal else torch.empty(0, new_x.shape[1])
    rehearse_y = torch.tensor([index[old[t]] for t in state.targets[keep]], dtype=torch.long) if rehearsal else \
        torch.empty(0, dtype=torch.long)
    log(f"adapting {state.name}: {len(recordings)} takes of {len(taught)} words ({', '.join(taught)}) x {views} views"
        f", {len(rehearse_y)} rehearsal vectors; labels {len(old)} -> {len(labels)}")

    head = net.head
    head.train()
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    smoothing = float(state.hparams.get("label_smoothing") or 0.0)
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # dropout
        for step in range(steps):
            mine = BATCH if not len(rehearse_y) else max(1, round(BATCH * share))
            pick = torch.randint(len(new_y), (mine,), generator=generator)
            x, y = new_x[pick], new_y[pick]
            if len(rehearse_y):
                other = torch.randint(len(rehearse_y), (BATCH - mine,), generator=generator)
                x, y = torch.cat([x, rehearse_x[other]]), torch.cat([y, rehearse_y[other]])
            loss = F.cross_entropy(head(x), y, label_smoothing=smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if step % 20 == 0 or step == steps - 1:
                report("training", (step + 1) / steps)
    head.eval()

    clean = new_x[: len(recordings)].numpy()
    adapted = _State(
        hparams={**copy.deepcopy(state.hparams), "labels": labels},
        head={k: v.detach().clone() for k, v in head.state_dict().items()},
        mean=state.mean, std=state.std,
        embeddings=np.concatenate([state.embeddings[keep], clean]).astype(np.float32),
        targets=np.concatenate([[index[old[t]] for t in state.targets[keep]],
                                [index[r.label] for r in recordings]]).astype(np.int64),
        origins=np.concatenate([state.origins[keep], [r.label for r in recordings]]).astype(str),
        name=ADAPTED, backbone=state.backbone,
    )
    adapted.hparams["net"] = copy.deepcopy(state.hparams["net"])
    adapted.hparams["net"].setdefault("init_args", {})["num_classes"] = len(labels)
    report("export", 0.0)
    _write_folder(out, net, adapted, state, taught, recordings, others=others, log=log)
    report("done", 1.0)
    return out


def _checkpoint(net, state: _State, path: Path) -> Path:
    """A checkpoint of the adapted model that :func:`~spokenword.inference.checkpoint.load_task` opens and
    :func:`~spokenword.inference.export.export_onnx` exports: the task's hyper-parameters and weights."""
    import lightning as L

    from spokenword.frontend.settings import FeatureSettings
    from spokenword.training.task import SpokenWordTask

    task = SpokenWordTask(net=net, labels=state.labels, sample_rate=int(state.hparams.get("sample_rate", 8000)),
                          features=FeatureSettings.from_dict(state.hparams["features"]))
    task.set_normalization(state.mean, state.std)
    torch.save({"state_dict": task.state_dict(), "hyper_parameters": state.hparams,
                "pytorch-lightning_version": L.__version__}, path)
    return path


def _write_folder(out: Path, net, adapted: _State, source: _State, taught: list[str], recordings, *,
                  others: str, log) -> None:
    from spokenword import pretrained
    from spokenword.inference.card import write_export_card
    from spokenword.inference.export import export_onnx, sidecar_path
    from spokenword.inference.onnx import read_metadata

    out = out.resolve()
    with pretrained.staged_folder(out) as staging:
        work = staging / ".work"
        work.mkdir()
        checkpoint = _checkpoint(net, adapted, work / f"{ADAPTED}.ckpt")
        exported = export_onnx(checkpoint, staging / f"{ADAPTED}.onnx")
        write_export_card(exported, read_metadata(exported), None)
        write_state(staging / f"{ADAPTED}{STATE_SUFFIX}", adapted)
        shutil.rmtree(work)
        members = [exported.name]
        words = {w for w in adapted.labels if not is_rejection(w)}
        kept = []
        if others == "auto" and source.folder is not None:
            for member in source.manifest.get("members", []):
                if member in (source.manifest.get("adaptable") or {}):
                    continue
                meta = read_metadata(source.folder / member)
                if {w for w in meta["labels"] if not is_rejection(w)} == words:
                    for file in (source.folder / member, sidecar_path(source.folder / member),
                                 source.folder / (member + ".md")):
                        if file.is_file():
                            shutil.copyfile(file, staging / file.name)
                    members.insert(len(kept), member)
                    kept.append(member)
        counts = {w: sum(r.label == w for r in recordings) for w in taught}
        manifest = {
            "name": out.name,
            "members": members,
            "labels": adapted.labels,
            "reject_below": source.manifest.get("reject_below"),
            "adaptable": {exported.name: f"{ADAPTED}{STATE_SUFFIX}"},
            "adapted": {"source": source.manifest.get("name") or source.name, "takes": counts,
                        "new_words": [w for w in taught if w not in source.labels],
                        "kept_members": kept, "rehearsal_vectors": int(len(adapted.targets) - len(recordings))},
            "files": pretrained.digests(staging),
        }
        (staging / MODEL_FOLDER_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"wrote {out}: {', '.join(members)}; labels {', '.join(adapted.labels)}")
