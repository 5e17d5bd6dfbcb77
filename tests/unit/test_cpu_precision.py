"""A config's bfloat16 precision is a speed choice: where the CPU would only emulate bfloat16 (several
times slower than float32), ``spokenword fit`` trains in float32 and says so in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from jsonargparse import Namespace

from spokenword.training import cli as training_cli
from spokenword.training.cli import cpu_precision, on_cpu
from tests.conftest import tone, write_wav


def _config(precision: str, accelerator: str = "auto") -> Namespace:
    config = Namespace()
    config["trainer.precision"], config["trainer.accelerator"] = precision, accelerator
    return config


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true"])
def test_emulated_bfloat16_becomes_float32_with_a_notice(monkeypatch, no_gpu, precision):
    monkeypatch.setattr(training_cli, "cpu_has_native_bf16", lambda: False)
    config = _config(precision)
    notice = cpu_precision(config)
    assert config["trainer.precision"] == "32-true"
    assert notice.startswith(f"spokenword: trainer.precision {precision} -> 32-true") and "\n" not in notice


@pytest.mark.parametrize("precision, accelerator, native", [
    ("bf16-mixed", "auto", True),   # bfloat16 hardware: the config's choice stands
    ("bf16-mixed", "gpu", False),   # not the CPU's business
    ("32-true", "auto", False),
    ("16-mixed", "cpu", False),
])
def test_other_cases_keep_the_config(monkeypatch, no_gpu, precision, accelerator, native):
    monkeypatch.setattr(training_cli, "cpu_has_native_bf16", lambda: native)
    config = _config(precision, accelerator)
    assert cpu_precision(config) is None and config["trainer.precision"] == precision


def test_auto_is_the_cpu_only_without_a_gpu(monkeypatch, no_gpu):
    from lightning.pytorch.accelerators import CPUAccelerator, CUDAAccelerator

    assert on_cpu("auto") and on_cpu("cpu") and not on_cpu("gpu")
    assert on_cpu(CPUAccelerator()) and not on_cpu(CUDAAccelerator())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert not on_cpu("auto")


def test_no_native_bfloat16_without_avx512():
    # oneDNN computes bfloat16 from AVX512 on; a CPU without any AVX512 can only emulate it
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file() or "avx512" in cpuinfo.read_text():
        pytest.skip("needs a Linux CPU without AVX512")
    assert training_cli.cpu_has_native_bf16() is False


def test_an_unknown_answer_is_no_bfloat16(monkeypatch):
    def gone():
        raise AttributeError("_is_mkldnn_bf16_supported")

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", gone, raising=False)
    assert training_cli.cpu_has_native_bf16() is False


def test_the_cli_builds_the_trainer_and_saves_the_config_in_float32(tmp_path, monkeypatch, no_gpu, capsys):
    from spokenword.data.datamodule import AudioDataModule
    from spokenword.training.cli import SpokenWordCLI, trainer_defaults
    from spokenword.training.task import SpokenWordTask

    monkeypatch.setattr(training_cli, "cpu_has_native_bf16", lambda: False)
    for digit in range(10):
        write_wav(tmp_path / "fsdd" / "recordings" / f"{digit}_synth_0.wav", tone(0.2, freq=300.0 + 50 * digit))
    monkeypatch.chdir(tmp_path)
    config = Path(__file__).resolve().parents[2] / "configs" / "fsdd_cnn_newvoices.yaml"  # precision: bf16-mixed
    args = ["--config", str(config), "--data.root", str(tmp_path), "--trainer.logger=false",
            "--data.corpus=spokenword.data.corpora.FSDD", "--data.corpus.validate=false", "--data.wave_augment=null"]
    cli = SpokenWordCLI(SpokenWordTask, AudioDataModule, run=False, args=args, auto_configure_optimizers=False,
                        trainer_defaults=trainer_defaults())
    assert cli.config["trainer"]["precision"] == "32-true"  # what the run's config.yaml records
    assert cli.trainer.precision == "32-true"
    assert "bf16-mixed -> 32-true" in capsys.readouterr().err
