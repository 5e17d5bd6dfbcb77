"""Choosing the pretrained-embedding recipe on validation speakers only (nested leave-one-speaker-out).

    python benchmarks/embedding_selection.py [CONFIG] [--copies 4] [--epochs 40] [--outer SPEAKER ...]
        [--every N] [--root DATA_ROOT]

Which augmentation suits a frozen :class:`spokenword.models.SpeechEmbeddingCNN` cannot be decided on
the held-out speaker of the accuracy benchmark's LOSO folds (that is its test set), and the
in-speaker validation takes say little about new voices. This decides it the nested way: for each
outer fold (one of FSDD's six speakers, never used here), every one of the other five speakers is
in turn the *validation* speaker and a head is trained on the remaining four; a candidate's score
for the outer fold is the mean over those five validation speakers.

The backbone is frozen, so its embeddings are computed once per clip and per augmented copy
(``--copies`` draws of the config's waveform augmentation, ``data.wave_augment``, and of its
feature augmentation, ``model.augment``; default ``configs/fsdd_embedding_waveaug.yaml``, which has both, through the project's own front end with a random crop),
and only the head (the config's ``hidden``/``dropout``, AdamW 3e-3 with the one-cycle schedule,
label smoothing 0.1, batch 128, ``--epochs`` epochs; each epoch takes one random copy of each clip)
is trained per split: minutes for all 6 x 5 x 4 trainings. Candidates: ``clean`` (no augmentation),
``feature`` (feature augmentation only), ``wave`` (waveform augmentation only) and ``wave+feature``
(the config's recipe). Babble noise mixes clips of any FSDD speaker (unlabelled). Feature images are
scaled by the mean and std of the clean training and
validation takes (5-49) of all six speakers, a scalar pair of unlabelled statistics (the training
runs use their own training set's). Prints, per outer fold, each candidate's mean validation-speaker
accuracy and the candidate it chooses.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from spokenword import audio
from spokenword.data.feature_augment import FeatureAugment
from spokenword.data.splits import resolve_root
from spokenword.data.corpora import FSDD
from spokenword.frontend.settings import FeatureSettings
from spokenword.frontend.graph import extract
from spokenword.models import SpeechEmbeddingCNN
from spokenword.data.wave_augment import WaveAugment

#: the recipe whose waveform and feature augmentation are the candidates (both, as first fixed)
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "fsdd_embedding_waveaug.yaml"
CANDIDATES = ("clean", "feature", "wave", "wave+feature")


def load_recipe(config: Path):
    """The config's feature settings, waveform and feature augmentation, and head arguments."""
    values = yaml.safe_load(config.read_text())
    data, model = values["data"], values["model"]
    if not data.get("wave_augment") or not model.get("augment"):
        raise ValueError(f"{config} must set both data.wave_augment and model.augment (the candidates' augmentation)")
    wave = WaveAugment(**data["wave_augment"]["init_args"])
    feature = FeatureAugment(**model["augment"]["init_args"])
    head = {k: v for k, v in model["net"]["init_args"].items() if k in ("hidden", "dropout")}
    return FeatureSettings(**data["features"]), int(data.get("sample_rate", 8000)), wave, feature, head


def embeddings(images: torch.Tensor, model: SpeechEmbeddingCNN, mean: float, std: float) -> torch.Tensor:
    """Pooled backbone features ``(N, 192)`` of un-normalised images ``(N, 1, H, W)``."""
    with torch.no_grad():
        return torch.cat([model.forward_features((images[i : i + 256] - mean) / std) for i in range(0, len(images), 256)])


def train_head(x: torch.Tensor, y: torch.Tensor, head_args: dict, epochs: int, seed: int) -> torch.nn.Module:
    """A fresh head trained on ``x`` ``(copies, N, 192)``: each epoch draws one copy of each clip."""
    torch.manual_seed(seed)
    head = SpeechEmbeddingCNN(pretrained="none", **head_args).head
    optimizer = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=1e-3)
    n, batch = x.shape[1], 128
    steps = -(-n // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=epochs * steps)
    head.train()
    for _ in range(epochs):
        copy = torch.randint(0, x.shape[0], (n,))
        order = torch.randperm(n)
        for k in range(steps):
            idx = order[k * batch : (k + 1) * batch]
            loss = F.cross_entropy(head(x[copy[idx], idx]), y[idx], label_smoothing=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return head.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", default=str(DEFAULT_CONFIG))
    parser.add_argument("--copies", type=int, default=4, help="augmented copies of each clip (default 4)")
    parser.add_argument("--epochs", type=int, default=40, help="head training epochs (default 40)")
    parser.add_argument("--root", default=None, help="data root (default $SPOKENWORD_DATA)")
    parser.add_argument("--outer", nargs="+", default=None, help="outer folds (default: every speaker)")
    parser.add_argument("--every", type=int, default=1, help="use every N-th recording (default 1: all; smoke runs)")
    args = parser.parse_args(argv)
    if min(args.copies, args.epochs, args.every) < 1:
        parser.error("--copies, --epochs and --every must be >= 1")
    try:
        settings, rate, wave_augment, feature_augment, head_args = load_recipe(Path(args.config))
    except (OSError, ValueError) as err:
        parser.error(str(err))
    recordings = FSDD().recordings(resolve_root(args.root))[:: args.every]
    labels = FSDD().labels(recordings)
    y = torch.tensor([labels.index(r.label) for r in recordings])
    speakers = np.array([r.speaker for r in recordings])
    waves = [audio.load(r.path, rate) for r in recordings]
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    clean = torch.stack([extract(torch.from_numpy(w), rate, settings) for w in waves])
    unlabelled = clean[torch.tensor([r.take >= 5 for r in recordings])]
    mean, std = unlabelled.mean().item(), unlabelled.std().item()
    images = {"clean": [clean], "feature": [], "wave": [], "wave+feature": []}
    for _ in range(args.copies):
        images["feature"].append(feature_augment(clean))
        perturbed = []
        for i, wave in enumerate(waves):
            talkers = lambda n, i=i: [waves[j] for j in rng.choice(len(waves), n, replace=False)]  # noqa: E731
            noisy = wave_augment(wave.copy(), rate, rng, talkers=talkers)
            perturbed.append(extract(torch.from_numpy(noisy), rate, settings, crop=float(rng.random())))
        perturbed = torch.stack(perturbed)
        images["wave"].append(perturbed)
        images["wave+feature"].append(feature_augment(perturbed))
    model = SpeechEmbeddingCNN(input_size=(settings.n_bins, settings.n_frames)).eval()
    pooled = {name: torch.stack([embeddings(im, model, mean, std) for im in copies]) for name, copies in images.items()}
    outer_folds = args.outer or sorted(set(speakers))
    print(f"{args.config}: {args.copies} augmented copies, {args.epochs} epochs; mean accuracy (%) on the "
          "validation speakers of each outer fold (the outer speaker never used)\n")
    print("| outer fold | " + " | ".join(CANDIDATES) + " | chosen |\n|---" * 1 + "|---" * (len(CANDIDATES) + 1) + "|")
    chosen = []
    for outer in outer_folds:
        inner = [s for s in sorted(set(speakers)) if s != outer]
        scores = {}
        for name in CANDIDATES:
            accuracies = []
            for k, val in enumerate(inner):
                train = torch.from_numpy((speakers != outer) & (speakers != val))
                head = train_head(pooled[name][:, train], y[train], head_args, args.epochs, seed=k)
                val_mask = torch.from_numpy(speakers == val)
                with torch.no_grad():
                    accuracies.append((head(pooled["clean"][0, val_mask]).argmax(1) == y[val_mask]).float().mean().item())
            scores[name] = 100 * float(np.mean(accuracies))
        best = max(CANDIDATES, key=lambda c: scores[c])
        chosen.append(best)
        print(f"| {outer} | " + " | ".join(f"{scores[c]:.1f}" for c in CANDIDATES) + f" | {best} |", flush=True)
    print(f"\nchosen: {', '.join(f'{o} {c}' for o, c in zip(outer_folds, chosen))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
