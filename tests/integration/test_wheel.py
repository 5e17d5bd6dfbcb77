"""The light install: the wheel (``python -m build``) installed WITHOUT extras into a fresh venv of every
supported interpreter found (3.11, 3.12, 3.13; missing ones are skipped) classifies FSDD clips with the
bundled model, and torch is not there. Needs PyPI (or a pip index) for the core dependencies."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

INTERPRETERS = ("python3.11", "python3.12", "python3.13")


def _interpreter(name: str) -> str | None:
    """A working ``name`` (``python3.12``): on PATH, else one of pyenv's versions (whose shim refuses
    versions that are not selected); ``None`` when none runs."""
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates = [shutil.which(name), *sorted(glob.glob(f"{root}/versions/{name[6:]}*/bin/{name}"))]
    for candidate in filter(None, candidates):
        try:
            if subprocess.run([candidate, "-c", "import sys"], capture_output=True, timeout=60).returncode == 0:
                return candidate
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO)],
                            capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (path,) = out.glob("spokenword-*.whl")
    return path


@pytest.mark.parametrize("python", INTERPRETERS)
def test_the_wheel_without_extras_classifies_with_the_bundled_model(python, wheel, fsdd_recordings, tmp_path):
    python = _interpreter(python) or pytest.skip(f"{python} not found")
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], capture_output=True,
                             text=True, timeout=900)
    if install.returncode != 0 and "No matching distribution" in install.stderr:
        pytest.skip(f"the core dependencies are not available for {python} from this pip index")
    assert install.returncode == 0, install.stderr[-3000:]
    files = [str(fsdd_recordings / name) for name in ("3_theo_0.wav", "8_nicolas_2.wav")]
    result = subprocess.run([str(venv / "bin" / "spokenword"), "classify", *files], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [line.split("\t")[:2] for line in result.stdout.strip().splitlines()] == [[files[0], "3"], [files[1], "8"]]
    # transcription with its speech detector (the Silero weights ship in the wheel)
    number = subprocess.run([str(venv / "bin" / "spokenword"), "transcribe", files[0]], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert number.returncode == 0 and number.stdout.strip() == f"{files[0]}\t3", number.stderr
    no_torch = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True, text=True)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    missing = subprocess.run([str(venv / "bin" / "spokenword"), "fit", "--config", str(REPO / "configs" / "fsdd_cnn.yaml")],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "pip install 'spokenword[train]'" in missing.stderr
