"""Training-step cost of each network on this CPU: which configs are practical to train here.

    python benchmarks/model_speed.py [--threads 1] [--batch 128] [--steps 6]

One step = forward, cross-entropy, backward and an AdamW update on a batch of 64x64 feature images
(random values: the cost does not depend on them), for each model as the shipped configs build it
(``configs/fsdd_cnn_newvoices.yaml``, ``fsdd_resnet_newvoices.yaml``, ``fsdd_gru_newvoices.yaml``), in
float32 and under bf16 autocast; convolutional models use channels-last memory (as
:class:`spokenword.training.ChannelsLast`). Prints the median ms per step after two warm-up steps,
and each network's faster precision as a multiple of the CNN's faster one.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def models() -> dict[str, tuple[torch.nn.Module, bool]]:
    """name -> (network as its config builds it, whether it is convolutional)."""
    from spokenword.models import FrameRNN, ResNetSmall, SpectrogramCNN

    return {
        "SpectrogramCNN (default)": (SpectrogramCNN(dropout=0.3, batch_norm=True), True),
        "ResNetSmall": (ResNetSmall(dropout=0.1), True),
        "FrameRNN (GRU)": (FrameRNN(dropout=0.2), False),
    }


def step_ms(net: torch.nn.Module, conv: bool, batch: int, steps: int, bf16: bool) -> float:
    x = torch.randn(batch, 1, 64, 64)
    y = torch.randint(0, 10, (batch,))
    if conv:
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
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for name, (net, conv) in models().items():
        params = sum(p.numel() for p in net.parameters())
        fp32 = step_ms(net, conv, args.batch, args.steps, bf16=False)
        bf16 = step_ms(net, conv, args.batch, args.steps, bf16=True)
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
