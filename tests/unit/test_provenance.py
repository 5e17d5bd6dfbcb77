"""provenance.collect records what a run's numbers depend on, the CPU included."""

from __future__ import annotations

import torch

from spokenword.training.provenance import collect


def test_provenance_records_the_cpu_its_kernels_and_threads():
    cpu = collect()["cpu"]
    assert isinstance(cpu["model"], str) and cpu["model"]
    assert cpu["capability"] == torch.backends.cpu.get_cpu_capability()  # e.g. "AVX512": which kernels ran
    assert cpu["threads"] == torch.get_num_threads()
