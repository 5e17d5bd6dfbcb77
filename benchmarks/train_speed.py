"""spokenword's training vs a minimal hand-written PyTorch loop: the reference experiment, same run.

Arms (all: configs/fsdd_cnn.yaml's experiment, official split, seed 0 (``--seed``), 30 epochs, Adam 1e-3,
ExponentialLR 0.99, batch 256, validation every epoch, best-validation weights tested):

* ``minimal``: a plain loop over in-memory tensors (features normalised once), no framework.
* ``spokenword``: ``spokenword fit`` as configured (LightningCLI, the data module reading the
  feature cache, checkpointing, CSV logging, the default callbacks, among them
  :class:`~spokenword.training.callbacks.ChannelsLast`: channels-last convolutions and pooling), progress
  bar off; timed over fit + test.
* ``spokenword-fast``: the same plus ``trainer.precision: bf16-mixed`` (oneDNN bf16 convolutions)
  and one evaluation batch for the whole validation/test set.
* ``minimal-bf16``: the minimal loop with the same bf16 autocast + channels-last (for reference).

The arms run one after another in this process (``--repeats`` alternates the order), so load from
other users of a shared machine hits all of them; the table reports the median wall seconds per arm
and the ratio to the minimal fp32 loop, and the same for the CPU seconds the process used (user +
system, all threads): on a machine shared with other work the CPU ratio is the steadier one, most
with ``--threads 1`` (with several threads, OpenMP threads waiting at a barrier for a thread that
another process pushed off its core inflate both). Usage::

    nice -n 10 .venv/bin/python benchmarks/train_speed.py [--epochs 30] [--repeats 1] [--threads N]

Targets (issue 6): spokenword <= 1.0x minimal; spokenword-fast <= 0.6x minimal at the same test
accuracy within 0.5 points.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "fsdd_cnn.yaml"
ARMS = ("minimal", "spokenword", "spokenword-fast", "minimal-bf16")


def spokenword_args(epochs: int, workdir: Path, fast: bool, seed: int = 0) -> list[str]:
    args = ["--config", str(CONFIG), "--seed_everything", str(seed), "--trainer.max_epochs", str(epochs),
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--trainer.logger.init_args.save_dir", str(workdir / "runs"),
            "--data.cache_dir", os.environ["SPOKENWORD_CACHE"]]  # one cache, filled before any timing
    if fast:
        args += ["--trainer.precision", "bf16-mixed", "--data.eval_batch_size", "4096"]  # ChannelsLast: a default
    return args


def cpu_seconds() -> float:
    """CPU time of this process so far (user + system, every thread)."""
    t = os.times()
    return t.user + t.system


def run_spokenword(epochs: int, workdir: Path, fast: bool, seed: int = 0) -> tuple[float, float]:
    """Seconds for fit + test, and test accuracy, through the CLI's own classes."""
    from spokenword.data.datamodule import AudioDataModule
    from spokenword.training.metrics import ACC
    from spokenword.training.task import SpokenWordTask
    from spokenword.training.cli import SpokenWordCLI, trainer_defaults

    cli = SpokenWordCLI(SpokenWordTask, AudioDataModule, run=False, seed_everything_default=0,
                        trainer_defaults=trainer_defaults(), args=spokenword_args(epochs, workdir, fast, seed),
                        auto_configure_optimizers=False)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path="best", verbose=False)
    seconds = time.perf_counter() - start
    return seconds, float(cli.model.test_results[ACC])


def tensors(workdir: Path) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], int]:
    """The same features, as in-memory tensors normalised by the training mean/std."""
    from spokenword.data.datamodule import AudioDataModule
    from spokenword.training.cli import SpokenWordCLI, trainer_defaults
    from spokenword.training.task import SpokenWordTask

    cli = SpokenWordCLI(SpokenWordTask, AudioDataModule, run=False, trainer_defaults=trainer_defaults(),
                        args=spokenword_args(1, workdir, False), auto_configure_optimizers=False)
    dm = cli.datamodule
    dm.prepare_data()
    dm.setup("fit")
    out = {}
    for part in ("train", "val", "test"):
        data = dm.dataset(part)
        x = torch.from_numpy(data.rows[list(range(len(data)))])
        out[part] = ((x - dm.feature_mean) / dm.feature_std, data.targets)
    return out, dm.num_classes


def run_minimal(data, num_classes: int, epochs: int, fast: bool, seed: int = 0) -> tuple[float, float]:
    """Seconds and test accuracy of a plain loop doing the same experiment."""
    from spokenword.models import SpectrogramCNN

    torch.manual_seed(seed)
    start = time.perf_counter()
    net = SpectrogramCNN(num_classes=num_classes)
    if fast:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.99)
    (x, y), (vx, vy), (tx, ty) = data["train"], data["val"], data["test"]

    def accuracy(images, targets):
        net.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            correct = (net(images).argmax(1) == targets).float().mean().item()
        net.train()
        return correct

    best, best_state = -1.0, None
    for _ in range(epochs):
        order = torch.randperm(len(y))
        for i in range(0, len(y), 256):
            idx = order[i : i + 256]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
                loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        acc = accuracy(vx, vy)
        if acc > best:
            best, best_state = acc, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    return time.perf_counter() - start, accuracy(tx, ty)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=1, help="rounds; even rounds run the arms in reverse order")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--threads", type=int, default=None, help="torch threads for every arm (default: torch's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every arm (initial weights, batch order)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("lightning").setLevel(logging.ERROR)
    results: dict[str, list[tuple[float, float, float]]] = {arm: [] for arm in args.arms}
    with tempfile.TemporaryDirectory(prefix="spokenword-speed-") as tmp:
        workdir = Path(tmp)
        os.chdir(workdir)
        os.environ["SPOKENWORD_CACHE"] = str(workdir / "cache")
        data, num_classes = tensors(workdir)  # also fills the feature cache, outside every timing
        for round_ in range(args.repeats):
            for arm in args.arms if round_ % 2 == 0 else list(reversed(args.arms)):
                load = os.getloadavg()[0]
                cpu = cpu_seconds()
                if arm.startswith("minimal"):
                    seconds, acc = run_minimal(data, num_classes, args.epochs, fast=arm.endswith("bf16"), seed=args.seed)
                else:
                    seconds, acc = run_spokenword(args.epochs, workdir / arm / str(round_), fast=arm.endswith("fast"), seed=args.seed)
                cpu = cpu_seconds() - cpu
                results[arm].append((seconds, cpu, acc))
                print(f"round {round_} {arm:<16} {seconds:7.1f} s  cpu {cpu:7.1f} s  test acc {acc:.4f}  "
                      f"(load before {load:.1f}, after {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    have_base = "minimal" in results
    base = statistics.median(s for s, _, _ in results["minimal"]) if have_base else float("nan")
    base_cpu = statistics.median(c for _, c, _ in results["minimal"]) if have_base else float("nan")
    print(f"\nreference experiment, official split, seed {args.seed}, {args.epochs} epochs, torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} CPUs, load now {os.getloadavg()[0]:.1f}")
    print(f"{'arm':<16} {'seconds':>8} {'x minimal fp32':>15} {'cpu s':>8} {'cpu x minimal':>14} {'test acc':>9}")
    for arm, rows in results.items():
        seconds = statistics.median(s for s, _, _ in rows)
        cpu = statistics.median(c for _, c, _ in rows)
        accs = ", ".join(f"{a * 100:.2f}" for _, _, a in rows)
        print(f"{arm:<16} {seconds:>8.1f} {seconds / base:>15.2f} {cpu:>8.1f} {cpu / base_cpu:>14.2f} {accs:>9}")


if __name__ == "__main__":
    main()
