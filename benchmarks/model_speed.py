"""Training-step cost of each shipped network on this CPU: which configs are practical to train here.

    python benchmarks/model_speed.py [--threads 1] [--batch 128] [--steps 6] [--variant KEY=VALUE[,KEY=VALUE]] ...

One step = forward, cross-entropy, backward and an AdamW update on a batch of feature images (64x64;
32 bands x 128 frames for the speech embedding; random values: the cost does not depend on them), for
each model as the shipped configs build it (``configs/fsdd_cnn_newvoices.yaml`` and
``fsdd_embedding_newvoices.yaml``: its backbone frozen, random weights: the same cost as the
pretrained ones), in float32 and under bf16 autocast, in channels-last memory (as
:class:`spokenword.training.callbacks.ChannelsLast`). Prints the median ms per step after two warm-up steps,
and each network's faster precision as a multiple of the CNN's faster one.

``--variant`` adds a row for the default CNN with some of its constructor arguments changed, as a
config's ``model.net.init_args`` (or ``benchmarks/accuracy.py --override``) would change them; values
are YAML (``--variant 'channels=[16,32,96,96]' --variant dropout=0.1,batch_norm=false``). Tried
variants are timed by this command, not by an ad-hoc script.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
import yaml

#: the default config's network (configs/fsdd_cnn_newvoices.yaml); --variant rows start from it
DEFAULT_CNN = {"dropout": 0.3, "batch_norm": True}


#: the feature image (bands, frames) of every network but the speech embedding's
IMAGE = (64, 64)


def models() -> dict[str, tuple[torch.nn.Module, tuple[int, int]]]:
    """name -> (network as its config builds it, its input (bands, frames))."""
    from spokenword.models import SpectrogramCNN, SpeechEmbeddingCNN

    embedding_input = (32, 128)  # configs/fsdd_embedding_newvoices.yaml: 32 bands, 128 frames
    embedding = SpeechEmbeddingCNN(10, input_size=embedding_input, hidden=128, dropout=0.3, pretrained="none")
    return {
        "SpectrogramCNN (default)": (SpectrogramCNN(**DEFAULT_CNN), IMAGE),
        "SpeechEmbeddingCNN (frozen backbone)": (embedding, embedding_input),
    }


def parse_variant(text: str) -> dict:
    """``"dropout=0.1,channels=[16,32,96,96]"`` -> ``{"dropout": 0.1, "channels": [16, 32, 96, 96]}``
    (commas inside brackets belong to the value)."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text + ","):
        depth += {"[": 1, "(": 1, "]": -1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise ValueError(f"unbalanced brackets in {text!r}")
    args = {}
    for item in filter(None, (item.strip() for item in items)):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        try:
            args[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise ValueError(f"{key.strip()}: not a YAML value: {value!r}") from error
    if not args:
        raise ValueError(f"expected KEY=VALUE[,KEY=VALUE], got {text!r}")
    return args


def variant(text: str) -> tuple[str, torch.nn.Module]:
    """A ``--variant`` row: its label and the default CNN built with the changed arguments."""
    from spokenword.models import SpectrogramCNN

    args = parse_variant(text)
    try:
        net = SpectrogramCNN(**{**DEFAULT_CNN, **args})
    except (TypeError, ValueError) as error:
        raise ValueError(f"SpectrogramCNN({text}): {error}") from error
    return f"SpectrogramCNN (default, {', '.join(f'{k}={v}' for k, v in args.items())})", net


def step_ms(net: torch.nn.Module, batch: int, steps: int, bf16: bool, image: tuple[int, int] = IMAGE) -> float:
    x = torch.randn(batch, 1, *image)
    y = torch.randint(0, 10, (batch,))
    net, x = net.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(net.parameters())
    times = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times[2:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: as benchmarks/accuracy.py trains)")
    parser.add_argument("--batch", type=int, default=128, help="batch size (the configs' 128)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per model and precision")
    parser.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="also time the default CNN with these constructor arguments changed (repeatable)")
    args = parser.parse_args(argv)
    nets = models()
    for text in args.variant:
        try:
            name, net = variant(text)
        except ValueError as error:
            parser.error(f"--variant: {error}")
        nets[name] = (net, IMAGE)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for name, (net, image) in nets.items():
        params = sum(p.numel() for p in net.parameters())
        fp32 = step_ms(net, args.batch, args.steps, bf16=False, image=image)
        bf16 = step_ms(net, args.batch, args.steps, bf16=True, image=image)
        rows.append((name, params, fp32, bf16))
    base = min(rows[0][2], rows[0][3])  # the CNN's faster precision
    print(f"Training step, batch {args.batch}, {args.threads} thread(s), median of {args.steps} steps")
    print("| model | params | fp32 ms/step | bf16 ms/step | best / CNN best |")
    print("|---|---|---|---|---|")
    for name, params, fp32, bf16 in rows:
        print(f"| {name} | {params:,} | {fp32:.0f} | {bf16:.0f} | {min(fp32, bf16) / base:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
