"""The machine a benchmark ran on, printed beside its figures (timings mean little without it)."""

from __future__ import annotations

import os

from spokenword.training.provenance import cpu_model


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, e.g. ``"0.12 0.30 0.41"``."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def describe() -> str:
    """One line: CPU model, CPU count, CPUs usable by this process and the load average now."""
    return (f"CPU {cpu_model()}, {os.cpu_count()} CPUs, {len(os.sched_getaffinity(0))} usable by this process; "
            f"load average {load_average()}")
